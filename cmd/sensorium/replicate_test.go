package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/replicate"
	"github.com/sensorium-io/sensorium/internal/service/replicate/replicatetest"
	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/internal/testkit/faultproxy"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
)

// A wrong replicate command line exits 2 with a line naming the flag,
// before anything is contacted.
func TestReplicateUsageErrors(t *testing.T) {
	base := []string{"replicate", "--from", "http://127.0.0.1:1", "--to", "http://127.0.0.1:2", "--streams", "a*", "--state", t.TempDir(), "--metrics", ""}
	with := func(extra ...string) []string {
		args := append([]string(nil), base...)
		for i := 0; i+1 < len(extra); i += 2 { // replace a flag's value, or add it
			found := false
			for j := range args {
				if args[j] == extra[i] && j+1 < len(args) {
					args[j+1], found = extra[i+1], true
				}
			}
			if !found {
				args = append(args, extra[i], extra[i+1])
			}
		}
		return args
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no --from", []string{"replicate", "--to", "http://x", "--streams", "a", "--state", "d"}, `"from" not set`},
		{"no --state", []string{"replicate", "--from", "http://x", "--to", "http://y", "--streams", "a"}, `"state" not set`},
		{"--from not a URL", with("--from", "127.0.0.1:8080"), `--from "127.0.0.1:8080" is not an http:// or https:// URL`},
		{"--to not a URL", with("--to", "ftp://x"), `--to "ftp://x" is not an http:// or https:// URL`},
		{"--to-nats not NATS", with("--to-nats", "http://x:4222"), `--to-nats "http://x:4222" is not a nats:// or tls:// URL`},
		{"bad way", with("--via", "smtp"), `--via "smtp": nats or http`},
		{"NATS URL over HTTP", with("--via", "http", "--to-nats", "nats://x:4222"), "--to-nats is for --via nats"},
		{"bad pattern", with("--streams", "pump-[", "--metrics", ""), `--streams: stream pattern "pump-["`},
		{"empty patterns", with("--streams", " , "), "--streams: no stream patterns"},
		{"bad rate", with("--max-rate", "fast"), `--max-rate: "fast" is not a rate`},
		{"bad decimation", with("--decimate", "vib-*=1"), `--decimate: "vib-*=1": the factor must be`},
		{"zero rate", with("--max-rate", "0M"), `--max-rate: "0M" is not a rate`},
		{"bad schedule", with("--schedule", "22:00-30:00"), `--schedule: schedule window "22:00-30:00"`},
		{"empty window", with("--schedule", "06:00-06:00"), "starts where it ends"},
		{"negative retention", with("--retention-hours", "-5"), "--retention-hours -5 is negative"},
		{"batch too big", with("--batch", "5000"), "--batch 5000 is not between 1 and 1000"},
		{"bad poll", with("--poll", "0s"), "must be positive"},
		{"bad metrics address", with("--metrics", "9465"), `--metrics "9465"`},
		{"missing profile", with("--to-profile", "no-such-profile"), "--to-profile"},
		{"status: bad address", []string{"replicate", "status", "--metrics", "nope"}, `--metrics "nope"`},
		{"status: both", []string{"replicate", "status", "--metrics", "127.0.0.1:1", "--state", "x"}, "cannot be given together"},
		{"bad centre prefix", with("--centre-prefix", "site 3/"), `--centre-prefix "site 3/"`},
		{"extra argument", with("--from", "http://x", "extra", "x"), "unknown command"},
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "credentials"))
	for _, c := range cases {
		code, stderr := runCLI(t, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and %q", c.name, code, stderr, c.want)
		}
	}
}

func TestParseRate(t *testing.T) {
	cases := []struct {
		in   string
		want int64
	}{
		{"", 0}, {"500k", 500_000}, {"2M", 2_000_000}, {"1.5G", 1_500_000_000}, {"10MiB", 10 << 20},
		{"100Mbit", 12_500_000}, {"800kbit", 100_000}, {"4096", 4096}, {"64KB", 64_000}, {"3B", 3},
	}
	for _, c := range cases {
		got, err := parseRate(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"x", "-1M", "0", "1e30", "M", "0.1B"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q) took it", bad)
		}
	}
}

// status of a replicator that is not running says so, exit 1.
func TestReplicateStatusWithoutReplicator(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, stderr := runCLI(t, "replicate", "status", "--metrics", addr)
	if code != exitFailure || !strings.Contains(stderr, "no replicator answers at "+addr) {
		t.Fatalf("exit %d, %q", code, stderr)
	}
}

// proc is a sensorium command run as a subprocess (this test binary as the
// CLI), so that it can be killed with SIGKILL.
type proc struct {
	t      *testing.T
	args   []string
	log    string
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
}

func startProc(t *testing.T, logName string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, args: args, log: filepath.Join(t.TempDir(), logName)}
	p.start()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) start() {
	p.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		p.t.Fatal(err)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(f, "--- start %s\n", time.Now().Format(time.RFC3339Nano))
	p.cmd = exec.Command(exe, p.args...)
	p.cmd.Env = append(os.Environ(), cliEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := make(chan struct{})
	p.exited = exited
	go func() { _ = p.cmd.Wait(); f.Close(); close(exited) }()
}

// kill sends SIGKILL: nothing of the process's memory survives, and it
// gets no chance to finish what it was doing.
func (p *proc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	}
}

func (p *proc) restart() { p.kill(); p.start() }

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// centreCount is how many fragments of stream the server holds (0 when it
// does not answer).
func centreCount(t *testing.T, s *serveProc, stream string) int {
	l, err := replicatetest.List(context.Background(), s.client, stream)
	if err != nil {
		return 0
	}
	return len(l)
}

// server is `sensorium serve` as a subprocess on fixed loopback ports, so
// that it comes back where it was after a kill.
type serveProc struct {
	*proc
	http, nats string
	client     *sdk.Client
}

func startServe(t *testing.T, name string) *serveProc {
	t.Helper()
	s := &serveProc{http: freeAddr(t), nats: freeAddr(t)}
	s.proc = startProc(t, name+".log", "serve", "--data", t.TempDir(), "--http", s.http, "--nats", s.nats, "--flight", freeAddr(t), "--log-level", "info")
	s.client = sdk.NewClientWithOptions("http://"+s.http, sdk.ClientOptions{Timeout: 5 * time.Second})
	s.waitUp(t)
	return s
}

func (s *serveProc) waitUp(t *testing.T) {
	t.Helper()
	poll.Until(t, 60*time.Second, 50*time.Millisecond, func() error {
		_, _, err := s.client.ListStreams(context.Background(), "", 1, "")
		if err != nil {
			return fmt.Errorf("%v; its log:\n%s", err, s.tail())
		}
		return nil
	})
}

// The test: an edge and a central server on loopback, the fault
// proxy between the replicator and the centre cutting the link, and kill -9
// of the replicator, the centre and the edge while producers write and the
// copy runs: at the end every edge fragment is at the centre exactly once,
// with its producer timestamp, tags and bytes. One round of each fault by
// default; SENSORIUM_REPLICATE_ROUNDS=N runs N rounds. Over the centre's
// NATS, and over its HTTP API only (--via http), the proxy in front of
// whichever the replicator writes.
func TestReplicateSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and a replicator as processes")
	}
	for _, via := range []string{replicate.ViaNATS, replicate.ViaHTTP} {
		t.Run(via, func(t *testing.T) { replicateSurvivesKill9(t, via) })
	}
}

func replicateSurvivesKill9(t *testing.T, via string) {
	rounds := 1
	if n, err := strconv.Atoi(os.Getenv("SENSORIUM_REPLICATE_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	edge := startServe(t, "edge")
	centre := startServe(t, "centre")
	target := centre.nats
	if via == replicate.ViaHTTP {
		target = centre.http
	}
	proxy, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	way := []string{"--to", "http://" + centre.http, "--to-nats", "nats://" + proxy.Addr()}
	if via == replicate.ViaHTTP {
		way = []string{"--to", "http://" + proxy.Addr(), "--via", "http"}
	}
	ctx := context.Background()
	for _, s := range []string{"line-1", "line-2"} {
		if _, err := edge.client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: s, DataRetentionInHours: 24}); err != nil {
			t.Fatal(err)
		}
	}
	origin := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	p1, err := replicatetest.NewProducer("nats://"+edge.nats, "line-1", origin, 32<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	p2, err := replicatetest.NewProducer("nats://"+edge.nats, "line-2", origin, 2<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	put := func(n int) {
		t.Helper()
		if err := p1.Put(n, 60*time.Second); err != nil {
			t.Fatalf("line-1: %v\nedge log:\n%s", err, edge.tail())
		}
		if err := p2.Put(n/2, 60*time.Second); err != nil {
			t.Fatalf("line-2: %v\nedge log:\n%s", err, edge.tail())
		}
	}
	put(20)
	metrics, stateDir := freeAddr(t), t.TempDir()
	rep := startProc(t, "replicate.log", append(append([]string{"replicate", "--from", "http://" + edge.http}, way...),
		"--streams", "line-*", "--state", stateDir, "--metrics", metrics,
		"--poll", "50ms", "--discover", "200ms", "--ack-timeout", "2s", "--timeout", "5s", "--log-level", "info")...)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	midCopy := func() { time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond) }
	for round := 0; round < rounds; round++ {
		put(20)
		midCopy()
		rep.restart() // kill -9 of the replicator while it copies
		put(20)
		proxy.Reset()
		// kill -9 of the centre in the middle of a burst: the replicator is
		// stopped while a backlog builds, started again, and the centre is
		// killed as soon as the first of the backlog is stored — while the
		// rest is on its way or on its bus, not yet applied.
		rep.kill()
		held := centreCount(t, centre, "line-1")
		put(40)
		rep.start()
		poll.Until(t, 30*time.Second, time.Millisecond, func() error {
			if n := centreCount(t, centre, "line-1"); n <= held {
				return fmt.Errorf("the centre still holds %d fragments of line-1", n)
			}
			return nil
		})
		centre.restart()
		centre.waitUp(t)
		put(20)
		proxy.CutAfter(int64(10<<10 + rng.IntN(40<<10)))
		midCopy()
		edge.restart() // kill -9 of the edge
		edge.waitUp(t)
		put(20)
	}
	for _, s := range []string{"line-1", "line-2"} {
		poll.Until(t, 120*time.Second, 100*time.Millisecond, func() error {
			e, err := replicatetest.List(ctx, edge.client, s)
			if err != nil {
				return err
			}
			c, err := replicatetest.List(ctx, centre.client, s)
			if err != nil {
				return err
			}
			if len(c) < len(e) {
				return fmt.Errorf("the centre holds %d of the edge's %d fragments of %s\nreplicator log:\n%s", len(c), len(e), s, rep.tail())
			}
			return nil
		})
		n, err := replicatetest.Compare(ctx, edge.client, centre.client, s, s)
		if err != nil {
			t.Fatalf("%s: %v\nreplicator log:\n%s", s, err, rep.tail())
		}
		t.Logf("%s: all %d edge fragments are at the centre once", s, n)
	}
	// Whether a kill of the centre caught fragments on its bus that its store
	// had not applied (the case only the journal's keys settle): it says so
	// when it applies them at its restart.
	log, _ := os.ReadFile(centre.log)
	t.Logf("the centre found unapplied fragments on its bus at %d of %d restarts",
		strings.Count(string(log), "the bus redelivers what the previous run left unacknowledged"), rounds)
	if p1.Written() != 20+120*rounds {
		t.Errorf("line-1: %d fragments written", p1.Written())
	}
	// The status table, from the running replicator.
	var out string
	poll.Until(t, 30*time.Second, 100*time.Millisecond, func() error {
		code, stdout, stderr := runCLIOut(t, "replicate", "status", "--metrics", metrics)
		out = stdout
		if code != exitOK {
			return errors.New(stderr)
		}
		for _, s := range []string{"line-1", "line-2"} {
			if !strings.Contains(stdout, s+"  ") || !strings.Contains(stdout, "live") {
				return fmt.Errorf("status does not show %s live:\n%s", s, stdout)
			}
		}
		return nil
	})
	if !strings.Contains(out, "STREAM") || !strings.Contains(out, "BACKLOG") || !strings.Contains(out, "schedule always (open now)") {
		t.Errorf("status:\n%s", out)
	}
	t.Logf("status:\n%s", out)
	// The state folder, read while the replicator is stopped.
	rep.kill()
	code, stdout, stderr := runCLIOut(t, "replicate", "status", "--state", stateDir)
	if code != exitOK || !strings.Contains(stdout, "line-1") || !strings.Contains(stdout, "0 (0 B)") {
		t.Errorf("status --state: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("status --state:\n%s", stdout)
}

// Each side with its own key: the edge is read with a key that may only
// list and read, the centre takes fragments over NATS logged in as a key
// that may only write there; the two keys come from two profiles, and
// neither secret reaches the log.
func TestReplicateSignedWithTwoProfiles(t *testing.T) {
	const (
		edgeID, edgeSecret     = "AKIDEDGEREADER00", "edge-secret-0123456789abcdef"
		prodID, prodSecret     = "AKIDEDGEPRODUCER", "producer-secret-0123456789ab"
		adminID, adminSecret   = "AKIDEDGEADMIN000", "admin-secret-0123456789abcd"
		centreID, centreSecret = "AKIDCENTREWRITER", "centre-secret-0123456789abc"
	)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := func(section, id, secret, grant string) string {
		return "[" + section + "]\naws_access_key_id = " + id + "\naws_secret_access_key = " + secret + "\n" + grant
	}
	edgeKeys := write("edge-keys", key("reader", edgeID, edgeSecret, "actions = ListStreams, DescribeStream, ListFragments, GetMediaForFragmentList\n")+
		key("producer", prodID, prodSecret, "streams = *\nactions = PutMedia\n")+key("admin", adminID, adminSecret, ""))
	centreKeys := write("centre-keys", key("writer", centreID, centreSecret,
		"streams = *\nactions = PutMedia, DescribeStream, CreateStream, ListFragments, GetMediaForFragmentList\n"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", write("credentials", key("edge", edgeID, edgeSecret, "")+key("centre", centreID, centreSecret, "")))
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	start := func(keys string) *server.Server {
		srv, err := server.Start(context.Background(), server.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Credentials: keys,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Shutdown(context.Background()) })
		return srv
	}
	edge, centre := start(edgeKeys), start(centreKeys)
	signed := func(url, id, secret string) *sdk.Client {
		return sdk.NewClientWithOptions(url, sdk.ClientOptions{Credentials: &sdk.Credentials{AccessKeyID: id, SecretAccessKey: secret}})
	}
	ctx := context.Background()
	edgeAdmin := signed(edge.HTTPURL(), adminID, adminSecret)
	if _, err := edgeAdmin.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "cell-4", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	prodCreds := &sdk.Credentials{AccessKeyID: prodID, SecretAccessKey: prodSecret}
	p, err := replicatetest.NewProducer(edge.NATSURL(), "cell-4", time.Now().Add(-time.Hour).Truncate(time.Millisecond), 4<<10, prodCreds.NATSOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Put(12, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	rctx, cancel := context.WithCancel(ctx)
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(rctx, []string{"replicate", "--from", edge.HTTPURL(), "--to", centre.HTTPURL(), "--to-nats", centre.NATSURL(),
			"--streams", "cell-*", "--state", t.TempDir(), "--metrics", "", "--poll", "50ms", "--discover", "200ms",
			"--from-profile", "edge", "--to-profile", "centre", "--log-level", "debug"}, &stdout, &stderr)
	}()
	centreReader := signed(centre.HTTPURL(), centreID, centreSecret)
	edgeReader := signed(edge.HTTPURL(), edgeID, edgeSecret)
	poll.Until(t, 30*time.Second, 50*time.Millisecond, func() error {
		c, err := replicatetest.List(ctx, centreReader, "cell-4")
		if err != nil || len(c) < 12 {
			return fmt.Errorf("the centre holds %d of 12 fragments (%v); replicator log:\n%s", len(c), err, stderr.String())
		}
		return nil
	})
	if n, err := replicatetest.Compare(ctx, edgeReader, centreReader, "cell-4", "cell-4"); err != nil || n != 12 {
		t.Fatalf("%d fragments: %v", n, err)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("replicate exited %d: %s", code, stderr.String())
	}
	for _, secret := range []string{edgeSecret, centreSecret} {
		if strings.Contains(stderr.String(), secret) || strings.Contains(stdout.String(), secret) {
			t.Fatalf("a secret is in the replicator's output")
		}
	}
}

// A journal stopped at a refused fragment: `replicate status --state` says
// which and that the centre's copy has a hole there, `replicate skip` lets
// it go (once), and status then counts it as skipped.
func TestReplicateSkipRefused(t *testing.T) {
	dir := t.TempDir()
	journal := `{"version": 1, "edge_stream": "pump-1", "edge_arn": "arn:x", "centre_stream": "site3-pump-1",
  "producer_id": "replicate-0123456789abcdef", "next_seq": 7,
  "confirmed": {"seq": 3, "number": "30", "server_ns": 1, "producer_ns": 1, "size": 10},
  "pending": [
    {"seq": 4, "number": "40", "server_ns": 2, "producer_ns": 2, "size": 70000},
    {"seq": 5, "number": "50", "server_ns": 3, "producer_ns": 3, "size": 10},
    {"seq": 6, "number": "60", "server_ns": 4, "producer_ns": 4, "size": 10}],
  "refused": {"seq": 4, "number": "40", "server_ns": 2, "producer_ns": 2, "size": 70000,
    "code": "MAX_FRAGMENT_SIZE_REACHED", "error_id": 4001, "message": "fragment is 70000 bytes; the limit is 16384", "at_ns": 1764966896000000000, "stored_after": 2},
  "sent_fragments": 6, "sent_bytes": 70030, "expired_fragments": 0, "refused_fragments": 1}`
	if err := os.WriteFile(filepath.Join(dir, "stream-site3-pump-1.json"), []byte(journal), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLIOut(t, "replicate", "status", "--state", dir)
	if code != 0 || !strings.Contains(stdout, "pump-1: stopped at edge fragment 40 (sequence 4): the centre refused it since") ||
		!strings.Contains(stdout, "MAX_FRAGMENT_SIZE_REACHED (4001)") || !strings.Contains(stdout, "the centre stored 2 fragments after it") ||
		!strings.Contains(stdout, "sensorium replicate skip pump-1 --state "+dir) {
		t.Fatalf("status: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = runCLIOut(t, "replicate", "skip", "pump-1", "--state", dir)
	if code != 0 || !strings.Contains(stdout, "skipped edge fragment 40") {
		t.Fatalf("skip: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, stderr := runCLI(t, "replicate", "skip", "pump-1", "--state", dir); code != exitFailure || !strings.Contains(stderr, "not stopped at a refused fragment") {
		t.Fatalf("a second skip: exit %d, %q", code, stderr)
	}
	code, stdout, _ = runCLIOut(t, "replicate", "status", "--state", dir)
	if code != 0 || strings.Contains(stdout, "stopped at") || !strings.Contains(stdout, "pump-1: refused fragments skipped (sensorium replicate skip): 1;") ||
		!strings.Contains(stdout, "2 (20 B)") { // the two after it are still to be confirmed
		t.Fatalf("status after the skip: exit %d, %q", code, stdout)
	}
}
