package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/service/cluster"
	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

const (
	demoStream = "pump-1"
	demoRate   = 25600.0
	demoSeed   = 42
)

func newDemoCmd() *cobra.Command {
	var dataDir string
	var seconds, nodes int
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a server, stream a simulated pump into it, and query it back",
		Long: `Start a server on an embedded NATS (free ports, a temporary data folder),
stream a simulated pump — 3-axis vibration at 25.6 kHz with a bearing fault
that appears halfway — through the Go SDK, then read it back three ways:
ListFragments, GetMedia (checked frame by frame against what was sent) and an
Arrow query, from which it computes per-window condition indicators that show
the fault.

With --nodes 3 it runs a cluster instead: three serve processes of this
binary (nodes a, b and c on free loopback ports, a data folder and a log
file each in the demo folder), streams the pump into them in real time,
SIGKILLs the node the producer is connected to after a quarter of --seconds
and restarts it at half time, printing each second what is PERSISTED and
each node's state. Once the restarted node has caught up it stops the
producer and checks that every node lists every PERSISTED fragment and
returns the same frames for them; it exits 0 only if they all do.`,
		Example: `  sensorium demo
  sensorium demo --seconds 120 --data ./demo-data --keep
  sensorium demo --nodes 3
  sensorium demo --nodes 3 --seconds 60 --data ./cluster-demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch nodes {
			case 1:
			case 3:
				if !cmd.Flags().Changed("seconds") {
					seconds = clusterDemoSeconds
				}
				return clusterDemo(cmd.Context(), cmd.OutOrStdout(), dataDir, keep, seconds)
			default:
				return usagef("--nodes must be 1 (a server in this process) or 3 (a cluster of three processes)")
			}
			if seconds < 10 || seconds > 3600 {
				return usagef("--seconds must be 10 to 3600")
			}
			if dataDir == "" {
				d, err := os.MkdirTemp("", "sensorium-demo-")
				if err != nil {
					return err
				}
				dataDir = d
				if !keep {
					defer os.RemoveAll(d)
				}
			}
			return runDemo(cmd.Context(), os.Stdout, dataDir, seconds)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "", "data folder (default: a temporary one)")
	cmd.Flags().IntVar(&seconds, "seconds", 60, "seconds of pump data to stream (with --nodes 3: how long the run streams, default 40)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary data folder")
	cmd.Flags().IntVar(&nodes, "nodes", 1, "1: one server in this process; 3: a cluster of three server processes, one killed and restarted on the way")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, dataDir string, seconds int) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The keyring is named explicitly, in the demo's own folder: the demo's
	// data is not production data, and the server's warning about a keyring
	// kept beside the data would be the first line a newcomer reads.
	srv, err := server.Start(ctx, server.Config{DataDir: dataDir, Keyring: filepath.Join(dataDir, "keyring.json"),
		NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(out, "Sensorium demo\n\n")
	fmt.Fprintf(out, "  server       %s (HTTP)  %s (NATS)  data in %s\n", srv.HTTPURL(), srv.NATSURL(), dataDir)
	client := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: demoStream, DataRetentionInHours: 24, MediaType: "application/x-sensorium", DeviceName: "pump-gateway"}); err != nil {
		return err
	}
	fmt.Fprintf(out, "  stream       %s, retention 24 h\n", demoStream)

	desc := &signals.Scalar{SampleRate: demoRate, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	origin := time.Now().Add(-time.Duration(seconds) * time.Second).Truncate(time.Millisecond)
	t0 := time.Now()
	persisted, err := demoProduce(ctx, srv.NATSURL(), desc, origin, seconds)
	if err != nil {
		return err
	}
	total := int64(seconds) * int64(demoRate)
	fmt.Fprintf(out, "  produce      %d s of 3-axis vibration at 25.6 kHz (%s samples per axis, %s raw), bearing fault from %d s:\n",
		seconds, groupDigits(total), humanBytes(total*12), seconds/2)
	fmt.Fprintf(out, "               %d fragments PERSISTED in %s\n", persisted, time.Since(t0).Round(time.Millisecond))

	frags, bytes, err := demoList(ctx, client)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  fragments    ListFragments: %d fragments, %s\n", frags, humanBytes(bytes))

	frames, err := demoGetMedia(ctx, client, desc, origin, faultAt(seconds))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  get media    GetMedia: %d frames back, every sample identical to what was sent\n", frames)

	return demoQuery(ctx, out, client, origin, seconds)
}

// demoProduce streams the pump through the SDK and returns how many fragments were PERSISTED.
func demoProduce(ctx context.Context, natsURL string, desc *signals.Scalar, origin time.Time, seconds int) (int64, error) {
	nc, err := nats.Connect(natsURL, nats.Name("sensorium-demo-producer"))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	track, err := sdk.ScalarTrack(1, "vibration", desc)
	if err != nil {
		return 0, err
	}
	var persisted, refused atomic.Int64
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
		Stream: demoStream, Tracks: []sdk.Track{track},
		MinFragmentDuration: time.Second, MaxFragmentDuration: 2 * time.Second,
		OnAck: func(ev sdk.AckEvent) {
			switch ev.EventType {
			case sdk.EventPersisted:
				persisted.Add(1)
			case sdk.EventError:
				refused.Add(1)
			}
		},
	})
	if err != nil {
		return 0, err
	}
	w, err := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: origin.UnixNano()})
	if err != nil {
		return 0, err
	}
	sim := pump.New(demoRate, faultAt(seconds), demoSeed)
	buf := make([]float32, 3*int(demoRate)/10)
	for i := 0; i < seconds*10; i++ {
		sim.Fill(buf)
		if err := w.WriteFloat32(ctx, buf); err != nil {
			return 0, err
		}
	}
	if err := w.Flush(ctx); err != nil {
		return 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		return persisted.Load(), err
	}
	if n := refused.Load(); n > 0 {
		return persisted.Load(), fmt.Errorf("the server refused %d fragments", n)
	}
	return persisted.Load(), nil
}

func demoList(ctx context.Context, c *sdk.Client) (int, int64, error) {
	frags, err := demoFragments(ctx, c)
	if err != nil {
		return 0, 0, err
	}
	bytes := int64(0)
	for _, f := range frags {
		bytes += f.FragmentSizeInBytes
	}
	return len(frags), bytes, nil
}

// demoFragments lists every fragment of the demo's stream.
func demoFragments(ctx context.Context, c *sdk.Client) ([]sdk.Fragment, error) {
	in := sdk.ListFragmentsInput{Stream: sdk.ByName(demoStream), MaxResults: 1000}
	var all []sdk.Fragment
	for {
		frags, next, err := c.ListFragments(ctx, in)
		if err != nil {
			return nil, err
		}
		all = append(all, frags...)
		if next == "" {
			return all, nil
		}
		in.NextToken = next
	}
}

// demoGetMedia reads the stream back with GetMedia and checks every sample,
// bit for bit, against a second run of the same simulation.
func demoGetMedia(ctx context.Context, c *sdk.Client, desc *signals.Scalar, origin time.Time, faultAt int64) (int, error) {
	body, err := c.GetMedia(ctx, sdk.ByName(demoStream), sdk.StartEarliest(), false)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	mr := sdk.NewMediaReader(body)
	var s signals.Samples
	ref := pump.New(demoRate, faultAt, demoSeed)
	var want []float32
	frames, next := 0, int64(0)
	for {
		f, err := mr.Next()
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return frames, err
		}
		if err := codecs.DecodeScalarFrameAt(f.Data, f.Timestamp, desc, &s); err != nil {
			return frames, fmt.Errorf("frame %d: %w", frames, err)
		}
		if s.Start != desc.SampleTime(origin.UnixNano(), int(next)) {
			return frames, fmt.Errorf("frame %d starts at %d ns, not at sample %d's time", frames, s.Start, next)
		}
		want = append(want[:0], make([]float32, len(s.F32))...)
		ref.Fill(want)
		for i := range want {
			if math.Float32bits(want[i]) != math.Float32bits(s.F32[i]) {
				return frames, fmt.Errorf("frame %d: sample %d differs from what was sent", frames, i)
			}
		}
		frames++
		next += int64(s.N)
	}
}

// faultAt is the sample where the demo's bearing fault starts: halfway.
func faultAt(seconds int) int64 { return int64(seconds) * int64(demoRate) / 2 }

func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func demoQuery(ctx context.Context, out io.Writer, c *sdk.Client, origin time.Time, seconds int) error {
	t0 := time.Now()
	res, err := c.Query(ctx, sdk.QueryInput{Stream: demoStream, Start: origin, End: origin.Add(time.Duration(seconds) * time.Second)}, nil)
	if err != nil {
		return err
	}
	defer res.Close()
	const window = 5 * int(demoRate)
	x := make([]float32, 0, window)
	rows := 0
	type row struct {
		at int
		f  pump.Features
	}
	var table []row
	for res.Next() {
		rec := res.RecordBatch()
		col := rec.Column(1).(*array.Float32)
		for i := 0; i < col.Len(); i++ {
			x = append(x, col.Value(i))
			if len(x) == window {
				table = append(table, row{at: rows / int(demoRate), f: pump.Analyze(x, demoRate)})
				rows += len(x)
				x = x[:0]
			}
		}
	}
	if err := res.Err(); err != nil {
		return err
	}
	rows += len(x)
	fmt.Fprintf(out, "  query        Arrow: %s rows × 4 columns (time, x, y, z) in %s\n\n", groupDigits(int64(rows)), time.Since(t0).Round(time.Millisecond))
	fmt.Fprintf(out, "  window    rms x (g)   kurtosis x   2–4 kHz band (g)\n")
	base := math.Inf(1)
	for _, r := range table {
		base = math.Min(base, r.f.BandRMS)
		mark := ""
		if r.f.BandRMS > 5*base && r.f.Kurtosis > 4 {
			mark = "  ◀ bearing fault"
		}
		fmt.Fprintf(out, "  %3d–%-3ds  %9.3f   %10.2f   %16.4f%s\n", r.at, r.at+5, r.f.RMS, r.f.Kurtosis, r.f.BandRMS, mark)
	}
	fmt.Fprintf(out, "\nNext: `sensorium serve`, then `go run ./examples/pump`, http://127.0.0.1:8080/ (the console) and `sensorium query %s --start -1m -o pump.arrow`.\n", demoStream)
	return nil
}

// The cluster demo (demo --nodes 3): three serve processes of this binary,
// one of which is killed and restarted while the pump streams in real time.

const (
	clusterDemoSeconds = 40
	// clusterDemoCatchUp bounds the wait for the restarted node to catch up,
	// past --seconds, and for the replicas to agree once the producer stops.
	clusterDemoCatchUp = 60 * time.Second
)

// clusterDemo runs the cluster demo in dir, a temporary folder when "",
// which is removed afterwards unless keep is set or the demo failed (its
// logs then tell why; a Ctrl-C is no failure).
func clusterDemo(ctx context.Context, out io.Writer, dir string, keep bool, seconds int) (err error) {
	if seconds < 20 || seconds > 3600 {
		return usagef("--seconds must be 20 to 3600 with --nodes 3")
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "sensorium-cluster-demo-"); err != nil {
			return err
		}
		defer func() { // err is the demo's result
			if keep || (err != nil && ctx.Err() == nil) {
				fmt.Fprintf(out, "\nThe demo folder is kept, with the nodes' data and logs: %s\n", dir)
				return
			}
			_ = os.RemoveAll(dir)
		}()
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: this program's path, to start the nodes with: %w", err)
	}
	nodes, err := newDemoNodes(dir, self)
	if err != nil {
		return err
	}
	defer stopDemoNodes(nodes)
	return runClusterDemo(ctx, out, nodes, seconds)
}

// demoNode is one serve process of the cluster demo.
type demoNode struct {
	name, dir, log string
	self           string   // the binary
	args           []string // serve's arguments, the same at a restart
	httpURL        string
	natsURL        string

	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited; waitErr is then set
	// waitErr is the process's end, read only after exited is closed.
	waitErr error
}

// newDemoNodes lays out three nodes in dir, on free loopback ports.
func newDemoNodes(dir, self string) ([]*demoNode, error) {
	names := []string{"a", "b", "c"}
	ports, err := freePorts(4 * len(names))
	if err != nil {
		return nil, fmt.Errorf("demo: free ports: %w", err)
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	nodes := make([]*demoNode, len(names))
	for i, name := range names {
		httpPort, natsPort, flightPort, routePort := ports[4*i], ports[4*i+1], ports[4*i+2], ports[4*i+3]
		var routes []string
		for j := range names {
			if j != i {
				routes = append(routes, "nats://"+addr(ports[4*j+3]))
			}
		}
		n := &demoNode{name: name, dir: filepath.Join(dir, name), log: filepath.Join(dir, name+".log"), self: self,
			httpURL: "http://" + addr(httpPort), natsURL: "nats://" + addr(natsPort)}
		// The keyring is named, beside the node's folder rather than in it,
		// for the reason runDemo gives.
		n.args = []string{"serve", "--node", name, "--data", n.dir, "--keyring", filepath.Join(dir, name+".keyring.json"),
			"--http", addr(httpPort), "--nats", addr(natsPort), "--flight", addr(flightPort),
			"--cluster", addr(routePort), "--routes", strings.Join(routes, ",")}
		nodes[i] = n
	}
	return nodes, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close() // held until all are chosen, so that they differ
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// start starts the node's process, its output appended to its log file.
func (n *demoNode) start() error {
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("demo: node %s: %w", n.name, err)
	}
	defer logf.Close() // the process has its own copy
	cmd := exec.Command(n.self, n.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("demo: start node %s: %w", n.name, err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited = cmd, exited
	go func() {
		n.waitErr = cmd.Wait()
		close(exited)
	}()
	return nil
}

func (n *demoNode) running() bool {
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// kill ends the node's process with SIGKILL: no clean stop, as a crash.
func (n *demoNode) kill() {
	if n.running() {
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// stop stops the node cleanly (SIGTERM), or kills it after 30 s.
func (n *demoNode) stop() {
	if !n.running() {
		return
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		n.kill()
		return
	}
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.kill()
	}
}

// exitError says that the node's process ended on its own, with the end
// of its log.
func (n *demoNode) exitError() error {
	b, _ := os.ReadFile(n.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	tail := lines[max(0, len(lines)-3):]
	return fmt.Errorf("demo: node %s exited (%v); the end of %s: %s", n.name, n.waitErr, n.log, strings.Join(tail, " | "))
}

func stopDemoNodes(nodes []*demoNode) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.stop() }()
	}
	wg.Wait()
}

// demoPrinter writes the demo's lines, from the main loop and from the
// producer's callbacks, each with the time since the start.
type demoPrinter struct {
	mu sync.Mutex
	w  io.Writer
	t0 time.Time
}

func (p *demoPrinter) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "  %5.1f s  %s\n", time.Since(p.t0).Seconds(), fmt.Sprintf(format, args...))
}

func runClusterDemo(ctx context.Context, out io.Writer, nodes []*demoNode, seconds int) error {
	fmt.Fprintf(out, "Sensorium cluster demo: three nodes, one killed and restarted while a pump streams\n\n")
	for _, n := range nodes {
		if err := n.start(); err != nil {
			return err
		}
		fmt.Fprintf(out, "  node %s  pid %-7d %s (HTTP)  %s (NATS)  log %s\n", n.name, n.cmd.Process.Pid, n.httpURL, n.natsURL, n.log)
	}
	t0 := time.Now()
	if err := waitDemoCluster(ctx, nodes); err != nil {
		return err
	}
	fmt.Fprintf(out, "  cluster      every node sees 3 nodes alive, after %s\n", time.Since(t0).Round(100*time.Millisecond))
	if err := createDemoStream(ctx, nodes[0]); err != nil {
		return err
	}
	fmt.Fprintf(out, "  stream       %s, retention 24 h, stored by every node; PERSISTED once 2 of 3 fsynced\n", demoStream)
	fmt.Fprintf(out, "  produce      3-axis vibration at 25.6 kHz in real time for %d s; node killed at %d s, restarted at %d s\n\n",
		seconds, seconds/4, seconds/2)

	p := &demoPrinter{w: out, t0: time.Now()}
	ing, err := startDemoIngest(ctx, p, nodes, seconds)
	if err != nil {
		return err
	}
	defer ing.abort()
	rep, err := demoTimeline(ctx, p, nodes, ing, seconds)
	if err != nil {
		return err
	}
	p.printf("stop the producer")
	if err := ing.finish(); err != nil {
		return err
	}
	persisted := ing.report(&rep)
	fmt.Fprintln(out)
	return demoVerify(ctx, out, nodes, persisted, rep)
}

// waitDemoCluster waits until every node answers /v1/cluster with every
// node alive.
func waitDemoCluster(ctx context.Context, nodes []*demoNode) error {
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for {
		last = nil
		for _, n := range nodes {
			if !n.running() {
				return n.exitError()
			}
			st, _, err := newClusterAPI(n.httpURL, 2*time.Second, nil).status(ctx)
			if err != nil {
				last = fmt.Errorf("node %s: %w", n.name, err)
				break
			}
			if alive := aliveNodes(st); alive != len(nodes) {
				last = fmt.Errorf("node %s sees %d nodes alive", n.name, alive)
				break
			}
		}
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: the cluster did not come up within 2 minutes: %w", last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func aliveNodes(st cluster.Status) int {
	n := 0
	for _, m := range st.Nodes {
		if m.Alive {
			n++
		}
	}
	return n
}

// createDemoStream creates the pump's stream (or finds it, in a --data
// folder of an earlier run).
func createDemoStream(ctx context.Context, n *demoNode) error {
	_, err := sdk.NewClient(n.httpURL, nil).CreateStream(ctx, sdk.CreateStreamInput{StreamName: demoStream, DataRetentionInHours: 24,
		MediaType: "application/x-sensorium", DeviceName: "pump-gateway"})
	if errors.Is(err, sdk.ErrResourceInUse) {
		return nil
	}
	return err
}

// demoIngest is the cluster demo's producer: the pump, in real time, into
// a NATS connection that knows every node.
type demoIngest struct {
	nc     *nats.Conn
	p      *demoPrinter
	stop   chan struct{} // closed to end the production
	cancel context.CancelFunc
	ended  chan struct{} // closed once the producer has ended; err is then set
	err    error

	mu        sync.Mutex
	persisted map[string]bool // fragment numbers
	refused   []string        // what the ERROR events said
	last      time.Time       // of the last PERSISTED
	maxGap    time.Duration   // longest wait between two PERSISTED
	killed    time.Time       // when a node was killed
	afterKill time.Duration   // from the kill to the first PERSISTED after it; 0: none yet
}

func startDemoIngest(ctx context.Context, p *demoPrinter, nodes []*demoNode, seconds int) (*demoIngest, error) {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.natsURL
	}
	// A dead node is noticed at once when its process is gone (the
	// connection closes) and within two pings when its machine is.
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Name("sensorium-demo-producer"),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.PingInterval(time.Second), nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: closed by the demo
				p.printf("producer lost its NATS connection (%v); reconnecting to another node", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			p.printf("producer reconnected, to node %s", demoNodeOf(nodes, c.ConnectedUrl()))
		}))
	if err != nil {
		return nil, fmt.Errorf("demo: connect the producer: %w", err)
	}
	pctx, cancel := context.WithCancel(ctx)
	in := &demoIngest{nc: nc, p: p, stop: make(chan struct{}), cancel: cancel, ended: make(chan struct{}), persisted: map[string]bool{}}
	go func() {
		in.err = in.produce(pctx, seconds)
		close(in.ended)
	}()
	return in, nil
}

// produce streams the pump until stop is closed, then closes the producer,
// which waits for the last fragments to be PERSISTED.
func (in *demoIngest) produce(ctx context.Context, seconds int) error {
	desc := &signals.Scalar{SampleRate: demoRate, SampleType: signals.Float32,
		Channels: []signals.Channel{{Name: "x", Unit: "g"}, {Name: "y", Unit: "g"}, {Name: "z", Unit: "g"}}}
	track, err := sdk.ScalarTrack(1, "vibration", desc)
	if err != nil {
		return err
	}
	p, err := sdk.NewProducer(ctx, in.nc, sdk.ProducerConfig{
		Stream: demoStream, Tracks: []sdk.Track{track},
		MinFragmentDuration: time.Second, MaxFragmentDuration: 2 * time.Second,
		OnAck: in.onAck,
	})
	if err != nil {
		return err
	}
	w, err := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: time.Now().UnixNano()})
	if err != nil {
		return err
	}
	sim := pump.New(demoRate, faultAt(seconds), demoSeed)
	buf := make([]float32, 3*int(demoRate)/10) // 0.1 s
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
produce:
	for {
		select {
		case <-in.stop:
			break produce
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		sim.Fill(buf)
		if err := w.WriteFloat32(ctx, buf); err != nil {
			return err
		}
	}
	if err := w.Flush(ctx); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, clusterDemoCatchUp)
	defer cancel()
	return p.Close(cctx)
}

func (in *demoIngest) onAck(ev sdk.AckEvent) {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch ev.EventType {
	case sdk.EventPersisted:
		now := time.Now()
		if !in.last.IsZero() {
			in.maxGap = max(in.maxGap, now.Sub(in.last))
		}
		in.last = now
		in.persisted[ev.FragmentNumber] = true
		if !in.killed.IsZero() && in.afterKill == 0 {
			in.afterKill = now.Sub(in.killed)
			in.p.printf("ingest went on %.1f s after the kill: the first PERSISTED since", in.afterKill.Seconds())
		}
	case sdk.EventError:
		if !ev.Retriable {
			in.refused = append(in.refused, fmt.Sprintf("%s %s", ev.ErrorCode, ev.Message))
		}
	}
}

func (in *demoIngest) markKill(at time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.killed = at
}

// persistedSoFar is what the per-second line shows.
func (in *demoIngest) persistedSoFar() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.persisted)
}

// report fills in what the producer measured.
func (in *demoIngest) report(rep *demoReport) map[string]bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	rep.persisted, rep.refused = len(in.persisted), in.refused
	rep.afterKill, rep.maxGap = in.afterKill, in.maxGap
	return in.persisted
}

// finish ends the production and waits for the producer's close.
func (in *demoIngest) finish() error {
	close(in.stop)
	<-in.ended
	if in.err != nil {
		return fmt.Errorf("demo: the producer: %w", in.err)
	}
	return nil
}

// abort ends the producer at once, whatever it was doing (deferred).
func (in *demoIngest) abort() {
	in.cancel()
	<-in.ended
	in.nc.Close()
}

// demoNodeOf names the node whose NATS URL is url.
func demoNodeOf(nodes []*demoNode, url string) string {
	for _, n := range nodes {
		if n.natsURL == url {
			return n.name
		}
	}
	return url
}

// demoReport is what the cluster demo measured, for its summary.
type demoReport struct {
	victim    string
	afterKill time.Duration // to the first PERSISTED after the kill
	maxGap    time.Duration // the longest wait between two PERSISTED
	caughtUp  time.Duration // from the restart to every replica live and equal
	persisted int
	refused   []string
}

// demoTimeline prints a line a second while the pump streams, kills the
// node the producer is connected to at a quarter of the run and restarts
// it at half; it returns once --seconds have passed and the restarted node
// has caught up.
func demoTimeline(ctx context.Context, p *demoPrinter, nodes []*demoNode, ing *demoIngest, seconds int) (demoReport, error) {
	var rep demoReport
	run := time.Duration(seconds) * time.Second
	killAt, restartAt := run/4, run/2
	var victim *demoNode
	var restarted time.Time
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watch := watchDemo(wctx, nodes)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-ing.ended:
			return rep, fmt.Errorf("demo: the producer stopped: %v", ing.err)
		case <-tick.C:
		}
		elapsed := time.Since(p.t0)
		switch {
		case victim == nil && elapsed >= killAt:
			victim = demoKill(p, nodes, ing, watch)
			rep.victim = victim.name
		case victim != nil && restarted.IsZero() && elapsed >= restartAt:
			if err := victim.start(); err != nil {
				return rep, err
			}
			restarted = time.Now()
			p.printf("restart node %s (pid %d)", victim.name, victim.cmd.Process.Pid)
		}
		for _, n := range nodes {
			if !n.running() && (n != victim || !restarted.IsZero()) {
				return rep, n.exitError()
			}
		}
		st, asked, err := watch.latest()
		p.printf("%s", demoLine(st, asked, err, nodes, ing))
		if !restarted.IsZero() && rep.caughtUp == 0 && asked.After(restarted) && demoConverged(st, len(nodes)) {
			rep.caughtUp = time.Since(restarted)
			p.printf("node %s caught up %.1f s after its restart: every replica of %s live, at the same last fragment",
				victim.name, rep.caughtUp.Seconds(), demoStream)
		}
		if rep.caughtUp > 0 && elapsed >= run {
			return rep, nil
		}
		if elapsed >= run+clusterDemoCatchUp {
			return rep, fmt.Errorf("demo: node %s has not caught up %v after its restart (see %s)", victim.name, time.Since(restarted).Round(time.Second), victim.log)
		}
	}
}

// demoKill SIGKILLs the node the producer is connected to and returns it.
func demoKill(p *demoPrinter, nodes []*demoNode, ing *demoIngest, watch *demoWatch) *demoNode {
	victim := nodes[0]
	for _, n := range nodes {
		if n.natsURL == ing.nc.ConnectedUrl() {
			victim = n
		}
	}
	why := "the node the producer is connected to"
	if st, asked, _ := watch.latest(); !asked.IsZero() {
		for _, s := range st.Streams {
			if s.Name == demoStream && s.Shard < len(st.Bus) && st.Bus[s.Shard].Leader == victim.name {
				why += fmt.Sprintf(" and leader of %s's bus shard (%s)", demoStream, st.Bus[s.Shard].Name)
			}
		}
	}
	p.printf("SIGKILL node %s (pid %d), %s", victim.name, victim.cmd.Process.Pid, why)
	ing.markKill(time.Now())
	victim.kill()
	return victim
}

// demoLine is the line printed each second: what is PERSISTED, each node's
// state as the latest status (asked for at asked) has it, and the node the
// producer is connected to.
func demoLine(st cluster.Status, asked time.Time, err error, nodes []*demoNode, ing *demoIngest) string {
	line := fmt.Sprintf("PERSISTED %4d   ", ing.persistedSoFar())
	if asked.IsZero() {
		line += "no state yet"
	} else {
		line += demoNodeStates(st, nodes)
	}
	line += "   producer on " + demoNodeOf(nodes, ing.nc.ConnectedUrl())
	if age := time.Since(asked); !asked.IsZero() && age > 2*time.Second {
		line += fmt.Sprintf("   (state of %.0f s ago", age.Seconds())
		if err != nil {
			line += "; /v1/cluster: " + err.Error()
		}
		line += ")"
	}
	return line
}

// demoStatus asks every node at once for the cluster's status and returns
// the first answer.
func demoStatus(ctx context.Context, nodes []*demoNode) (cluster.Status, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		node string
		st   cluster.Status
		err  error
	}
	answers := make(chan answer, len(nodes))
	for _, n := range nodes {
		go func() {
			st, _, err := newClusterAPI(n.httpURL, 5*time.Second, nil).status(ctx)
			answers <- answer{n.name, st, err}
		}()
	}
	var failed []string
	for range nodes {
		a := <-answers
		var te *sdk.TimeoutError
		switch {
		case a.err == nil:
			return a.st, nil
		case errors.As(a.err, &te):
			failed = append(failed, fmt.Sprintf("%s no answer within %v", a.node, te.After))
		case errors.Is(a.err, syscall.ECONNREFUSED):
			failed = append(failed, a.node+" not listening")
		case errors.Is(a.err, syscall.ECONNRESET) || errors.Is(a.err, io.EOF) || errors.Is(a.err, io.ErrUnexpectedEOF):
			failed = append(failed, a.node+" connection lost")
		default:
			failed = append(failed, a.node+" "+oneLine(a.err))
		}
	}
	slices.Sort(failed)
	return cluster.Status{}, errors.New(strings.Join(failed, ", "))
}

// demoWatch asks for the cluster's status over and over in the background
// and keeps the latest answer, so that the demo prints its line each second
// even while /v1/cluster is slow to answer.
type demoWatch struct {
	mu    sync.Mutex
	st    cluster.Status // the latest answer
	asked time.Time      // when it was asked for; zero: none yet
	err   error          // of the latest request, if it failed
}

func watchDemo(ctx context.Context, nodes []*demoNode) *demoWatch {
	w := &demoWatch{}
	go func() {
		for ctx.Err() == nil {
			asked := time.Now()
			st, err := demoStatus(ctx, nodes)
			w.mu.Lock()
			w.err = err
			if err == nil {
				w.st, w.asked = st, asked
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(500*time.Millisecond - time.Since(asked)):
			}
		}
	}()
	return w
}

// latest returns the latest answer, when it was asked for, and the error
// of the requests since, if they failed.
func (w *demoWatch) latest() (cluster.Status, time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st, w.asked, w.err
}

// demoNodeStates is each node's state for the demo's stream: its
// replica's phase, or down.
func demoNodeStates(st cluster.Status, nodes []*demoNode) string {
	alive := map[string]bool{}
	for _, m := range st.Nodes {
		alive[m.Name] = m.Alive
	}
	var rs []cluster.ReplicaStatus
	for _, s := range st.Streams {
		if s.Name == demoStream {
			rs = s.Replicas
		}
	}
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		state := "down"
		if alive[n.name] {
			state = "up, no replica"
			for _, r := range rs {
				if r.Node == n.name {
					state = r.Phase
					if r.Phase != "live" && r.LagMs > 0 {
						state += " (lag " + secondsText(float64(r.LagMs)/1000) + ")"
					}
				}
			}
		}
		parts = append(parts, fmt.Sprintf("%s %-8s", n.name, state))
	}
	return strings.Join(parts, " · ")
}

// demoConverged: every node is alive and every replica of the demo's
// stream is live, at the same last fragment.
func demoConverged(st cluster.Status, nodes int) bool {
	if aliveNodes(st) != nodes {
		return false
	}
	for _, s := range st.Streams {
		if s.Name != demoStream {
			continue
		}
		if len(s.Replicas) != nodes || !allLive(s) {
			return false
		}
		for _, r := range s.Replicas {
			if r.LastFragment == "" || r.LastFragment != s.Replicas[0].LastFragment {
				return false
			}
		}
		return true
	}
	return false
}

// demoVerify waits for the replicas to agree, then checks that every node
// lists every PERSISTED fragment and returns the same frames for them, and
// prints the summary.
func demoVerify(ctx context.Context, out io.Writer, nodes []*demoNode, persisted map[string]bool, rep demoReport) error {
	if err := demoAgree(ctx, nodes); err != nil {
		return err
	}
	ok := true
	fmt.Fprintf(out, "Summary\n")
	if len(rep.refused) > 0 {
		ok = false
		fmt.Fprintf(out, "  PERSISTED      %d fragments; %d REFUSED, first: %s\n", rep.persisted, len(rep.refused), rep.refused[0])
	} else {
		fmt.Fprintf(out, "  PERSISTED      %d fragments, none refused\n", rep.persisted)
	}
	if rep.afterKill > 0 {
		fmt.Fprintf(out, "  failover       ingest went on %.1f s after node %s was killed; longest wait between two PERSISTED %.1f s\n",
			rep.afterKill.Seconds(), rep.victim, rep.maxGap.Seconds())
	} else {
		ok = false
		fmt.Fprintf(out, "  failover       nothing was PERSISTED after node %s was killed\n", rep.victim)
	}
	fmt.Fprintf(out, "  catch-up       node %s had every replica live and level %.1f s after its restart\n", rep.victim, rep.caughtUp.Seconds())

	line, numbers, listed, err := demoCheckLists(ctx, nodes, persisted)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  ListFragments  %s\n", line)
	line, same, err := demoCheckFrames(ctx, nodes, numbers)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  GetMedia…List  %s\n", line)
	if !ok || !listed || !same {
		return errors.New("demo: the cluster failed a check (see the summary)")
	}
	fmt.Fprintf(out, "\nEvery check passed: no PERSISTED fragment was lost, and all three nodes serve the same data.\n")
	return nil
}

// demoAgree waits until every replica of the demo's stream is live, at the
// same last fragment.
func demoAgree(ctx context.Context, nodes []*demoNode) error {
	deadline := time.Now().Add(clusterDemoCatchUp)
	for {
		st, err := demoStatus(ctx, nodes)
		if err == nil && demoConverged(st, len(nodes)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: the replicas of %s do not agree %v after the producer stopped", demoStream, clusterDemoCatchUp)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// demoCheckLists checks that every node lists every PERSISTED fragment,
// and the same list; it returns the summary's line and the fragment
// numbers as the first node lists them.
func demoCheckLists(ctx context.Context, nodes []*demoNode, persisted map[string]bool) (line string, numbers []string, ok bool, err error) {
	lists := make([][]sdk.Fragment, len(nodes))
	counts := make([]string, len(nodes))
	complete := true
	for i, n := range nodes {
		if lists[i], err = demoFragments(ctx, sdk.NewClient(n.httpURL, nil)); err != nil {
			return "", nil, false, fmt.Errorf("demo: ListFragments on node %s: %w", n.name, err)
		}
		have := map[string]bool{}
		for _, f := range lists[i] {
			have[f.FragmentNumber] = true
		}
		missing := 0
		for num := range persisted {
			if !have[num] {
				missing++
			}
		}
		counts[i] = fmt.Sprintf("%s %d", n.name, len(lists[i]))
		if missing > 0 {
			complete = false
			counts[i] += fmt.Sprintf(" (%d PERSISTED missing)", missing)
		}
	}
	same := true
	for _, l := range lists[1:] {
		same = same && slices.EqualFunc(lists[0], l, func(a, b sdk.Fragment) bool {
			return a.FragmentNumber == b.FragmentNumber && a.FragmentSizeInBytes == b.FragmentSizeInBytes &&
				a.ProducerTimestamp.Equal(b.ProducerTimestamp.Time) && a.ServerTimestamp.Equal(b.ServerTimestamp.Time)
		})
	}
	verdict := "every node lists every PERSISTED fragment, the same list"
	switch {
	case !complete:
		verdict = "NOT every PERSISTED fragment is on every node"
	case !same:
		verdict = "every PERSISTED fragment is on every node, but the lists DIFFER"
	}
	for _, f := range lists[0] {
		numbers = append(numbers, f.FragmentNumber)
	}
	return strings.Join(counts, " · ") + ": " + verdict, numbers, complete && same, nil
}

// demoCheckFrames checks that every node returns the same frames for the
// fragments; it returns the summary's line.
func demoCheckFrames(ctx context.Context, nodes []*demoNode, numbers []string) (line string, same bool, err error) {
	var first []demoFrame
	parts := make([]string, len(nodes))
	same = true
	for i, n := range nodes {
		got, err := demoFrames(ctx, sdk.NewClient(n.httpURL, nil), numbers)
		if err != nil {
			return "", false, fmt.Errorf("demo: GetMediaForFragmentList on node %s: %w", n.name, err)
		}
		switch {
		case i == 0:
			first = got
			parts[i] = fmt.Sprintf("%s %d frames", n.name, len(got))
		case slices.Equal(first, got):
			parts[i] = n.name + " identical"
		default:
			same = false
			parts[i] = fmt.Sprintf("%s DIFFERENT (%d frames; %s)", n.name, len(got), firstDifference(first, got))
		}
	}
	return strings.Join(parts, " · "), same, nil
}

// demoFrame is one frame as GetMediaForFragmentList returns it, without the
// tags that differ between calls (MillisBehindNow).
type demoFrame struct {
	fragment string
	track    uint64
	time     int64
	key      bool
	data     [sha256.Size]byte
}

// demoFrames reads the frames of the fragments, in batches of at most
// 1,000 (the API's limit).
func demoFrames(ctx context.Context, c *sdk.Client, numbers []string) ([]demoFrame, error) {
	var frames []demoFrame
	for len(numbers) > 0 {
		batch := numbers[:min(len(numbers), 1000)]
		numbers = numbers[len(batch):]
		body, err := c.GetMediaForFragmentList(ctx, sdk.ByName(demoStream), batch)
		if err != nil {
			return nil, err
		}
		mr := sdk.NewMediaReader(body)
		for {
			f, err := mr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				body.Close()
				return nil, err
			}
			fr := demoFrame{time: f.Timestamp, key: f.Key, data: sha256.Sum256(f.Data)}
			if f.Fragment != nil {
				fr.fragment = f.Fragment.Number
			}
			if f.Track != nil {
				fr.track = f.Track.Number
			}
			frames = append(frames, fr)
		}
		body.Close()
	}
	return frames, nil
}

func firstDifference(a, b []demoFrame) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at frame %d, of fragment %s", i, a[i].fragment)
		}
	}
	return "one is a prefix of the other"
}
