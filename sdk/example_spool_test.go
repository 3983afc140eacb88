package sdk_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

// A producer that keeps its fragments on disk until the server has them:
// killed, or the machine's power cut, a producer started again on the same
// folder re-sends what was not PERSISTED and continues where the spool ends.
func ExampleSpoolConfig() {
	nc, stop := exampleServer() // the NATS connection of a Sensorium server
	defer stop()
	dir, err := os.MkdirTemp("", "spool")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	cfg := sdk.ProducerConfig{
		Stream: "pump-1",
		Tracks: []sdk.Track{{Number: 1, Name: "counts", CodecID: "S_EXAMPLE/COUNTS"}},
		Policy: sdk.DropOldest, // a full budget drops the oldest, and says so
		Spool:  &sdk.SpoolConfig{Dir: dir, Budget: 64 << 20},
		OnDrop: func(d sdk.Dropped) { fmt.Println("dropped", d.Sequence, d.Cause) },
	}
	ctx := context.Background()
	for run := 1; run <= 2; run++ {
		p, err := sdk.NewProducer(ctx, nc, cfg)
		if err != nil {
			log.Fatal(err)
		}
		// After a crash, the frames of the open fragment are gone: resume
		// the source where the spool's fragments end.
		t := start
		if end, ok := p.SpooledThrough(); ok {
			t = time.Unix(0, end)
		}
		fmt.Println("run", run, "starts at", t.Sub(start))
		for i := 0; i < 30; i++ {
			f := sdk.Frame{Track: 1, Timestamp: t.UnixNano(), Duration: int64(100 * time.Millisecond), Key: true, Data: []byte{byte(i)}}
			if err := p.PutFrame(ctx, f); err != nil {
				log.Fatal(err)
			}
			t = t.Add(100 * time.Millisecond)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = p.Close(cctx) // flushes: every fragment PERSISTED, none left in the spool
		cancel()
		st := p.Stats()
		fmt.Println("PERSISTED", st.Persisted, "left in the spool", st.Spooled, err)
	}
	// Output:
	// run 1 starts at 0s
	// PERSISTED 2 left in the spool 0 <nil>
	// run 2 starts at 3s
	// PERSISTED 2 left in the spool 0 <nil>
}

// exampleServer runs what `sensorium serve` would: the bus, the store and
// the ingester, in process, with the example's stream.
func exampleServer() (*nats.Conn, func()) {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	ns, err := natsembed.Start(natsembed.Options{StoreDir: dir + "/nats", DontListen: true})
	if err != nil {
		log.Fatal(err)
	}
	nc, err := ns.Connect()
	if err != nil {
		log.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: dir + "/store", Logger: quiet(), RetentionInterval: -1})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := st.CreateStream(store.CreateStreamInput{Name: "pump-1", RetentionHours: 24}); err != nil {
		log.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	bus, cons, err := ingest.EnsureBus(context.Background(), js, ingest.BusConfig{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	in := ingest.New(ingest.Options{Store: st, NC: nc, Stream: bus, Consumer: cons, Logger: quiet()})
	go func() { done <- in.Run(ctx) }()
	return nc, func() {
		cancel()
		<-done
		st.Close()
		nc.Close()
		ns.Stop()
		os.RemoveAll(dir)
	}
}
