package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sensorium-io/sensorium/sdk"
)

const endpointEnv = "SENSORIUM_ENDPOINT"

// addEndpoint adds --endpoint to a client command and returns a getter of the client.
func addEndpoint(cmd *cobra.Command) func() *sdk.Client {
	def := os.Getenv(endpointEnv)
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	ep := cmd.Flags().String("endpoint", def, "URL of the server's HTTP API (or $"+endpointEnv+")")
	return func() *sdk.Client { return sdk.NewClient(*ep, nil) }
}

// parseTime reads a time given on the command line: RFC 3339
// (2026-11-24T12:00:00Z), "now", a duration relative to now (-1h, -90s), or
// Unix seconds (1732449600.5).
func parseTime(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+"):
		d, err := time.ParseDuration(s)
		if err == nil {
			return now.Add(d), nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
	}
	return time.Time{}, usagef("time %q is not RFC 3339 (2026-11-24T12:00:00Z), now, a relative duration (-1h) or Unix seconds", s)
}

// output opens the destination of a download: a file, or stdout for "-".
func output(path string) (io.WriteCloser, bool, error) {
	if path == "" || path == "-" {
		if term.IsTerminal(int(os.Stdout.Fd())) {
			return nil, false, usagef("refusing to write binary data to a terminal; use -o FILE or redirect stdout")
		}
		return nopCloser{os.Stdout}, false, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, false, err
	}
	return f, true, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// progress wraps w with a byte counter shown on stderr when stderr is a terminal.
func progress(w io.Writer, what string) (io.Writer, func()) {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return w, func() {}
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetDescription(what),
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	return io.MultiWriter(w, bar), func() { _ = bar.Finish() }
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
