package compat

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sensoriumBin is the server binary TestMain builds from the parent module,
// or $SENSORIUM_BIN (a release build to check).
var sensoriumBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sensorium-compat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	sensoriumBin = os.Getenv("SENSORIUM_BIN")
	if sensoriumBin == "" {
		sensoriumBin = filepath.Join(dir, "sensorium")
		gobin := "go"
		if g := os.Getenv("GO"); g != "" {
			gobin = g
		}
		// The parent folder is the main module; this one must not import it.
		args := []string{"build", "-o", sensoriumBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		build := exec.Command(gobin, append(args, "./cmd/sensorium")...)
		build.Dir = ".."
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "compat: building sensorium:", err)
			return 1
		}
	}
	return m.Run()
}

// keyPair is one access key the server knows.
type keyPair struct {
	ID, Secret string
}

// server is one sensorium serve process.
type server struct {
	URL    string // base URL of the HTTP API, from its "serving" log line
	Region string
	Key    keyPair // a key in its credentials file (profile "compat")
	Other  keyPair // another (profile "other")
	// CredentialsFile is the shared-credentials file the server was given;
	// profile "compat" holds Key.
	CredentialsFile string

	cmd  *exec.Cmd
	logs *lineLog
	done chan error
}

const testRegion = "eu-west-3"

// startServer starts sensorium serve on loopback with a fresh data folder and
// a credentials file, and stops it (SIGTERM, expecting exit 0) when the test
// ends.
func startServer(t *testing.T) *server { t.Helper(); return startServerWith(t, "") }

// startServerWith is startServer with more sections in the credentials
// file (extra, INI text) and more serve flags.
func startServerWith(t *testing.T, extra string, flags ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{Region: testRegion,
		Key:   keyPair{ID: "AKIA" + strings.ToUpper(randHex(t, 8)), Secret: randHex(t, 20)},
		Other: keyPair{ID: "AKIA" + strings.ToUpper(randHex(t, 8)), Secret: randHex(t, 20)},
	}
	s.CredentialsFile = filepath.Join(dir, "credentials")
	ini := fmt.Sprintf("# compat test keys\n[compat]\naws_access_key_id = %s\naws_secret_access_key = %s\n\n[other]\naws_access_key_id=%s\naws_secret_access_key=%s\n",
		s.Key.ID, s.Key.Secret, s.Other.ID, s.Other.Secret) + extra
	if err := os.WriteFile(s.CredentialsFile, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"serve", "--data", filepath.Join(dir, "data"), "--http", "127.0.0.1:0", "--nats", "127.0.0.1:0",
		"--flight", "", "--log-format", "json", "--log-level", "debug", "--region", s.Region, "--credentials", s.CredentialsFile}
	args = append(args, flags...)
	s.cmd = exec.Command(sensoriumBin, args...)
	s.logs = &lineLog{}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan string, 1)
	go s.logs.scan(stderr, serving)
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.stop(t) })
	select {
	case s.URL = <-serving:
	case err := <-s.done:
		s.done <- err
		t.Fatalf("sensorium serve exited before serving: %v\n%s", err, s.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("sensorium serve logged no %q line in 30 s\n%s", "sensorium: serving", s.logs)
	}
	return s
}

// stop sends SIGTERM and expects a clean exit 0.
func (s *server) stop(t *testing.T) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("sensorium serve did not exit 0 on SIGTERM: %v\n%s", err, s.logs)
		} else if t.Failed() {
			t.Logf("server log:\n%s", s.logs)
		}
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("sensorium serve did not stop within 30 s of SIGTERM\n%s", s.logs)
	}
}

// lineLog keeps a process's output for failure messages, and finds the
// "serving" line in its JSON log.
type lineLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lineLog) scan(r io.Reader, serving chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		_, _ = l.Write(append(append([]byte(nil), line...), '\n'))
		var rec struct {
			Msg  string `json:"msg"`
			HTTP string `json:"http"`
		}
		if !sent && json.Unmarshal(line, &rec) == nil && rec.Msg == "sensorium: serving" && rec.HTTP != "" {
			serving <- rec.HTTP
			sent = true
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testContext is a context that ends with the test, bounded so that a hung
// call fails instead of eating the suite's time.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// needTool finds an external tool, skipping the test without it except under
// CI, where a missing tool is a failure (scripts/install-test-deps.sh
// installs them).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not on PATH (scripts/install-test-deps.sh installs it)", name)
	}
	t.Skipf("%s is not on PATH; scripts/install-test-deps.sh installs it", name)
	return ""
}
