package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/store"
)

// BenchmarkManyStreams is the ingest side of many slow streams: each
// iteration puts one 4 KiB fragment on each of 1,000 streams at once, as a
// second of 1,000 sensors does, and waits for every PERSISTED. It runs with
// the store's batch made durable by one flush of the file system (the
// default where it can) and by an fsync per stream's file (the peer), and
// reports fragments/s and the p99 of publish → PERSISTED, and how long the
// first wave took (each stream's first fragment makes its data key and
// segment file).
//
// The burst case puts 15 fragments on each stream at once, as producers
// with a window of 15 unacknowledged fragments do when they send as fast
// as they can.
func BenchmarkManyStreams(b *testing.B) {
	for _, perFile := range []bool{false, true} {
		b.Run(fmt.Sprintf("per-file-sync=%v", perFile), func(b *testing.B) {
			benchManyStreams(b, 1000, 1, perFile)
		})
	}
	b.Run("burst", func(b *testing.B) { benchManyStreams(b, 1000, 15, false) })
}

func benchManyStreams(b *testing.B, streams, perStream int, perFile bool) {
	r := newRigWith(b, b.TempDir(), b.TempDir(), func(o *store.Options) { o.PerFileSync = perFile })
	defer r.close()
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprintf("s%05d", i)
		if _, err := r.st.CreateStream(store.CreateStreamInput{Name: names[i], RetentionHours: 1}); err != nil {
			b.Fatal(err)
		}
	}
	events := make(chan wire.AckEvent, 4*streams*perStream)
	sub, err := r.nc.Subscribe(r.subs.Prefix+"."+wire.KindAck+".>", func(m *nats.Msg) {
		var ev wire.AckEvent
		if json.Unmarshal(m.Data, &ev) == nil {
			events <- ev
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	var lat []time.Duration
	wave := func(it int) {
		type key struct {
			producer string
			seq      uint64
		}
		sent := make(map[key]time.Time, streams*perStream)
		for k := 0; k < perStream; k++ {
			seq := uint64(it*perStream + k + 1)
			for _, name := range names {
				msg := nats.NewMsg(r.subs.Frag(name))
				msg.Data = fragment4K(seq * 1000)
				msg.Header.Set(wire.HeaderProducerID, "p-"+name)
				msg.Header.Set(wire.HeaderProducerSeq, strconv.FormatUint(seq, 10))
				msg.Header.Set(wire.HeaderMsgID, wire.MsgID(name, "p-"+name, seq, 0))
				sent[key{"p-" + name, seq}] = time.Now()
				if len(sent)%2000 == 0 {
					<-r.js.PublishAsyncComplete() // the client's own cap on acks pending is 4000
				}
				if _, err := r.js.PublishMsgAsync(msg); err != nil {
					b.Fatal(err)
				}
			}
		}
		deadline := time.After(2 * time.Minute)
		for got := 0; got < streams*perStream; {
			select {
			case ev := <-events:
				if ev.EventType == wire.EventPersisted {
					k := key{ev.ProducerID, ev.ProducerSequence}
					if t0, ok := sent[k]; ok {
						lat = append(lat, time.Since(t0))
						delete(sent, k)
						got++
					}
				} else if ev.EventType == wire.EventError {
					b.Fatalf("refused: %+v", ev)
				}
			case <-deadline:
				b.Fatalf("wave %d: %d of %d PERSISTED after 2 min", it, got, streams*perStream)
			}
		}
	}
	// The first fragment of a stream creates its segment file and data key:
	// a cost paid once per stream per hour, not what this measures.
	t0 := time.Now()
	wave(0)
	first := time.Since(t0)
	lat = lat[:0]
	b.SetBytes(int64(streams * perStream * 4096))
	b.ResetTimer()
	for it := 1; it <= b.N; it++ {
		wave(it)
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(streams*perStream*b.N)/b.Elapsed().Seconds(), "fragments/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(first.Milliseconds()), "first-wave-ms")
}

// fragment4K is a fragment at producer time ms of one 4 KiB frame.
func fragment4K(ms uint64) []byte {
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale, Duration: 1000})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/SCALAR", CodecPrivate: []byte{1, 2, 3}}})
	return mkv.AppendCluster(b, ms, []mkv.Block{{Track: 1, Keyframe: true, Data: bytes.Repeat([]byte{0x5a}, 4096-len(b)-32)}})
}
