package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/internal/service/replicate"
	"github.com/sensorium-io/sensorium/sdk"
)

func init() { registerCommand(newReplicateCmd) }

// defaultReplicateMetrics is where a replicator serves /metrics and
// /status unless told otherwise, and where `replicate status` asks.
const defaultReplicateMetrics = "127.0.0.1:9465"

func newReplicateCmd() *cobra.Command {
	var (
		from, to, toNATS, natsPrefix, streams, centrePrefix, stateDir string
		via                                                           string
		maxRate, schedule, metricsAddr, logLevel, logFormat, decimate string
		fromProfile, toProfile, fromRegion, toRegion                  string
		retention, batch                                              int
		poll, discover, ackTimeout, timeout                           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "replicate --from EDGE --to CENTRE --streams PATTERNS --state DIR",
		Short: "Copy streams from an edge server to a central one, exactly once, until stopped",
		Long: `Copy the edge streams whose names match --streams (path patterns, comma
separated: 'pump-*,cam-?') to the central server, fragment by fragment, with
their producer timestamps, frames and tags; each copy at the centre also
carries origin_fragment_number and origin_server_timestamp, the edge
fragment it came from. New edge streams that match are found as they appear
(every --discover) and created at the centre with the edge stream's media
type and retention (or --retention-hours); new fragments follow within
--poll of being PERSISTED at the edge, and after an outage (of the link,
the centre, or this process) the backlog is sent in order.

Every fragment is stored once at the centre, whatever fails: each stream's
journal in --state gives each edge fragment a sequence, on disk before the
fragment is sent, and the centre's store recognises a fragment sent again
under that key. The edge is read over its HTTP API (--from); the centre's
control plane is its HTTP API (--to) and fragments go to its NATS
(--to-nats, default the --to host on port 4222), or with --via http in
PutMedia sessions over its HTTP API, signed like every other call, for a
site whose only way out is HTTPS. docs/REPLICATION.md has the details.

--decimate 'vib-*=10' sends the scalar tracks (sampled signals) of the
matching streams at a tenth of their rate, each sample the mean of ten on a
grid counted from the Unix epoch; other tracks pass unchanged.

--max-rate caps the bytes per second sent to the centre (all streams
together): 500k, 10M, 1.5G are bytes (powers of 1000), 10MiB powers of 1024,
and 100Mbit bits. --schedule limits sending to daily windows in local time
('22:00-06:00' or '12:00-13:00,22:00-06:00'); outside them the backlog grows
and is sent in the next window.

Keys: --from-profile and --to-profile name profiles of ~/.aws/credentials
($AWS_SHARED_CREDENTIALS_FILE), one per server; without one, the key of the
environment ($AWS_ACCESS_KEY_ID, $AWS_PROFILE, [default]) signs, or none.
The centre's key also logs in to its NATS. Keys are never logged.

Lag and backlog per stream are on --metrics (Prometheus /metrics, and
/status, which 'sensorium replicate status' prints).`,
		Example: `  sensorium replicate --from http://127.0.0.1:8080 --to https://centre.example:8443 \
      --streams 'pump-*,press-7' --state /var/lib/sensorium-replicate \
      --to-profile centre --centre-prefix site3- --max-rate 2M --schedule 22:00-06:00
  sensorium replicate status`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "URL of the edge server's HTTP API (required)")
	f.StringVar(&to, "to", "", "URL of the central server's HTTP API (required)")
	f.StringVar(&toNATS, "to-nats", "", "URL of the central server's NATS (default nats://<--to host>:4222)")
	f.StringVar(&via, "via", replicate.ViaNATS, "how fragments reach the centre: nats (its NATS, --to-nats) or http (PutMedia over --to, for HTTPS-only links)")
	f.StringVar(&natsPrefix, "to-nats-prefix", "sensorium", "the central server's NATS subject prefix (its serve --prefix)")
	f.StringVar(&streams, "streams", "", "edge streams to copy: name patterns, comma separated (required)")
	f.StringVar(&centrePrefix, "centre-prefix", "", "put before each stream's name at the centre (e.g. site3-)")
	f.IntVar(&retention, "retention-hours", -1, "retention in hours of the streams created at the centre; -1: the edge stream's")
	f.StringVar(&stateDir, "state", "", "folder of the replicator's journals (required; one replicator per folder)")
	f.StringVar(&maxRate, "max-rate", "", "bandwidth cap to the centre, e.g. 2M (bytes/s), 10MiB, 100Mbit (default none)")
	f.StringVar(&decimate, "decimate", "", "streams whose sampled signals reach the centre at 1/N of their rate, e.g. 'vib-*=10' (block means)")
	f.StringVar(&schedule, "schedule", "", "daily windows when sending is allowed, local time, e.g. 22:00-06:00 (default always)")
	f.StringVar(&metricsAddr, "metrics", defaultReplicateMetrics, "address of /metrics and /status (\"\" for none)")
	f.StringVar(&fromProfile, "from-profile", "", "profile of ~/.aws/credentials that signs requests to the edge")
	f.StringVar(&toProfile, "to-profile", "", "profile of ~/.aws/credentials that signs requests to the centre and logs in to its NATS")
	f.StringVar(&fromRegion, "from-region", "us-east-1", "region the edge signs for (its --region)")
	f.StringVar(&toRegion, "to-region", "us-east-1", "region the centre signs for (its --region)")
	f.DurationVar(&poll, "poll", time.Second, "how often a caught-up stream asks the edge for new fragments")
	f.DurationVar(&discover, "discover", 30*time.Second, "how often the edge's streams are listed for new matches")
	f.DurationVar(&ackTimeout, "ack-timeout", 30*time.Second, "how long a sent fragment may wait for the centre's PERSISTED before it is sent again")
	f.IntVar(&batch, "batch", 100, "fragments sent before their confirmations are awaited")
	f.DurationVar(&timeout, "timeout", sdk.DefaultTimeout, "how long to wait for either server's answer to one call")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	_ = cmd.MarkFlagRequired("streams")
	_ = cmd.MarkFlagRequired("state")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkEndpointFlag("--from", from); err != nil {
			return err
		}
		if err := checkEndpointFlag("--to", to); err != nil {
			return err
		}
		if !validNamePrefix(centrePrefix) {
			return usagef("--centre-prefix %q: stream names are letters, digits, _ . and -", centrePrefix)
		}
		patterns := splitList(streams)
		if err := replicate.CheckPatterns(patterns); err != nil {
			return usagef("--streams: %v", err)
		}
		var natsURL string
		switch via {
		case replicate.ViaNATS:
			u, err := centreNATS(toNATS, to)
			if err != nil {
				return err
			}
			natsURL = u
		case replicate.ViaHTTP:
			if toNATS != "" {
				return usagef("--to-nats is for --via nats; with --via http fragments go to --to")
			}
		default:
			return usagef("--via %q: nats or http", via)
		}
		rate, err := parseRate(maxRate)
		if err != nil {
			return usagef("--max-rate: %v", err)
		}
		decim, err := replicate.ParseDecimations(decimate)
		if err != nil {
			return usagef("--decimate: %v", err)
		}
		sched, err := replicate.ParseSchedule(schedule, time.Local)
		if err != nil {
			return usagef("--schedule: %v", err)
		}
		switch {
		case retention < -1:
			return usagef("--retention-hours %d is negative", retention)
		case poll <= 0 || discover <= 0 || ackTimeout <= 0:
			return usagef("--poll, --discover and --ack-timeout must be positive")
		case batch < 1 || batch > 1000:
			return usagef("--batch %d is not between 1 and 1000", batch)
		case timeout < 0:
			return usagef("--timeout %v is negative", timeout)
		}
		if metricsAddr != "" {
			if _, _, err := net.SplitHostPort(metricsAddr); err != nil {
				return usagef("--metrics %q: %v", metricsAddr, err)
			}
		}
		log, err := newLogger(logLevel, logFormat)
		if err != nil {
			return err
		}
		edgeCreds, err := profileCreds("--from-profile", fromProfile, fromRegion)
		if err != nil {
			return err
		}
		centreCreds, err := profileCreds("--to-profile", toProfile, toRegion)
		if err != nil {
			return err
		}
		o := sdk.ClientOptions{Timeout: timeout}
		if timeout == 0 {
			o.Timeout = -1
		}
		eo, co := o, o
		eo.Credentials, co.Credentials = edgeCreds, centreCreds
		cfg := replicate.Config{
			Edge: sdk.NewClientWithOptions(from, eo), Centre: sdk.NewClientWithOptions(to, co),
			Via: via, CentreNATS: natsURL, CentrePrefix: natsPrefix, Streams: patterns, CentreNamePrefix: centrePrefix,
			RetentionHours: retention, StateDir: stateDir, MaxRate: rate, Schedule: sched, Decimate: decim,
			Poll: poll, Discover: discover, BatchFragments: batch, AckTimeout: ackTimeout, Logger: log,
		}
		if centreCreds != nil {
			cfg.CentreNATSOptions = centreCreds.NATSOptions()
		}
		r, err := replicate.New(cfg)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		if metricsAddr != "" {
			ln, err := net.Listen("tcp", metricsAddr)
			if err != nil {
				return fmt.Errorf("--metrics: %w", err)
			}
			hs := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
			go func() { _ = hs.Serve(ln) }()
			defer hs.Close()
			log.Info("replicate: metrics and status", "addr", "http://"+ln.Addr().String())
		}
		log.Info("replicate: started", "from", from, "to", to, "via", via, "nats", natsURL, "streams", strings.Join(patterns, ","),
			"schedule", sched.String(), "max_rate", rate)
		return r.Run(ctx)
	}
	cmd.AddCommand(newReplicateStatusCmd(), newReplicateSkipCmd())
	return cmd
}

// checkEndpointFlag is checkEndpoint for a flag other than --endpoint.
func checkEndpointFlag(flag, ep string) error {
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("%s %q is not an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080", flag, ep)
	}
	return nil
}

// validNamePrefix reports whether p may start a stream name.
func validNamePrefix(p string) bool {
	if len(p) > 200 {
		return false
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// centreNATS is --to-nats, or the --to host on NATS's port.
func centreNATS(flag, httpURL string) (string, error) {
	if flag == "" {
		u, _ := url.Parse(httpURL) // checked
		scheme := "nats"
		if u.Scheme == "https" {
			scheme = "tls"
		}
		return scheme + "://" + net.JoinHostPort(u.Hostname(), "4222"), nil
	}
	u, err := url.Parse(flag)
	if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
		return "", usagef("--to-nats %q is not a nats:// or tls:// URL with a host, e.g. nats://centre.example:4222", flag)
	}
	return flag, nil
}

// profileCreds loads the key of one side.
func profileCreds(flag, profile, region string) (*sdk.Credentials, error) {
	creds, err := sdk.LoadCredentials(profile)
	if err != nil {
		return nil, usagef("%s: %v", flag, err)
	}
	if creds != nil {
		creds.Region = region
	}
	return creds, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseRate reads a bandwidth: bytes per second with an SI (k, M, G: powers
// of 1000) or binary (KiB, MiB, GiB) suffix, an optional B, or bits with
// kbit, Mbit, Gbit. "" is no cap (0).
func parseRate(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   float64
	}{
		{"Gbit", 1e9 / 8}, {"Mbit", 1e6 / 8}, {"kbit", 1e3 / 8}, {"Kbit", 1e3 / 8},
		{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"KB", 1e3},
		{"G", 1e9}, {"M", 1e6}, {"k", 1e3}, {"K", 1e3}, {"B", 1},
	}
	mult, num := 1.0, s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			mult, num = u.mult, strings.TrimSuffix(s, u.suffix)
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v <= 0 || v*mult < 1 || v*mult > 1e15 {
		return 0, fmt.Errorf("%q is not a rate such as 500k, 2M (bytes per second), 10MiB or 100Mbit", s)
	}
	return int64(v * mult), nil
}

func newReplicateStatusCmd() *cobra.Command {
	var addr, state string
	var raw bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a running replicator's streams: state, lag, backlog, what was sent",
		Long: `Ask the replicator serving --metrics for its status and print one line per
stream:

  STATE     live (caught up), catching up, paused (outside --schedule),
            retrying (after an error: see the last column), refused (stopped
            at a fragment the centre refused, tried again after each pause:
            a line under the table says which, and whether the centre's copy
            has a hole there), stopped (the edge stream is gone)
  LAG       age of the oldest edge fragment the centre has not confirmed
  BACKLOG   fragments and bytes the centre has not confirmed
  SENT      fragments and bytes sent by this replicator process (re-sends
            included; RESENT counts them)

With --state, read the state folder instead, for a replicator that is not
running: per stream, the newest edge fragment the centre confirmed, what
was sent and not yet confirmed, and the totals since the journal began.`,
		Example: `  sensorium replicate status
  sensorium replicate status --metrics 127.0.0.1:9465 --json
  sensorium replicate status --state /var/lib/sensorium-replicate`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&addr, "metrics", defaultReplicateMetrics, "the replicator's --metrics address")
	cmd.Flags().BoolVar(&raw, "json", false, "print the status as JSON")
	cmd.Flags().StringVar(&state, "state", "", "read this state folder instead of asking a running replicator")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if state != "" {
			if cmd.Flags().Changed("metrics") {
				return usagef("--state and --metrics cannot be given together: --state reads the folder, --metrics asks the running replicator")
			}
			js, err := replicate.ReadJournals(state)
			if err != nil {
				return err
			}
			if raw {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(js)
			}
			return writeJournals(cmd.OutOrStdout(), state, js)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return usagef("--metrics %q: %v", addr, err)
		}
		st, body, err := fetchReplicateStatus(cmd.Context(), addr)
		if err != nil {
			return err
		}
		if raw {
			_, err := cmd.OutOrStdout().Write(body)
			return err
		}
		return writeReplicateStatus(cmd.OutOrStdout(), st)
	}
	return cmd
}

func fetchReplicateStatus(ctx context.Context, addr string) (replicate.Status, []byte, error) {
	var st replicate.Status
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := "http://" + addr + replicate.StatusPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return st, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, nil, fmt.Errorf("no replicator answers at %s (its --metrics): %w", addr, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return st, nil, fmt.Errorf("reading %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, nil, fmt.Errorf("%s answered %s; is --metrics a replicator's?", u, resp.Status)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, nil, fmt.Errorf("%s did not answer a replicator's status: %w", u, err)
	}
	return st, body, nil
}

func writeReplicateStatus(w io.Writer, st replicate.Status) error {
	rate := "no bandwidth cap"
	if st.MaxRate > 0 {
		rate = "at most " + humanBytes(st.MaxRate) + "/s"
	}
	open := "open"
	if !st.ScheduleOpen {
		open = "closed"
	}
	fmt.Fprintf(w, "replicating %d streams since %s; schedule %s (%s now); %s\n\n", len(st.Streams),
		st.Since.Local().Format(time.DateTime), st.Schedule, open, rate)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tCENTRE\tSTATE\tLAG\tBACKLOG\tSENT\tRESENT\tERRORS\tLAST CONFIRMED\tLAST ERROR")
	for _, s := range st.Streams {
		lag := "-"
		if s.BacklogFragments > 0 {
			lag = (time.Duration(s.LagSeconds * float64(time.Second))).Round(time.Second).String()
		}
		last := s.LastConfirmed
		if last == "" {
			last = "-"
		}
		errText := s.LastError
		if len(errText) > 120 {
			errText = errText[:117] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d (%s)\t%d (%s)\t%d\t%d\t%s\t%s\n", s.Edge, s.Centre, s.State, lag,
			s.BacklogFragments, humanBytes(s.BacklogBytes), s.SentFragments, humanBytes(int64(s.SentBytes)), s.ResentFragments, s.Errors, last, errText)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range st.Streams {
		writeRefusal(w, s.Edge, s.Refused, s.SkippedFragments, "")
	}
	return nil
}

// writeRefusal writes the lines that say a stream's copy is stopped at a
// fragment the centre refused, and what the centre's copy lacks: the
// status table has no room for them, and an operator must not miss them.
func writeRefusal(w io.Writer, stream string, r *replicate.RefusalStatus, skipped int, stateDir string) {
	if r != nil {
		fmt.Fprintf(w, "\n%s: stopped at edge fragment %s (sequence %d): the centre refused it since %s: %s (%d): %s\n", stream, r.Fragment, r.Sequence,
			r.Since.Local().Format(time.DateTime), r.Code, r.ErrorID, r.Message)
		dir := "DIR"
		if stateDir != "" {
			dir = stateDir
		}
		if r.StoredAfter > 0 {
			fmt.Fprintf(w, "  the centre stored %d fragments after it, so its copy has a hole there that it cannot fill (it refuses a fragment older than its newest);\n"+
				"  to go on without it, stop the replicator and run: sensorium replicate skip %s --state %s\n", r.StoredAfter, stream, dir)
		} else {
			fmt.Fprintf(w, "  nothing after it was stored: mend the cause at the centre (a limit, the stream) and the next try copies it and goes on,\n"+
				"  or, to go on without it, stop the replicator and run: sensorium replicate skip %s --state %s\n", stream, dir)
		}
	}
	if skipped > 0 {
		fmt.Fprintf(w, "%s: refused fragments skipped (sensorium replicate skip): %d; the centre's copy lacks them\n", stream, skipped)
	}
}

func writeJournals(w io.Writer, dir string, js []replicate.JournalSummary) error {
	fmt.Fprintf(w, "%d streams in the state folder %s (what a running replicator last wrote)\n\n", len(js), dir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tCENTRE\tLAST CONFIRMED\tUNCONFIRMED\tSENT\tEXPIRED\tPRODUCER ID")
	for _, j := range js {
		last := j.LastConfirmed
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d (%s)\t%d (%s)\t%d\t%s\n", j.EdgeStream, j.CentreStream, last, j.PendingFragments,
			humanBytes(j.PendingBytes), j.SentFragments, humanBytes(int64(j.SentBytes)), j.ExpiredFragments, j.ProducerID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, j := range js {
		writeRefusal(w, j.EdgeStream, j.Refused, j.SkippedFragments, dir)
	}
	return nil
}

func newReplicateSkipCmd() *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "skip STREAM --state DIR",
		Short: "Let a stream's copy go on without the fragment the centre refused",
		Long: `A stream whose fragment the centre refused (ERROR: a smaller size limit, a
stream written by someone else) stops at that fragment and tries it again
after each pause; 'sensorium replicate status' says so. When the cause can
be mended at the centre, mend it: the next try copies the fragment and the
copy goes on, whole. When it cannot — in particular when the centre stored
fragments after the refused one (those already on their way), after which
it refuses the older one for good — skip it: the fragment is dropped from the
stream's journal and recorded there as skipped, and the copy goes on
without it when the replicator starts again. The centre's copy then lacks
that fragment; status and the metric sensorium_replicate_skipped_fragments
keep saying so.

STREAM is the edge stream's name (or the centre's). The replicator using
--state must be stopped first (it holds the folder's lock).`,
		Example: `  sensorium replicate skip pump-1 --state /var/lib/sensorium-replicate`,
		Args:    exactArgs(1, "a stream name"),
	}
	cmd.Flags().StringVar(&state, "state", "", "the replicator's state folder")
	_ = cmd.MarkFlagRequired("state")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		sum, err := replicate.SkipRefused(state, args[0])
		if err != nil {
			return err
		}
		r := sum.Refused
		fmt.Fprintf(cmd.OutOrStdout(), "%s: skipped edge fragment %s (sequence %d, refused by the centre: %s: %s); the centre's copy of %s lacks it. "+
			"The copy goes on when the replicator starts.\n", sum.EdgeStream, r.Fragment, r.Sequence, r.Code, r.Message, sum.CentreStream)
		return nil
	}
	return cmd
}
