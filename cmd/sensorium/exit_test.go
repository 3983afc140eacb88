package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/sdk"
)

// startServer runs an in-process server on loopback ports for the test.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	srv, err := server.Start(context.Background(), server.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv
}

// runCLI runs the command line in-process and returns the exit status and
// what went to stderr.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stderr.String()
}

// A wrong command line exits 2 with one line that says what is wrong, before
// any request; a command that runs and fails exits 1.
func TestExitStatus(t *testing.T) {
	srv := startServer(t)
	ep := srv.HTTPURL()
	if _, err := sdk.NewClient(ep, nil).CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: "s", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want string // in the one line on stderr
	}{
		{"unknown command", []string{"bogus"}, 2, `unknown command "bogus" for "sensorium"`},
		{"unknown stream subcommand", []string{"stream", "bogus"}, 2, `unknown command "bogus" for "sensorium stream"`},
		{"misspelt subcommand", []string{"stream", "lst"}, 2, `did you mean "list"?`},
		{"bad flag", []string{"stream", "list", "--bogus", "--endpoint", ep}, 2, "unknown flag: --bogus"},
		{"bad flag value", []string{"fragments", "s", "--limit", "x", "--endpoint", ep}, 2, `invalid argument "x"`},
		{"extra argument", []string{"stream", "list", "extra", "--endpoint", ep}, 2, `unknown command "extra" for "sensorium stream list"`},
		{"extra argument to serve", []string{"serve", "extra"}, 2, `"extra"`},
		{"pprof on a public address", []string{"serve", "--pprof", "0.0.0.0:0"}, 2, "is not a loopback address"},
		{"pprof without a port", []string{"serve", "--pprof", "127.0.0.1"}, 2, "missing port"},
		{"missing argument", []string{"stream", "create", "--endpoint", ep}, 2, "takes a stream name"},
		{"endpoint without scheme", []string{"stream", "list", "--endpoint", strings.TrimPrefix(ep, "http://")}, 2, "is not an http:// or https:// URL"},
		{"negative timeout", []string{"stream", "list", "--endpoint", ep, "--timeout", "-1s"}, 2, "--timeout -1s is negative"},
		{"change without sign", []string{"stream", "update-retention", "s", "--change", "48", "--endpoint", ep}, 2, "--change must be +HOURS or -HOURS"},
		{"change with junk", []string{"stream", "update-retention", "s", "--change", "+48x", "--endpoint", ep}, 2, "--change must be +HOURS or -HOURS"},
		{"negative retention", []string{"stream", "create", "t", "--retention-hours", "-1", "--endpoint", ep}, 2, "--retention-hours -1 is negative"},
		{"tag twice", []string{"stream", "create", "t", "--tag", "a=1", "--tag", "a=2", "--endpoint", ep}, 2, "--tag a is given twice"},
		{"fragments --end without --start", []string{"fragments", "s", "--end", "now", "--endpoint", ep}, 2, "--end needs --start"},
		{"fragments --basis without --start", []string{"fragments", "s", "--basis", "server", "--endpoint", ep}, 2, "--basis needs --start"},
		{"fragments bad --basis", []string{"fragments", "s", "--basis", "foo", "--endpoint", ep}, 2, `--basis must be producer or server, not "foo"`},
		{"fragments bad --basis with --start", []string{"fragments", "s", "--start", "-1h", "--basis", "foo", "--endpoint", ep}, 2, `--basis must be producer or server`},
		{"fragments bad --end", []string{"fragments", "s", "--start", "-1h", "--end", "soon", "--endpoint", ep}, 2, `time "soon"`},
		{"fragments --end before --start", []string{"fragments", "s", "--start", "-1h", "--end", "-2h", "--endpoint", ep}, 2, "is before --start"},
		{"fragments negative --limit", []string{"fragments", "s", "--limit", "-1", "--endpoint", ep}, 2, "--limit -1 is negative"},
		{"get three start selectors", []string{"get", "s", "--fragment", "3", "--after-token", "1", "--from", "now", "--endpoint", ep}, 2, "--from and --fragment and --after-token cannot be given together"},
		{"get two start selectors", []string{"get", "s", "--fragment", "3", "--from", "-1h", "--endpoint", ep}, 2, "cannot be given together"},
		{"get --fragments --follow", []string{"get", "s", "--fragments", "1,2", "--follow", "--endpoint", ep}, 2, "--fragments and --follow cannot be given together"},
		{"get --fragments --from", []string{"get", "s", "--fragments", "1,2", "--from", "-1h", "--endpoint", ep}, 2, "--fragments and --from cannot be given together"},
		{"get empty fragment number", []string{"get", "s", "--fragments", "1,,2", "--endpoint", ep}, 2, "empty fragment number"},
		{"get --from now without --follow", []string{"get", "s", "--from", "now", "--endpoint", ep}, 2, "--from now gets nothing without --follow"},
		{"query without --start", []string{"query", "s", "--endpoint", ep}, 2, "--start is required"},
		{"query bad --basis", []string{"query", "s", "--start", "-1h", "--basis", "foo", "--endpoint", ep}, 2, `--basis must be producer or server, not "foo"`},
		{"query bad --layout", []string{"query", "s", "--start", "-1h", "--layout", "cols", "--endpoint", ep}, 2, `--layout must be rows or frames, not "cols"`},
		{"query empty range", []string{"query", "s", "--start", "-1h", "--end", "-1h", "--endpoint", ep}, 2, "is not after --start"},
		{"query empty channel", []string{"query", "s", "--start", "-1h", "--channels", "x,", "--endpoint", ep}, 2, "empty channel name"},

		{"unknown stream", []string{"stream", "describe", "nope", "--endpoint", ep}, 1, "ResourceNotFoundException"},
		{"fragments of an unknown stream", []string{"fragments", "nope", "--start", "-1h", "--basis", "server", "--endpoint", ep}, 1, "ResourceNotFoundException"},
		{"get with one start selector runs", []string{"get", "nope", "--fragment", "1", "--endpoint", ep}, 1, "Exception)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			line := strings.TrimSuffix(stderr, "\n")
			if strings.Contains(line, "\n") || !strings.HasPrefix(line, "sensorium: ") {
				t.Errorf("stderr is not one line: %q", stderr)
			}
			if !strings.Contains(line, tc.want) {
				t.Errorf("stderr %q does not say %q", line, tc.want)
			}
		})
	}
}

// A group of commands called alone prints its help and exits 0.
func TestGroupAloneShowsHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"stream"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "Available Commands:") {
			t.Errorf("%v: no help on stdout: %q", args, stdout.String())
		}
	}
}

// An endpoint that is not a Sensorium server answers 404 with an empty body:
// the message says the status, the URL and what to check.
func TestNotASensoriumServer(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	defer other.Close()
	code, stderr := runCLI(t, "stream", "list", "--endpoint", other.URL)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"404 Not Found", other.URL + "/listStreams", "(empty body)", "is --endpoint a Sensorium server?"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not say %q", stderr, want)
		}
	}

	// The SDK's error is an *HTTPError, not an *APIError, and keeps the start of a body.
	text := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "<html>\n<h1>Bad Gateway</h1>\n</html>", http.StatusBadGateway)
	}))
	defer text.Close()
	_, err := sdk.NewClient(text.URL, nil).DescribeStream(context.Background(), sdk.ByName("s"))
	var he *sdk.HTTPError
	var ae *sdk.APIError
	switch {
	case !errors.As(err, &he) || errors.As(err, &ae):
		t.Fatalf("error %T %v, want an *sdk.HTTPError", err, err)
	case he.StatusCode != http.StatusBadGateway || he.Body != "<html> <h1>Bad Gateway</h1> </html>" || he.URL != text.URL+"/describeStream":
		t.Errorf("HTTPError %+v", he)
	}

	// A Sensorium server's own 404 stays an API error, without the hint.
	srv := startServer(t)
	code, stderr = runCLI(t, "stream", "describe", "nope", "--endpoint", srv.HTTPURL())
	if code != 1 || strings.Contains(stderr, "Sensorium server?") || !strings.Contains(stderr, "ResourceNotFoundException") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
