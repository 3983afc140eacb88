package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/service/cluster"
	"github.com/sensorium-io/sensorium/sdk"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show a cluster's nodes, bus and stream replicas; take a stopped node out",
		Long: `Talk to any node of a cluster (a server started with serve --node): its
status, gathered from every node, and the removal of a node that is gone for
good.`,
		Example: `  sensorium cluster status --endpoint http://127.0.0.1:8080
  sensorium cluster remove c`,
	}
	requireSubcommand(cmd)
	cmd.AddCommand(newClusterStatusCmd(), newClusterRemoveCmd())
	return cmd
}

func newClusterStatusCmd() *cobra.Command {
	var raw, all bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the nodes, the bus shards and each stream's replicas",
		Long: `Show what the node at --endpoint gathers from every node of its cluster:

  nodes     alive, or silent for how long; the coordinator (*), which
            re-places the streams of a node silent past --replace-after; its
            HTTP API; the streams placed on it and how many of those it does
            not serve reads for yet (unready)
  bus       each shard of the ingest bus: its leader and replicas, the
            messages it holds, and how many each node's consumer has yet to
            apply
  streams   each stream's shard and replicas, with each replica's phase
            (live; joining: catching up on the bus; filling: copying from
            another replica; absent; unknown: its node did not answer) and
            how far its newest fragment is behind the newest of any replica

Streams with a replica that is not live come first; when many streams have
every replica live they are counted rather than listed (--all lists them).`,
		Example: `  sensorium cluster status
  sensorium cluster status --endpoint http://10.0.0.2:8080 --profile ops
  sensorium cluster status --json | jq '.streams[] | select(.replicas[].phase != "live")'`,
		Args: cobra.NoArgs,
	}
	api := addClusterEndpoint(cmd)
	cmd.Flags().BoolVar(&raw, "json", false, "print the server's JSON as it came")
	cmd.Flags().BoolVar(&all, "all", false, "list every stream, also those whose replicas are all live")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := api()
		if err != nil {
			return err
		}
		st, body, err := c.status(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if raw {
			if !bytes.HasSuffix(body, []byte("\n")) {
				body = append(body, '\n')
			}
			_, err := out.Write(body)
			return err
		}
		limit := liveStreamsListed
		if all {
			limit = -1
		}
		return writeStatus(out, st, limit)
	}
	return cmd
}

func newClusterRemoveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remove NODE",
		Short: "Take a stopped node out of the cluster",
		Long: `Take NODE, which must be stopped, out of the cluster at once: its streams get
new replicas on the other nodes (filled from the surviving ones) and its bus
consumers are removed, as the coordinator does by itself once a node has
been silent for --replace-after. A node that is alive is refused. A node
removed this way that comes back later joins as a new, empty node.`,
		Example: `  sensorium cluster remove c
  sensorium cluster remove c --endpoint http://10.0.0.2:8080`,
		Args: exactArgs(1, "a node name"),
	}
	api := addClusterEndpoint(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := api()
		if err != nil {
			return err
		}
		if err := c.remove(cmd.Context(), args[0]); err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: removed from the cluster; its streams are placed on the other nodes (cluster status shows them filling)\n", args[0])
		return err
	}
	return cmd
}

// errSingleNode is the answer of a server that is not a cluster node.
var errSingleNode = errors.New("this server is a single node (serve --node makes a cluster node)")

// clusterAPI calls a node's cluster routes (GET /v1/cluster, POST
// /v1/cluster/remove). They are Sensorium's, not Kinesis Video Streams
// operations, and so not the SDK's: clusterAPI signs them as the SDK signs
// its calls and reports failures with the SDK's error types, which oneLine
// tells a person about.
type clusterAPI struct {
	base    string
	hc      *http.Client
	timeout time.Duration // for the whole answer; 0: none
	creds   *sdk.Credentials
}

// addClusterEndpoint adds the client flags (addEndpoint's: --endpoint,
// --timeout, --profile, --region) and returns a getter of the clusterAPI
// they describe, which fails with a usage error when one is wrong.
func addClusterEndpoint(cmd *cobra.Command) func() (*clusterAPI, error) {
	client := addEndpoint(cmd)
	return func() (*clusterAPI, error) {
		if _, err := client(); err != nil { // checks every flag, credentials included
			return nil, err
		}
		f := cmd.Flags()
		ep, _ := f.GetString("endpoint")
		timeout, _ := f.GetDuration("timeout")
		profile, _ := f.GetString("profile")
		region, _ := f.GetString("region")
		creds, err := sdk.LoadCredentials(profile)
		if err != nil {
			return nil, usagef("--profile: %v", err)
		}
		if creds != nil {
			creds.Region = region
		}
		return newClusterAPI(ep, timeout, creds), nil
	}
}

func newClusterAPI(base string, timeout time.Duration, creds *sdk.Credentials) *clusterAPI {
	return &clusterAPI{base: strings.TrimRight(base, "/"), hc: http.DefaultClient, timeout: timeout, creds: creds}
}

// status returns the cluster's status and the JSON it came as.
func (c *clusterAPI) status(ctx context.Context) (cluster.Status, []byte, error) {
	var st cluster.Status
	body, err := c.do(ctx, "cluster status", http.MethodGet, "/v1/cluster", nil)
	if err != nil {
		return st, nil, err
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, body, fmt.Errorf("cluster status: the answer of %s/v1/cluster is not a cluster status: %w", c.base, err)
	}
	return st, body, nil
}

// remove takes a stopped node out of the cluster.
func (c *clusterAPI) remove(ctx context.Context, node string) error {
	in, err := json.Marshal(struct{ Node string }{node})
	if err != nil {
		return err
	}
	_, err = c.do(ctx, "cluster remove", http.MethodPost, "/v1/cluster/remove", in)
	return err
}

// do sends one request and returns the body of a 200 answer. A
// ResourceNotFoundException is a single node's answer (and an older
// server's, which is one too).
func (c *clusterAPI) do(ctx context.Context, op, method, path string, body []byte) ([]byte, error) {
	url := c.base + path
	var te *sdk.TimeoutError
	if c.timeout > 0 {
		te = &sdk.TimeoutError{Op: op, URL: url, After: c.timeout}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.timeout, te)
		defer cancel()
	}
	b, err := c.send(ctx, op, method, url, body)
	if err != nil && te != nil && context.Cause(ctx) == error(te) {
		return nil, te
	}
	if errors.Is(err, httpwire.ErrResourceNotFound) {
		return nil, fmt.Errorf("%s: %w", c.base, errSingleNode)
	}
	return b, err
}

func (c *clusterAPI) send(ctx context.Context, op, method, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.creds != nil {
		region := c.creds.Region
		if region == "" {
			region = "us-east-1"
		}
		key := awsauth.Key{AccessKeyID: c.creds.AccessKeyID, SecretAccessKey: c.creds.SecretAccessKey}
		if err := awsauth.Sign(req, key, region, body, time.Now()); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: read the answer of %s: %w", op, url, err)
	}
	if resp.StatusCode == http.StatusOK {
		return b, nil
	}
	return nil, answerError(resp, b, op, url)
}

// answerError is the error of an answer other than 200: an *sdk.APIError
// when it names an API error type, else an *sdk.HTTPError (not a Sensorium
// server), as the SDK makes them.
func answerError(resp *http.Response, body []byte, op, url string) error {
	var eb httpwire.ErrorBody
	_ = json.Unmarshal(body, &eb)
	name, _, _ := strings.Cut(resp.Header.Get("x-amzn-ErrorType"), ":")
	if name == "" {
		name = eb.Type
	}
	if name != "" {
		return &sdk.APIError{Name: name, Message: eb.Message}
	}
	snippet := strings.Join(strings.Fields(string(body[:min(len(body), 200)])), " ")
	return &sdk.HTTPError{Op: op, URL: url, StatusCode: resp.StatusCode, Status: resp.Status, Body: strings.ToValidUTF8(snippet, "")}
}

// liveStreamsListed is how many streams whose replicas are all live the
// status lists before it only counts them.
const liveStreamsListed = 10

// writeStatus prints st for a person. Streams with a replica that is not
// live are listed first; of those whose replicas are all live, at most
// liveListed are listed (negative: all) and the rest counted.
func writeStatus(w io.Writer, st cluster.Status, liveListed int) error {
	alive := 0
	for _, n := range st.Nodes {
		if n.Alive {
			alive++
		}
	}
	fmt.Fprintf(w, "cluster of %d nodes, %d alive (answered by %s); bus of %d shards × %d replicas; PERSISTED once %s of a stream's replicas fsynced; a node silent for %s is replaced\n",
		len(st.Nodes), alive, st.Node, st.Shards, st.BusReplicas, ackText(st.AckReplicas), st.ReplaceAfter)

	fmt.Fprintf(w, "\nNODES (* coordinator)\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tSTATE\tHTTP\tSTREAMS\tUNREADY")
	for _, n := range st.Nodes {
		mark := ""
		if n.Coordinate {
			mark = " *"
		}
		fmt.Fprintf(tw, "  %s%s\t%s\t%s\t%d\t%d\n", n.Name, mark, nodeState(n), n.HTTP, n.Streams, n.Unready)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nBUS (messages held; each node's consumer: messages not yet applied)\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SHARD\tLEADER\tREPLICAS\tHELD\tPENDING")
	for _, sh := range st.Bus {
		leader := sh.Leader
		if leader == "" {
			leader = "none"
		}
		replicas := strings.Join(sh.Replicas, " ")
		if replicas == "" {
			replicas = "-"
		}
		pending := make([]string, 0, len(sh.Consumers))
		for _, c := range sh.Consumers {
			pending = append(pending, fmt.Sprintf("%s %s", c.Node, groupDigits(int64(c.Pending))))
		}
		if len(pending) == 0 {
			pending = append(pending, "-")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", sh.Name, leader, replicas, groupDigits(int64(sh.Messages)), strings.Join(pending, " · "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nSTREAMS\n")
	if len(st.Streams) == 0 {
		_, err := fmt.Fprintln(w, "  none")
		return err
	}
	var behind, live []cluster.StreamStatus
	for _, s := range st.Streams {
		if allLive(s) {
			live = append(live, s)
		} else {
			behind = append(behind, s)
		}
	}
	byName := func(a, b cluster.StreamStatus) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(behind, byName)
	slices.SortFunc(live, byName)
	listed := live
	if liveListed >= 0 && len(live) > liveListed {
		listed = nil
		if len(behind) == 0 {
			listed = live[:liveListed]
		}
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range append(behind, listed...) {
		fmt.Fprintf(tw, "  %s\tshard %d\t%s\n", s.Name, s.Shard, replicasText(s.Replicas))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	rest := len(live) - len(listed)
	if rest == 0 {
		return nil
	}
	more, streams := "more ", "streams"
	if len(behind)+len(listed) == 0 {
		more = ""
	}
	if rest == 1 {
		streams = "stream"
	}
	_, err := fmt.Fprintf(w, "  %d %s%s, all replicas live\n", rest, more, streams)
	return err
}

func ackText(ack string) string {
	if ack == "" || ack == "majority" {
		return "a majority"
	}
	return ack
}

func nodeState(n cluster.NodeStatus) string {
	switch {
	case n.Alive && !n.Responded:
		return "alive, no status answer"
	case n.Alive:
		return "alive"
	case n.SilentSec > 0:
		return "silent for " + secondsText(n.SilentSec)
	}
	return "down"
}

func allLive(s cluster.StreamStatus) bool {
	for _, r := range s.Replicas {
		if r.Phase != "live" {
			return false
		}
	}
	return len(s.Replicas) > 0
}

// replicasText is a stream's replicas on one line:
// "a live · b live · c joining (lag 1.2 s)".
func replicasText(rs []cluster.ReplicaStatus) string {
	if len(rs) == 0 {
		return "no replicas"
	}
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		s := r.Node + " " + r.Phase
		var notes []string
		if r.LagMs > 0 {
			notes = append(notes, "lag "+secondsText(float64(r.LagMs)/1000))
		}
		if r.Error != "" {
			notes = append(notes, strings.Join(strings.Fields(r.Error), " "))
		}
		if len(notes) > 0 {
			s += " (" + strings.Join(notes, "; ") + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " · ")
}

// secondsText is a duration for a person: "1.2 s", "47 s", "12m30s".
func secondsText(sec float64) string {
	switch {
	case sec < 10:
		return fmt.Sprintf("%.1f s", sec)
	case sec < 120:
		return fmt.Sprintf("%.0f s", sec)
	}
	return (time.Duration(sec) * time.Second).Round(time.Second).String()
}
