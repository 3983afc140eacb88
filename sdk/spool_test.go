package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs/faultfs"
	"github.com/sensorium-io/sensorium/sdk"
)

// putFrames puts frames from to to-1 of 100 ms each, every one a key frame
// of size bytes that closes the fragment before it (MinFragmentDuration is
// tiny), and returns the first error.
func putFrames(ctx context.Context, p *sdk.Producer, from, to, size int) error {
	for i := from; i < to; i++ {
		if err := p.PutFrame(ctx, sdk.Frame{Track: 1, Timestamp: t0 + int64(i)*100*ms, Duration: 100 * ms, Key: true, Data: make([]byte, size)}); err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
	}
	return nil
}

// storedFrames returns the index of every fragment the store holds for
// stream s (its producer time, in 100 ms from t0), in store order.
func (r *rig) storedFrames() []int {
	r.t.Helper()
	frags, err := r.st.Fragments("s", 0, 100000)
	if err != nil {
		r.t.Fatal(err)
	}
	out := make([]int, len(frags))
	for i, f := range frags {
		out[i] = int((f.ProducerTime - t0) / (100 * ms))
	}
	return out
}

func spoolProducer(t testing.TB, r *rig, cfg sdk.ProducerConfig) *sdk.Producer {
	t.Helper()
	cfg.Stream, cfg.Tracks, cfg.MinFragmentDuration = "s", []sdk.Track{opaque(1)}, time.Nanosecond
	p, err := sdk.NewProducer(context.Background(), r.client(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func closeNow(p *sdk.Producer) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return p.Close(ctx)
}

func rangeInts(lo, hi int) []int {
	var out []int
	for i := lo; i < hi; i++ {
		out = append(out, i)
	}
	return out
}

// A producer stopped before its fragments were PERSISTED leaves them in the
// spool; the next producer on it re-sends them under the same producer id
// and sequences, continues above them, and the server stores each fragment
// once — although the bus holds the first copies too.
func TestSpoolResendsAfterRestart(t *testing.T) {
	r := newRig(t, false)
	dir := t.TempDir()
	a := &acks{}
	p := spoolProducer(t, r, sdk.ProducerConfig{Spool: &sdk.SpoolConfig{Dir: dir, Budget: 64 << 20}, OnAck: a.onAck})
	if err := putFrames(context.Background(), p, 0, 21, 1024); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "20 RECEIVED", func() bool { return a.count(sdk.EventReceived) == 20 })
	if st := p.Stats(); st.Spooled != 20 || st.Persisted != 0 {
		t.Fatalf("stats %+v", st)
	}
	err := closeNow(p) // its open fragment (frame 20) is closed and spooled too
	if err == nil || !strings.Contains(err.Error(), "the spool keeps them") {
		t.Fatalf("Close: %v", err)
	}
	firstID := a.events[0].ProducerID

	r.startIngest()
	b := &acks{}
	p = spoolProducer(t, r, sdk.ProducerConfig{Spool: &sdk.SpoolConfig{Dir: dir, Budget: 64 << 20}, OnAck: b.onAck})
	if end, ok := p.SpooledThrough(); !ok || end != t0+21*100*ms {
		t.Fatalf("SpooledThrough %v %v", time.Duration(end-t0), ok)
	}
	if err := putFrames(context.Background(), p, 3, 4, 1024); err == nil {
		t.Fatal("a frame before what the spool holds was taken")
	}
	if err := putFrames(context.Background(), p, 21, 41, 1024); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.storedFrames(); !slices.Equal(got, rangeInts(0, 41)) {
		t.Fatalf("stored %v", got)
	}
	seqs := map[uint64]bool{}
	for _, ev := range b.events {
		if ev.ProducerID != firstID {
			t.Fatalf("the restarted producer is %q, not the spool's %q", ev.ProducerID, firstID)
		}
		if ev.EventType == sdk.EventPersisted {
			seqs[ev.ProducerSequence] = true
		}
	}
	for q := uint64(1); q <= 41; q++ {
		if !seqs[q] {
			t.Fatalf("no PERSISTED for sequence %d (%d events)", q, len(b.events))
		}
	}
	if st := p.Stats(); st.Spooled != 0 {
		t.Fatalf("stats after close %+v", st)
	}
}

// A full budget applies the policy and tells the caller: DropOldest drops
// the oldest segment's fragments, RefuseNew the new one (PutFrame says
// ErrBufferFull), Block waits and gives the new one up with the context.
// Memory holds BufferBytes whatever the backlog, and once the server is
// back every fragment not dropped is stored exactly once, in order.
func TestSpoolBudgetPolicies(t *testing.T) {
	const frame = 12 << 10 // one fragment each, ≈ 12.4 KB in the spool
	cases := []struct {
		name   string
		policy sdk.BufferPolicy
		cause  sdk.DropCause
	}{
		{"DropOldest", sdk.DropOldest, sdk.DroppedOldest},
		{"RefuseNew", sdk.RefuseNew, sdk.DroppedNew},
		{"Block", sdk.Block, sdk.DroppedNew},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, false)
			a := &acks{}
			cfg := sdk.ProducerConfig{MaxFragmentSize: 16 << 10, BufferBytes: 32 << 10, Policy: tc.policy, OnAck: a.onAck, OnDrop: a.onDrop,
				Spool: &sdk.SpoolConfig{Dir: t.TempDir(), Budget: 128 << 10}}
			p := spoolProducer(t, r, cfg)
			var refused []int
			failed := map[int]bool{} // frames whose PutFrame failed: never stored, never reported
			for i := 0; i < 60; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 25*time.Millisecond)
				err := putFrames(ctx, p, i, i+1, frame)
				cancel()
				if st := p.Stats(); st.SpoolBytes > cfg.Spool.Budget || st.BufferedBytes > cfg.BufferBytes {
					t.Fatalf("frame %d: over the bounds: %+v", i, st)
				}
				switch {
				case err == nil:
				case tc.policy == sdk.RefuseNew && errors.Is(err, sdk.ErrBufferFull),
					tc.policy == sdk.Block && errors.Is(err, context.DeadlineExceeded):
					refused = append(refused, i-1) // the frame closed the fragment of frame i-1
					failed[i] = true
				default:
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			st := p.Stats()
			if st.Dropped == 0 {
				t.Fatalf("a 128 KiB budget took 60 fragments of 12 KiB: %+v", st)
			}
			eventually(t, 5*time.Second, "the drop notices", func() bool {
				a.mu.Lock()
				defer a.mu.Unlock()
				return int64(len(a.dropped)) == st.Dropped
			})
			a.mu.Lock()
			dropped := map[int]bool{}
			var droppedIdx []int
			for _, d := range a.dropped {
				if d.Cause != tc.cause || d.Frames != 1 || d.End-d.Start != 100*ms || d.Bytes < frame || d.Bytes > frame+1024 {
					t.Fatalf("notice %+v", d)
				}
				idx := int((d.Start - t0) / (100 * ms))
				dropped[idx] = true
				droppedIdx = append(droppedIdx, idx)
			}
			a.mu.Unlock()
			switch tc.policy {
			case sdk.DropOldest: // the oldest went, in order, from the first
				if !slices.Equal(droppedIdx, rangeInts(0, len(droppedIdx))) {
					t.Fatalf("DropOldest dropped %v", droppedIdx)
				}
			default: // the newest went, each one the caller was told of
				if !slices.Equal(droppedIdx, refused) || droppedIdx[0] < 5 {
					t.Fatalf("dropped %v, PutFrame failed for %v", droppedIdx, refused)
				}
			}

			r.startIngest()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := p.Close(ctx); err == nil || !strings.Contains(err.Error(), "dropped") {
				t.Fatalf("Close: %v", err)
			}
			// A fragment dropped while on the wire may still be stored: its
			// PERSISTED then reaches OnAck after the notice.
			persisted := map[int]bool{}
			a.mu.Lock()
			for _, ev := range a.events {
				if ev.EventType == sdk.EventPersisted {
					persisted[int(ev.FragmentTimecode-t0/ms)/100] = true
				}
			}
			a.mu.Unlock()
			var want []int
			for i := 0; i < 60; i++ {
				if (!dropped[i] || persisted[i]) && !failed[i] {
					want = append(want, i)
				}
			}
			if got := r.storedFrames(); !slices.Equal(got, want) {
				t.Fatalf("stored %v\nwant   %v", got, want)
			}
		})
	}
}

// A power cut throws away what the spool had not fsynced. Nothing the
// server has seen is among it: fragments are published only once fsynced,
// so the restarted producer never reuses a sequence the server knows, and
// what it makes after the restart is stored, not taken for a duplicate.
func TestSpoolPowerCut(t *testing.T) {
	r := newRig(t, false)
	dir := t.TempDir()
	ffs := faultfs.New(vfs.OS)
	sc := &sdk.SpoolConfig{Dir: dir, Budget: 64 << 20}
	sdk.SetSpoolFS(sc, ffs)
	a := &acks{}
	p := spoolProducer(t, r, sdk.ProducerConfig{Spool: sc, OnAck: a.onAck})
	if err := putFrames(context.Background(), p, 0, 30, 4096); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "RECEIVED", func() bool { return a.count(sdk.EventReceived) >= 10 })
	if err := ffs.Crash(); err != nil {
		t.Fatal(err)
	}
	_ = closeNow(p) // the process is gone; its spool fails from the cut on

	r.startIngest()
	p = spoolProducer(t, r, sdk.ProducerConfig{Spool: &sdk.SpoolConfig{Dir: dir, Budget: 64 << 20}})
	end, ok := p.SpooledThrough()
	if !ok {
		t.Fatal("the spool lost everything")
	}
	from := int((end - t0) / (100 * ms))
	if from < 10 {
		t.Fatalf("the spool holds less than what the bus received: up to frame %d", from)
	}
	if err := putFrames(context.Background(), p, from, from+6, 4096); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := r.storedFrames()
	// Everything up to the spool's end, then the new ones: each once, in order.
	if !slices.Equal(got, rangeInts(0, from+6)) {
		t.Fatalf("stored %v, want 0…%d", got, from+5)
	}
}

// SyncPuts: a PutFrame that closed a fragment returns once the fragment is
// fsynced, so a power cut right after loses none of them.
func TestSpoolSyncPuts(t *testing.T) {
	r := newRig(t, false)
	dir := t.TempDir()
	ffs := faultfs.New(vfs.OS)
	sc := &sdk.SpoolConfig{Dir: dir, Budget: 64 << 20, SyncPuts: true}
	sdk.SetSpoolFS(sc, ffs)
	p := spoolProducer(t, r, sdk.ProducerConfig{Spool: sc})
	if err := putFrames(context.Background(), p, 0, 41, 4096); err != nil { // frame 40 closes fragment 39
		t.Fatal(err)
	}
	if err := ffs.Crash(); err != nil {
		t.Fatal(err)
	}
	_ = closeNow(p)
	p = spoolProducer(t, r, sdk.ProducerConfig{Spool: &sdk.SpoolConfig{Dir: dir, Budget: 64 << 20}})
	defer closeNow(p)
	if end, ok := p.SpooledThrough(); !ok || end != t0+40*100*ms {
		t.Fatalf("after the power cut the spool ends at frame %d, want 40", (end-t0)/(100*ms))
	}
	if st := p.Stats(); st.Spooled != 40 {
		t.Fatalf("stats %+v", st)
	}
}

// A full disk: the fragments the spool cannot write are dropped and the
// caller is told (PutFrame's error, OnDrop); once there is space again the
// producer goes on, and everything it did spool is stored once.
func TestSpoolDiskFull(t *testing.T) {
	r := newRig(t, true)
	ffs := faultfs.New(vfs.OS)
	sc := &sdk.SpoolConfig{Dir: t.TempDir(), Budget: 64 << 20}
	sdk.SetSpoolFS(sc, ffs)
	a := &acks{}
	p := spoolProducer(t, r, sdk.ProducerConfig{Spool: sc, OnDrop: a.onDrop})
	if err := putFrames(context.Background(), p, 0, 10, 4096); err != nil {
		t.Fatal(err)
	}
	ffs.SetFault(func(op faultfs.Op, name string) error {
		if op == faultfs.OpWrite && strings.HasSuffix(name, ".seg") {
			return faultfs.ErrNoSpace
		}
		return nil
	})
	// A frame that closes a fragment fails (the frame is not taken, the
	// fragment is dropped); the next one starts a fragment and is taken.
	failed := map[int]bool{}
	for i := 10; i < 20; i++ {
		err := putFrames(context.Background(), p, i, i+1, 4096)
		if err != nil && !errors.Is(err, faultfs.ErrNoSpace) {
			t.Fatalf("frame %d on a full disk: %v", i, err)
		}
		if err != nil {
			failed[i] = true
		}
	}
	ffs.SetFault(nil)
	if err := putFrames(context.Background(), p, 20, 30, 4096); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Close(ctx); err == nil || !strings.Contains(err.Error(), "5 fragments were dropped") { // 10, 12, … closed 9, 11, …
		t.Fatalf("Close: %v", err)
	}
	dropped := map[int]bool{}
	for _, d := range a.dropped {
		if d.Cause != sdk.DroppedNew || d.OnTheWire {
			t.Fatalf("notice %+v", d)
		}
		dropped[int((d.Start-t0)/(100*ms))] = true
	}
	var want []int
	for i := 0; i < 30; i++ {
		if !dropped[i] && !failed[i] {
			want = append(want, i)
		}
	}
	if got := r.storedFrames(); !slices.Equal(got, want) || len(dropped) != 5 || len(failed) != 5 {
		t.Fatalf("stored %v\nwant   %v (dropped %v)", got, want, dropped)
	}
}
