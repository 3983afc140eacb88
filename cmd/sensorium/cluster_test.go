package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/server"
)

// cliEnv makes this test binary the sensorium command: the cluster demo
// starts its nodes as `os.Executable() serve …`, which under go test is
// this binary.
const cliEnv = "SENSORIUM_TEST_BINARY_IS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// statusJSON is a cluster's status as GET /v1/cluster answers it: node c
// was killed 42 s ago, node b is back and catching up, the bus shard
// whose leader was c has none yet.
var statusJSON = `{"node":"a","shards":3,"busReplicas":3,"ackReplicas":"majority","replaceAfter":"5m0s",
"nodes":[
 {"name":"a","alive":true,"http":"http://10.0.0.1:8080","nats":"nats://10.0.0.1:4222","streams":14,"responded":true,"coordinator":true},
 {"name":"b","alive":true,"http":"http://10.0.0.2:8080","nats":"nats://10.0.0.2:4222","streams":14,"unready":2,"responded":true},
 {"name":"c","alive":false,"silentSeconds":42.4,"http":"http://10.0.0.3:8080","nats":"nats://10.0.0.3:4222","streams":14,"responded":false},
 {"name":"d","alive":true,"http":"http://10.0.0.4:8080","nats":"nats://10.0.0.4:4222","streams":0,"responded":false}],
"bus":[
 {"name":"SENSORIUM_FRAG_0","leader":"a","replicas":["a","b","c"],"messages":1204,"lastSeq":90210,
  "consumers":[{"node":"a","pending":0,"ackPending":0},{"node":"b","pending":1187,"ackPending":3},{"node":"c","pending":1204,"ackPending":0}]},
 {"name":"SENSORIUM_FRAG_1","leader":"","replicas":["a","b","c"],"messages":0,"lastSeq":0,"consumers":[]}],
"streams":[
 {"name":"pump-1","shard":1,"replicas":[
  {"node":"a","phase":"live","lastFragment":"90210","lagMs":0},
  {"node":"b","phase":"joining","lastFragment":"90001","lagMs":1234},
  {"node":"c","phase":"unknown","lagMs":0}]},
 {"name":"cam-7","shard":0,"replicas":[
  {"node":"a","phase":"live","lagMs":0},
  {"node":"b","phase":"filling","lagMs":754000,"error":"fill from a:\n connection reset"},
  {"node":"c","phase":"unknown","lagMs":0}]},
 {"name":"alpha","shard":0,"replicas":[{"node":"a","phase":"live","lagMs":0},{"node":"b","phase":"live","lagMs":0}]}` +
	liveStreams + `]}`

// liveStreams are twelve streams whose replicas are all live: more than
// the status lists.
var liveStreams = strings.Repeat(`,{"name":"s","shard":2,"replicas":[{"node":"a","phase":"live","lagMs":0},{"node":"b","phase":"live","lagMs":0}]}`, 12)

const statusTable = `cluster of 4 nodes, 3 alive (answered by a); bus of 3 shards × 3 replicas; PERSISTED once a majority of a stream's replicas fsynced; a node silent for 5m0s is replaced

NODES (* coordinator)
  NAME  STATE                    HTTP                  STREAMS  UNREADY
  a *   alive                    http://10.0.0.1:8080  14       0
  b     alive                    http://10.0.0.2:8080  14       2
  c     silent for 42 s          http://10.0.0.3:8080  14       0
  d     alive, no status answer  http://10.0.0.4:8080  0        0

BUS (messages held; each node's consumer: messages not yet applied)
  SHARD             LEADER  REPLICAS  HELD   PENDING
  SENSORIUM_FRAG_0  a       a b c     1,204  a 0 · b 1,187 · c 1,204
  SENSORIUM_FRAG_1  none    a b c     0      -

STREAMS
  cam-7   shard 0  a live · b filling (lag 12m34s; fill from a: connection reset) · c unknown
  pump-1  shard 1  a live · b joining (lag 1.2 s) · c unknown
  13 more streams, all replicas live
`

// clusterStub answers GET /v1/cluster with body and records the other
// requests it gets.
func clusterStub(t *testing.T, body string) (url string, requests *[]string) {
	t.Helper()
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/cluster":
			_, _ = io.WriteString(w, body)
		case r.Method == http.MethodPost && r.URL.Path == "/v1/cluster/remove" && strings.Contains(string(b), `"alive"`):
			w.Header().Set("x-amzn-ErrorType", "InvalidArgumentException")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"InvalidArgumentException","message":"cluster: node alive is alive; stop it before removing it"}`)
		case r.Method == http.MethodPost && r.URL.Path == "/v1/cluster/remove":
			_, _ = io.WriteString(w, "null")
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &got
}

// runCLIOut runs the command line in-process and returns the exit status,
// stdout and stderr.
func runCLIOut(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestClusterStatusTable(t *testing.T) {
	ep, _ := clusterStub(t, statusJSON)
	code, out, stderr := runCLIOut(t, "cluster", "status", "--endpoint", ep)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if out != statusTable {
		t.Errorf("status table:\n%s\nwant:\n%s", out, statusTable)
	}

	// --all lists the streams whose replicas are all live too, after the others.
	_, out, _ = runCLIOut(t, "cluster", "status", "--all", "--endpoint", ep)
	lines := strings.Split(strings.TrimSpace(out[strings.Index(out, "STREAMS\n"):]), "\n")
	if len(lines) != 1+2+13 || !strings.HasPrefix(lines[1], "  cam-7") || !strings.HasPrefix(lines[3], "  alpha ") || strings.Contains(out, "more streams") {
		t.Errorf("--all: %q", lines)
	}

	// --json is the answer as it came.
	_, out, _ = runCLIOut(t, "cluster", "status", "--json", "--endpoint", ep)
	if out != statusJSON+"\n" {
		t.Errorf("--json printed %q", out)
	}
}

// A few streams, all live, are listed; many are counted.
func TestClusterStatusStreams(t *testing.T) {
	live := func(name string) string {
		return `{"name":"` + name + `","shard":0,"replicas":[{"node":"a","phase":"live","lagMs":0}]}`
	}
	cases := []struct {
		name    string
		streams []string
		want    string
	}{
		{"none", nil, "STREAMS\n  none\n"},
		{"two", []string{live("y"), live("x")}, "STREAMS\n  x  shard 0  a live\n  y  shard 0  a live\n"},
		{"eleven", slices.Repeat([]string{live("z")}, 11),
			"STREAMS\n" + strings.Repeat("  z  shard 0  a live\n", 10) + "  1 more stream, all replicas live\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ep, _ := clusterStub(t, `{"node":"a","nodes":[],"bus":[],"streams":[`+strings.Join(tc.streams, ",")+`]}`)
			code, out, stderr := runCLIOut(t, "cluster", "status", "--endpoint", ep)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if got := out[strings.Index(out, "STREAMS\n"):]; got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestClusterRemove(t *testing.T) {
	ep, requests := clusterStub(t, statusJSON)
	code, out, stderr := runCLIOut(t, "cluster", "remove", "c", "--endpoint", ep)
	if code != 0 || !strings.HasPrefix(out, "c: removed from the cluster") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if want := `POST /v1/cluster/remove {"Node":"c"}`; len(*requests) != 1 || (*requests)[0] != want {
		t.Errorf("requests %q, want %q", *requests, want)
	}
	code, _, stderr = runCLIOut(t, "cluster", "remove", "alive", "--endpoint", ep)
	if code != 1 || !strings.Contains(stderr, "stop it before removing it (InvalidArgumentException)") {
		t.Errorf("removing a live node: exit %d, stderr %q", code, stderr)
	}
}

// A server that is not a cluster node says so, and so does one that is
// not a Sensorium server at all; a wrong command line exits 2.
func TestClusterErrors(t *testing.T) {
	ep := startServer(t).HTTPURL()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	defer other.Close()
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"status of a single node", []string{"cluster", "status", "--endpoint", ep}, 1, ep + ": this server is a single node (serve --node makes a cluster node)"},
		{"remove on a single node", []string{"cluster", "remove", "c", "--endpoint", ep}, 1, "this server is a single node (serve --node makes a cluster node)"},
		{"not a Sensorium server", []string{"cluster", "status", "--endpoint", other.URL}, 1, "404 Not Found without an API error type (empty body); is --endpoint a Sensorium server?"},
		{"remove without a node", []string{"cluster", "remove", "--endpoint", ep}, 2, "takes a node name"},
		{"status with an argument", []string{"cluster", "status", "c", "--endpoint", ep}, 2, `unknown command "c"`},
		{"unknown subcommand", []string{"cluster", "stat"}, 2, `did you mean "status"?`},
		{"bad endpoint", []string{"cluster", "status", "--endpoint", "127.0.0.1:8080"}, 2, "is not an http:// or https:// URL"},
		{"negative timeout", []string{"cluster", "status", "--endpoint", ep, "--timeout", "-1s"}, 2, "--timeout -1s is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and %q on one line", code, stderr, tc.code, tc.want)
			}
		})
	}
}

// A server that never answers: the status gives up after --timeout.
func TestClusterStatusTimeout(t *testing.T) {
	ep := silentListener(t)
	var code int
	var stderr string
	within(t, "cluster status", func() {
		code, stderr = runCLI(t, "cluster", "status", "--endpoint", ep, "--timeout", testTimeout.String())
	})
	if code != 1 || !strings.Contains(stderr, "no answer from "+ep+"/v1/cluster within "+testTimeout.String()+" (see --timeout and --endpoint)") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// The status request is signed as the other commands' are: a server with
// --credentials refuses it unsigned and takes it signed.
func TestClusterStatusSigned(t *testing.T) {
	const id, secret = "AKIDCLUSTERTEST1", "cluster-secret-0123456789abcdef"
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[ops]\naws_access_key_id = "+id+"\naws_secret_access_key = "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := server.Start(context.Background(), server.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	ep := srv.HTTPURL()
	if code, stderr := runCLI(t, "cluster", "status", "--endpoint", ep); code != 1 || !strings.Contains(stderr, "MissingAuthenticationToken") {
		t.Errorf("unsigned: exit %d, stderr %q", code, stderr)
	}
	// Past the signature check, the single node's own answer.
	for _, args := range [][]string{{"status"}, {"remove", "c"}} {
		args = append([]string{"cluster"}, append(args, "--endpoint", ep, "--profile", "ops")...)
		if code, stderr := runCLI(t, args...); code != 1 || !strings.Contains(stderr, "this server is a single node") {
			t.Errorf("%v signed: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// The cluster demo, shortened: three serve processes (this test binary,
// as the CLI), one killed and restarted, and every check passed.
func TestClusterDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three servers for about half a minute")
	}
	t.Setenv(cliEnv, "1") // for the nodes it starts
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"demo", "--nodes", "3", "--seconds", "20", "--data", dir}, &stdout, &stderr)
	if code != 0 {
		for _, n := range []string{"a", "b", "c"} {
			if b, err := os.ReadFile(filepath.Join(dir, n+".log")); err == nil {
				t.Logf("%s.log:\n%s", n, b)
			}
		}
		t.Fatalf("exit %d: %s\n%s", code, stderr.String(), stdout.String())
	}
	for _, want := range []string{"SIGKILL node", "ingest went on", "caught up", "every node lists every PERSISTED fragment, the same list", "b identical · c identical", "Every check passed"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the demo did not say %q:\n%s", want, stdout.String())
		}
	}
}
