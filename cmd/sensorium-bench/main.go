// Command sensorium-bench is `make bench`: it measures Sensorium's ingest path
// against raw JetStream publish of the same bytes, in the same run, and prints
// the ratios (machines here are shared and noisy: compare ratios, not seconds).
//
//	SDK → PERSISTED        fragments through the SDK, acknowledged after the store's fsync
//	JetStream sync_always  raw async publish to a file stream that fsyncs every message
//	                       (the same promise: on disk before the ack)
//	JetStream default      raw async publish with JetStream's default sync (the bus alone)
//
// Latency: one fragment at a time, PutFrame → PERSISTED, against a raw
// synchronous publish.
//
// The raw peer is the bus without Sensorium around it, so it is set up as the
// bus is: its stream is built by ingest.BusConfig.StreamConfig, the function
// that builds the real bus (interest retention, discard-new at the byte cap,
// the age cap, the max message size, the duplicate window), on an embedded
// server started through natsembed with JetStream's at-rest encryption keyed
// from a keyring as serve does, and the publisher reaches it over loopback TCP
// as the SDK does, not through an in-process connection.
//
// Interest retention keeps a message only while a consumer is interested in
// it: with no consumer at all, nats-server does not store the message (it
// skips the sequence and still acknowledges the publish), and the peer would
// time a publish that never reaches the disk. So the peer also has the
// store's durable consumer (ingest.BusConfig.ConsumerConfig), which never
// pulls: every message is kept, as the real bus keeps a fragment until the
// store acks it, and the run checks that the stream holds every message it
// published. What the peer does not do is the consuming side — the ack and
// the delete after it, the store's own write and fsync — which is exactly
// the work the ratios put a price on.
//
// The cluster section (cluster.go) then measures the same SDK path against a
// three-node cluster and raw JetStream publish at R3, and the bytes written
// per acknowledged byte; SENSORIUM_BENCH_SKIP_CLUSTER=1 leaves it out.
//
// The many-streams section (streams.go) runs thousands of streams at one
// fragment a second each against a separate `sensorium serve` process, and a
// burst across 1,000 of them against raw JetStream publish;
// SENSORIUM_BENCH_SKIP_STREAMS=1 leaves it out.
//
// The ingest section also measures the disk itself (diskspeed.go: 4 MiB
// O_DSYNC writes, as dd oflag=dsync) and SDK → PERSISTED with the bus in
// memory, so that its ratio to the disk shows what the bus's own writes
// cost. The dense-samples section (samples.go) puts 3-axis 25.6 kHz float32
// vibration through PutSamples against raw publish of the same floats;
// SENSORIUM_BENCH_SKIP_SAMPLES=1 leaves it out.
//
// The live section (live.go) times PutFrame to a subscriber of the live
// subject against raw core NATS, and a fragment to a GetMedia reader at NOW
// against its PERSISTED event; SENSORIUM_BENCH_SKIP_LIVE=1 leaves it out.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/internal/testkit/codecbench"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

func main() {
	fragKiB := flag.Int("fragment-kib", 256, "fragment size in KiB")
	totalMiB := flag.Int("total-mib", 1024, "bytes to ingest per throughput run, MiB")
	latencyN := flag.Int("latency-fragments", 300, "fragments for the latency runs")
	dir := flag.String("dir", "", "scratch folder (default: a temporary one, removed after); a folder kept from an earlier run reuses its Arrow data")
	only := flag.String("only", "", "run only this part: ingest (single node), big (the big-fragment row and the run it is compared to), cluster (with the single node it is compared to), codecs, arrow, streams, live or samples")
	clusterMiB := flag.Int("cluster-mib", 512, "bytes to ingest per cluster throughput run, MiB (the first fragments of the same data)")
	arrowMinutes := flag.Int("arrow-minutes", 60, "minutes of 3-axis 25.6 kHz vibration for the Arrow read benchmark (60: about 1.1 GB raw)")
	arrowCores := flag.String("arrow-cores", "2,1", "GOMAXPROCS of the Arrow read tables, comma-separated (2: both sides parallel, 1: both on one core)")
	var sf streamsFlags
	flag.StringVar(&sf.counts, "streams", "1000,10000", "many-streams section: stream counts to run, comma-separated")
	flag.IntVar(&sf.seconds, "streams-seconds", 30, "many-streams section: steady-state seconds measured per count (after a 5 s warm-up)")
	flag.IntVar(&sf.conns, "streams-conns", 16, "many-streams section: NATS connections the producers share")
	flag.IntVar(&sf.burstStreams, "streams-burst-streams", 1000, "many-streams section: streams of the burst (the first ones created)")
	var lf liveFlags
	flag.IntVar(&lf.seconds, "live-seconds", 120, "live section: seconds of frames put per rate (100 Hz and 1 kHz); with 1 s fragments, 120 s gives the GetMedia p99 119 fragments per rate")
	flag.DurationVar(&lf.fragment, "live-fragment", time.Second, "live section: fragment duration")
	samplesSeconds := flag.Int("samples-seconds", 600, "dense-samples section: seconds of 3-axis 25.6 kHz vibration put")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *only == "" || *only == "codecs" {
		codecbench.Print(os.Stdout, codecbench.Run())
		fmt.Println()
		if *only == "codecs" {
			return
		}
	}
	if *only != "" && *only != "ingest" && *only != "big" && *only != "arrow" && *only != "cluster" && *only != "streams" && *only != "live" && *only != "samples" {
		fail(fmt.Errorf("--only %q: want ingest, big, cluster, codecs, arrow, streams, live or samples", *only))
	}
	if *dir == "" {
		d, err := os.MkdirTemp(".", ".bench-")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	if *only == "" || *only == "arrow" {
		if err := arrowBench(*dir, *arrowMinutes, *arrowCores); err != nil {
			fail(err)
		}
		fmt.Println()
		if *only == "arrow" {
			return
		}
	}
	b := &bench{dir: *dir, fragBytes: *fragKiB << 10, fragments: (*totalMiB << 20) / (*fragKiB << 10), latencyN: *latencyN}
	if *only == "" || *only == "ingest" {
		if err := b.run(); err != nil {
			fail(err)
		}
	}
	if *only == "big" {
		if err := b.bigOnly(); err != nil {
			fail(err)
		}
	}
	if *only == "samples" || (*only == "" && os.Getenv("SENSORIUM_BENCH_SKIP_SAMPLES") != "1") {
		fmt.Println()
		if err := b.samples(*samplesSeconds); err != nil {
			fail(err)
		}
	}
	if *only == "cluster" || (*only == "" && os.Getenv(skipClusterEnv) != "1") {
		fmt.Println()
		if err := b.cluster(*clusterMiB); err != nil {
			fail(err)
		}
	}
	if *only == "streams" || (*only == "" && os.Getenv(skipStreamsEnv) != "1") {
		if *only == "" {
			fmt.Println()
		}
		if err := b.streams(sf); err != nil {
			fail(err)
		}
	}
	if *only == "live" || (*only == "" && os.Getenv(skipLiveEnv) != "1") {
		if *only == "" {
			fmt.Println()
		}
		if err := b.live(lf); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sensorium-bench:", err)
	os.Exit(1)
}

type bench struct {
	dir       string
	fragBytes int
	fragments int
	latencyN  int
	seq       int
	// single is the single node's SDK → PERSISTED run, which the cluster
	// section compares with (nil until run or cluster has made it).
	single *ingestRun
}

// framesPerFragment splits a fragment into frames the way a producer would.
const framesPerFragment = 8

func (b *bench) run() error {
	fmt.Printf("Sensorium ingest benchmark: %d fragments × %d KiB (%d MiB) per run, same bytes on every path\n\n",
		b.fragments, b.fragBytes>>10, b.fragments*b.fragBytes>>20)
	payloads := b.payloads(b.fragments)
	syncAlways, syncLat, err := b.rawJetStream(payloads, true)
	if err != nil {
		return err
	}
	def, defLat, err := b.rawJetStream(payloads, false)
	if err != nil {
		return err
	}
	single, err := b.sdk()
	if err != nil {
		return err
	}
	b.single = single
	disk, err := b.diskDsync(b.fragments * b.fragBytes)
	if err != nil {
		return err
	}
	memBus, err := b.sdkMemoryBus()
	if err != nil {
		return err
	}
	small, big, err := b.bigFragmentRuns()
	if err != nil {
		return err
	}
	ours, ourLat := single.rate, single.lat
	mb := func(bps float64) string { return fmt.Sprintf("%7.0f MB/s", bps/1e6) }
	fmt.Printf("%-46s %s\n", "disk: sequential 4 MiB writes, O_DSYNC (dd)", mb(disk))
	fmt.Printf("%-46s %s\n", "raw JetStream publish, file, sync_always", mb(syncAlways))
	fmt.Printf("%-46s %s\n", "raw JetStream publish, file, default sync", mb(def))
	fmt.Printf("%-46s %s   ratio %.2f× vs sync_always, %.2f× vs default\n", "SDK → PERSISTED (store fsync, group commit)", mb(ours), ours/syncAlways, ours/def)
	verdict := "met"
	if ours < 0.9*disk {
		verdict = "NOT met"
	}
	fmt.Printf("%-46s %.2f×   goal ≥ 0.90× of the disk (%d KiB fragments): %s\n", "SDK → PERSISTED vs the disk", ours/disk, b.fragBytes>>10, verdict)
	fmt.Printf("%-46s %s   %.2f× of the disk (each byte written once, by the store)\n", "SDK → PERSISTED, --bus-storage memory", mb(memBus), memBus/disk)
	printBig(small, big, b.fragBytes)
	fmt.Println()
	fmt.Printf("%-46s %9s %9s\n", "latency, one fragment at a time", "p50", "p99")
	pr := func(name string, l []time.Duration) {
		fmt.Printf("%-46s %9s %9s\n", name, pct(l, 50), pct(l, 99))
	}
	pr("raw JetStream sync publish, sync_always", syncLat)
	pr("raw JetStream sync publish, default sync", defLat)
	pr("SDK PutFrame → PERSISTED", ourLat)
	return nil
}

// payloads builds the first n fragments every path sends: MKV fragments of
// framesPerFragment frames of pseudo-random bytes, as the SDK would make them.
func (b *bench) payloads(n int) [][]byte {
	frame := b.frameBytes()
	out := make([][]byte, n)
	base := uint64(time.Now().Add(-time.Hour).UnixMilli())
	for i := range out {
		buf := mkv.AppendEBMLHeader(nil, "matroska")
		buf = mkv.AppendSegmentStart(buf)
		buf = mkv.AppendInfo(buf, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: framesPerFragment * 10})
		buf = mkv.AppendTracks(buf, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE"}})
		var blocks []mkv.Block
		for f := 0; f < framesPerFragment; f++ {
			blocks = append(blocks, mkv.Block{Track: 1, Timecode: int16(f * 10), Keyframe: true, Data: frame})
		}
		out[i] = mkv.AppendCluster(buf, base+uint64(i*framesPerFragment*10), blocks)
	}
	return out
}

func (b *bench) frameBytes() []byte {
	frame := make([]byte, b.fragBytes/framesPerFragment-64)
	x := uint32(2463534242)
	for i := range frame {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		frame[i] = byte(x)
	}
	return frame
}

func (b *bench) scratch(name string) string {
	b.seq++
	return fmt.Sprintf("%s/%02d-%s", b.dir, b.seq, name)
}

// rawJetStream publishes the payloads to a stream configured like the bus
// (see the package comment) and returns bytes/s and sync-publish latencies.
func (b *bench) rawJetStream(payloads [][]byte, syncAlways bool) (float64, []time.Duration, error) {
	dir := b.scratch("jetstream")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, nil, err
	}
	ring, err := store.LoadKeyring(nil, filepath.Join(dir, "keyring.json"))
	if err != nil {
		return 0, nil, err
	}
	jsKey, err := ring.JetStreamKey()
	if err != nil {
		return 0, nil, err
	}
	ns, err := natsembed.Start(natsembed.Options{StoreDir: filepath.Join(dir, "nats"), Host: "127.0.0.1", Port: -1,
		SyncAlways: syncAlways, JetStreamKey: jsKey})
	if err != nil {
		return 0, nil, err
	}
	defer ns.Stop()
	nc, err := nats.Connect(ns.URL()) // TCP, like the SDK's connection
	if err != nil {
		return 0, nil, err
	}
	defer nc.Close()
	// The same window of publishes in flight as the SDK uses; an unbounded one
	// makes JetStream time some of them out under this load.
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(sdk.MaxPublishesInFlight), jetstream.WithPublishAsyncTimeout(30*time.Second))
	ctx := context.Background()
	bus := ingest.BusConfig{}
	stream, err := js.CreateStream(ctx, bus.StreamConfig())
	if err != nil {
		return 0, nil, err
	}
	if _, err := stream.CreateOrUpdateConsumer(ctx, bus.ConsumerConfig()); err != nil {
		return 0, nil, err
	}
	subjects := wire.NewSubjects("")
	rate, err := rawPublish(js, subjects.Frag("bench"), payloads)
	if err != nil {
		return 0, nil, err
	}
	if info, err := stream.Info(ctx); err != nil {
		return 0, nil, err
	} else if info.State.Msgs != uint64(len(payloads)) {
		return 0, nil, fmt.Errorf("raw peer: the stream kept %d of %d messages; the peer must keep what it acknowledged", info.State.Msgs, len(payloads))
	}
	lat, err := b.rawLatency(ctx, js, subjects.Frag("latency"), payloads)
	if err != nil {
		return 0, nil, err
	}
	return rate, lat, nil
}

// rawPublish publishes the payloads asynchronously on subject, with the
// SDK's window of publishes in flight, and returns bytes/s to the last
// publish acknowledgement.
func rawPublish(js jetstream.JetStream, subject string, payloads [][]byte) (float64, error) {
	var bytes int64
	futures := make([]jetstream.PubAckFuture, 0, len(payloads))
	t0 := time.Now()
	for i, p := range payloads {
		msg := nats.NewMsg(subject)
		msg.Data = p
		msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("raw:%d", i))
		// A full window waits for a free slot (the SDK waits too, and
		// re-tries); the default 200 ms stall wait gives up under this load.
		f, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute))
		if err != nil {
			return 0, err
		}
		futures = append(futures, f)
		bytes += int64(len(p))
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("raw publish did not complete")
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return 0, fmt.Errorf("raw publish failed: %w", err)
		}
	}
	return float64(bytes) / time.Since(t0).Seconds(), nil
}

// rawLatency times b.latencyN synchronous publishes of the payloads.
func (b *bench) rawLatency(ctx context.Context, js jetstream.JetStream, subject string, payloads [][]byte) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, b.latencyN)
	for i := 0; i < b.latencyN; i++ {
		msg := nats.NewMsg(subject)
		msg.Data = payloads[i%len(payloads)]
		msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("lat:%d", i))
		t := time.Now()
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t))
	}
	return lat, nil
}

// ingestRun is one SDK → PERSISTED run.
type ingestRun struct {
	rate  float64         // acknowledged payload bytes/s, to the last PERSISTED
	acked int64           // acknowledged payload bytes of the throughput run
	lat   []time.Duration // PutFrame → PERSISTED, one fragment at a time
	disk  diskUse         // what the throughput run wrote
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// sdk runs our path: a server with the embedded bus (default settings), the
// SDK producer making the same fragments, throughput to the last PERSISTED.
func (b *bench) sdk() (*ingestRun, error) { return b.sdkRun(true) }

// bigFragmentBytes is the big-fragment run's fragment size: 4K video's 10 s
// (25 Mbit/s makes 31 MB), under the 50 MB limit, six bus messages each.
const bigFragmentBytes = 45 << 20

// bigOnly runs the big-fragment rows.
func (b *bench) bigOnly() error {
	small, big, err := b.bigFragmentRuns()
	if err != nil {
		return err
	}
	printBig(small, big, b.fragBytes)
	return nil
}

// processRun is one SDK → PERSISTED run against `sensorium serve` in a
// process of its own: its rate, and the server's peak resident memory
// (VmHWM), the producer's memory apart.
type processRun struct {
	rate float64
	hwm  int64
	cpu  float64 // the server's CPU seconds per GB put
}

func printBig(small, big processRun, smallBytes int) {
	verdict := "met"
	if big.rate < 0.8*small.rate {
		verdict = "NOT met"
	}
	fmt.Printf("%-46s %7.0f MB/s   %.2f× the %d KiB fragments' %.0f MB/s (same bytes, same server); goal ≥ 0.80×: %s\n",
		fmt.Sprintf("SDK → PERSISTED, %d MiB fragments", bigFragmentBytes>>20), big.rate/1e6, big.rate/small.rate, smallBytes>>10, small.rate/1e6, verdict)
	fmt.Printf("%-46s %7d MiB   against %d MiB with %d KiB fragments\n",
		"  server's peak RSS (VmHWM)", big.hwm>>20, small.hwm>>20, smallBytes>>10)
	fmt.Printf("%-46s %7.2f s    against %.2f s with %d KiB fragments\n",
		"  server's CPU per GB put", big.cpu, small.cpu, smallBytes>>10)
}

// bigFragmentRuns puts about the same bytes as fragments of b.fragBytes and
// of bigFragmentBytes (at least four), each into a fresh `sensorium serve`
// process: the big-fragment row's ratio and the server's memory for each.
func (b *bench) bigFragmentRuns() (small, big processRun, err error) {
	bin, err := buildServer(b.scratch("bin"))
	if err != nil {
		return small, big, err
	}
	large := *b
	large.fragBytes = bigFragmentBytes
	large.fragments = max(4, b.fragments*b.fragBytes/bigFragmentBytes)
	if small, err = b.processRun(bin); err != nil {
		return small, big, err
	}
	large.seq = b.seq
	big, err = large.processRun(bin)
	b.seq = large.seq
	return small, big, err
}

// processRun puts b.fragments fragments of b.fragBytes into a fresh server
// process.
func (b *bench) processRun(bin string) (processRun, error) {
	srv, err := startServerProcess(bin, b.scratch("serve"))
	if err != nil {
		return processRun{}, err
	}
	defer srv.stop()
	ctx := context.Background()
	if _, err := sdk.NewClient(srv.httpURL, nil).CreateStream(ctx, sdk.CreateStreamInput{StreamName: "bench", DataRetentionInHours: 1}); err != nil {
		return processRun{}, err
	}
	nc, err := nats.Connect(srv.natsURL)
	if err != nil {
		return processRun{}, err
	}
	defer nc.Close()
	fragments := b.fragments
	before, err := sampleProcess(srv.pid())
	if err != nil {
		return processRun{}, err
	}
	elapsed, _, err := b.produce(ctx, nc, "bench", fragments)
	if err != nil {
		return processRun{}, err
	}
	ps, err := sampleProcess(srv.pid())
	if err != nil {
		return processRun{}, err
	}
	bytes := float64(fragments * b.fragBytes)
	return processRun{rate: bytes / elapsed.Seconds(), hwm: ps.hwm, cpu: (ps.cpu - before.cpu).Seconds() / (bytes / 1e9)}, nil
}

// sdkRun is sdk, with the one-at-a-time latency run or without.
func (b *bench) sdkRun(withLatency bool) (*ingestRun, error) {
	dir := b.scratch("sensorium")
	srv, err := server.Start(context.Background(), server.Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	client := sdk.NewClient(srv.HTTPURL(), nil)
	for _, s := range []string{"bench", "latency"} {
		if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: s, DataRetentionInHours: 1}); err != nil {
			return nil, err
		}
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	disk := dataFolders{bus: []string{filepath.Join(dir, "nats")}, store: []string{filepath.Join(dir, "store")}}
	before, err := disk.sample()
	if err != nil {
		return nil, err
	}
	elapsed, _, err := b.produce(ctx, nc, "bench", b.fragments)
	if err != nil {
		return nil, err
	}
	st := srv.IngestStats()
	run := &ingestRun{acked: st.PersistedBytes, rate: float64(st.PersistedBytes) / elapsed.Seconds()}
	if run.disk, err = disk.settled(ctx, nc, before); err != nil {
		return nil, err
	}
	if !withLatency {
		return run, nil
	}
	if run.lat, err = b.latency(ctx, nc, "latency"); err != nil {
		return nil, err
	}
	return run, nil
}

// newProducer is the producer of every SDK run: fragments closed by size,
// framesPerFragment frames each.
func (b *bench) newProducer(ctx context.Context, nc *nats.Conn, stream string) (*sdk.Producer, error) {
	track, err := sdk.OpaqueTrack(1, "payload", "application/octet-stream")
	if err != nil {
		return nil, err
	}
	return sdk.NewProducer(ctx, nc, sdk.ProducerConfig{
		Stream: stream, Tracks: []sdk.Track{track},
		MinFragmentDuration: 25 * time.Second, MaxFragmentDuration: 30 * time.Second,
		MaxFragmentSize: b.fragBytes + 1024, BufferBytes: 256 << 20, NoLive: true, Logger: quiet,
	})
}

// produce puts fragments fragments' frames into stream as fast as the
// producer takes them and returns the time to the last PERSISTED.
func (b *bench) produce(ctx context.Context, nc *nats.Conn, stream string, fragments int) (time.Duration, sdk.ProducerStats, error) {
	p, err := b.newProducer(ctx, nc, stream)
	if err != nil {
		return 0, sdk.ProducerStats{}, err
	}
	frame := b.frameBytes()
	base := time.Now().Add(-time.Hour).UnixNano()
	t0 := time.Now()
	for i := 0; i < fragments*framesPerFragment; i++ {
		f := sdk.Frame{Track: 1, Timestamp: base + int64(i)*int64(10*time.Millisecond), Duration: int64(10 * time.Millisecond), Key: true, Data: frame}
		if err := p.PutFrame(ctx, f); err != nil {
			return 0, sdk.ProducerStats{}, err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		return 0, sdk.ProducerStats{}, err
	}
	return time.Since(t0), p.Stats(), nil
}

// latency times b.latencyN fragments one at a time, PutFrame → PERSISTED.
func (b *bench) latency(ctx context.Context, nc *nats.Conn, stream string) ([]time.Duration, error) {
	lp, err := b.newProducer(ctx, nc, stream)
	if err != nil {
		return nil, err
	}
	frame := b.frameBytes()
	base := time.Now().Add(-time.Hour).UnixNano()
	lat := make([]time.Duration, 0, b.latencyN)
	for i := 0; i < b.latencyN; i++ {
		t := time.Now()
		for k := 0; k < framesPerFragment; k++ {
			j := i*framesPerFragment + k
			f := sdk.Frame{Track: 1, Timestamp: base + int64(j)*int64(10*time.Millisecond), Duration: int64(10 * time.Millisecond), Key: true, Data: frame}
			if err := lp.PutFrame(ctx, f); err != nil {
				return nil, err
			}
		}
		if err := lp.Flush(ctx); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t))
	}
	if err := lp.Close(ctx); err != nil {
		return nil, err
	}
	return lat, nil
}

func pct(l []time.Duration, p int) string {
	if len(l) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := min(len(s)-1, len(s)*p/100)
	return s[i].Round(10 * time.Microsecond).String()
}
