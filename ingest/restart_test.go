package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/store"
)

// TestRestartDoesNotWaitOutTheAckWait: a process died with MaxAckPending
// (8192) messages delivered and not acknowledged. The next one must apply
// them and go on with new fragments at once. It used to read them with
// GetMsg, which left them pending on the consumer until their 30 s ack wait
// ended, so nothing new was delivered meanwhile — and with restarts every
// few seconds (the 200-cut power-cut loop) ingest stalled for good.
func TestRestartDoesNotWaitOutTheAckWait(t *testing.T) {
	nc, _ := embeddedBus(t, natsembed.Options{})
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(store.Options{Dir: t.TempDir(), Logger: log, RetentionInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateStream(store.CreateStreamInput{Name: "s", RetentionHours: 1}); err != nil {
		t.Fatal(err)
	}
	subs := wire.NewSubjects("")
	var mu sync.Mutex
	persisted := map[uint64]bool{}
	sub, err := nc.Subscribe(subs.Ack("s"), func(m *nats.Msg) {
		var ev wire.AckEvent
		if json.Unmarshal(m.Data, &ev) == nil && ev.EventType == wire.EventPersisted {
			mu.Lock()
			persisted[ev.ProducerSequence] = true
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx := context.Background()
	bus, cons, err := EnsureBus(ctx, js, BusConfig{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	base := uint64(time.Now().Add(-time.Hour).UnixMilli())
	publish := func(from, to uint64) {
		for seq := from; seq <= to; seq++ {
			msg := nats.NewMsg(subs.Frag("s"))
			msg.Data = fragmentBytes(base+seq*100, 1, nil)
			msg.Header.Set(wire.HeaderProducerID, "p")
			msg.Header.Set(wire.HeaderProducerSeq, strconv.FormatUint(seq, 10))
			msg.Header.Set(wire.HeaderMsgID, wire.MsgID("s", "p", seq, 0))
			for {
				if _, err := js.PublishMsgAsync(msg); err == nil {
					break
				}
				<-js.PublishAsyncComplete()
			}
		}
		<-js.PublishAsyncComplete()
	}
	const pending = 8192 // the consumer's MaxAckPending
	publish(1, pending)
	batch, err := cons.Fetch(pending, jetstream.FetchMaxWait(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for range batch.Messages() {
		delivered++ // and never acknowledged: the process dies
	}
	if delivered != pending {
		t.Fatalf("the dying process got %d messages, want %d", delivered, pending)
	}
	in := New(Options{Store: st, NC: nc, Stream: bus, Consumer: cons, Logger: log})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(rctx) }()
	defer func() { cancel(); <-done }()
	began := time.Now()
	publish(pending+1, pending+8) // new fragments behind the unacknowledged ones
	// Well inside the 30 s ack wait: every fragment, the new ones too.
	poll.Until(t, 15*time.Second, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(persisted) < pending+8 {
			return fmt.Errorf("%d of %d fragments PERSISTED %s after the restart", len(persisted), pending+8, time.Since(began).Round(time.Millisecond))
		}
		return nil
	})
	// And the bus knows they are applied: nothing is left pending.
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		ci, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if ci.NumAckPending != 0 || ci.AckFloor.Stream != pending+8 {
			return fmt.Errorf("ack floor %d, %d pending; want %d and 0", ci.AckFloor.Stream, ci.NumAckPending, pending+8)
		}
		return nil
	})
	t.Logf("%d fragments left unacknowledged and 8 new ones PERSISTED %s after the restart", pending, time.Since(began).Round(time.Millisecond))
}
