package main

import (
	"fmt"
	"io"
	"net/url"
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

// addEndpoint adds --endpoint and --timeout to a client command and returns
// a getter of the client, which fails with a usage error when either is wrong.
func addEndpoint(cmd *cobra.Command) func() (*sdk.Client, error) {
	def := os.Getenv(endpointEnv)
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	ep := cmd.Flags().String("endpoint", def, "URL of the server's HTTP API (or $"+endpointEnv+")")
	timeout := cmd.Flags().Duration("timeout", sdk.DefaultTimeout,
		"how long to wait for the server's answer (for get and query: for the start of it; a download is never cut off); 0: no limit")
	signing := addSigning(cmd)
	return func() (*sdk.Client, error) {
		if err := checkEndpoint(*ep); err != nil {
			return nil, err
		}
		creds, err := signing()
		if err != nil {
			return nil, err
		}
		o := sdk.ClientOptions{Timeout: *timeout, Credentials: creds}
		switch {
		case *timeout < 0:
			return nil, usagef("--timeout %v is negative (0 waits without a limit)", *timeout)
		case *timeout == 0:
			o.Timeout = -1 // no limit, in the SDK's terms
		}
		return sdk.NewClientWithOptions(*ep, o), nil
	}
}

// addSigning adds --profile and --region and returns a getter of the
// credentials that sign the command's requests, found as the AWS CLI finds
// them: $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, or the profile of
// ~/.aws/credentials ($AWS_SHARED_CREDENTIALS_FILE). With none, requests go
// unsigned (a server without --credentials).
func addSigning(cmd *cobra.Command) func() (*sdk.Credentials, error) {
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	profile := cmd.Flags().String("profile", "", "profile of ~/.aws/credentials ($AWS_SHARED_CREDENTIALS_FILE) that signs the requests (default $AWS_PROFILE, or $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, or [default])")
	reg := cmd.Flags().String("region", region, "region the server signs for (its --region; default $AWS_REGION)")
	return func() (*sdk.Credentials, error) {
		creds, err := sdk.LoadCredentials(*profile)
		if err != nil {
			return nil, usagef("--profile: %v", err)
		}
		if creds != nil {
			creds.Region = *reg
		}
		return creds, nil
	}
}

// checkEndpoint rejects an endpoint that is not an http(s) URL with a host,
// which would otherwise fail later with a puzzling message
// ("unsupported protocol scheme" for 127.0.0.1:8080).
func checkEndpoint(ep string) error {
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--endpoint %q is not an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080", ep)
	}
	return nil
}

// exclusive returns a usage error when more than one of the flags names is
// given; why says what makes them conflict.
func exclusive(cmd *cobra.Command, why string, names ...string) error {
	var set []string
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			set = append(set, "--"+n)
		}
	}
	if len(set) > 1 {
		return usagef("%s cannot be given together: %s", strings.Join(set, " and "), why)
	}
	return nil
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
	if err := refuseTerminal(path); err != nil {
		return nil, false, err
	}
	if path == "" || path == "-" {
		return nopCloser{os.Stdout}, false, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, false, err
	}
	return f, true, nil
}

// refuseTerminal is output's check, for a command to make before it asks the
// server for anything.
func refuseTerminal(path string) error {
	if (path == "" || path == "-") && term.IsTerminal(int(os.Stdout.Fd())) {
		return usagef("refusing to write binary data to a terminal; use -o FILE or redirect stdout")
	}
	return nil
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
