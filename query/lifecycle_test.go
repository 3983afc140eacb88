package query

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/store"
)

// peakAllocator is a checked allocator that also keeps the most bytes it
// had out at once.
type peakAllocator struct {
	*memory.CheckedAllocator
	mu   sync.Mutex
	now  int
	peak int
}

func newPeakAllocator() *peakAllocator {
	return &peakAllocator{CheckedAllocator: memory.NewCheckedAllocator(memory.NewGoAllocator())}
}

func (a *peakAllocator) Allocate(n int) []byte {
	a.add(n)
	return a.CheckedAllocator.Allocate(n)
}

func (a *peakAllocator) Reallocate(n int, b []byte) []byte {
	a.add(n - len(b))
	return a.CheckedAllocator.Reallocate(n, b)
}

func (a *peakAllocator) Free(b []byte) {
	a.add(-len(b))
	a.CheckedAllocator.Free(b)
}

func (a *peakAllocator) add(n int) {
	a.mu.Lock()
	a.now += n
	a.peak = max(a.peak, a.now)
	a.mu.Unlock()
}

// seconds appends n fragments of 1 s (1000 samples of testDesc, 10 frames)
// from second `from` on.
func seconds(t *testing.T, st *store.Store, stream string, from, n int) {
	t.Helper()
	sec := int64(time.Second)
	var frags []*store.Fragment
	for i := from; i < from+n; i++ {
		frags = append(frags, testFragment(t, uint64(10*(i+1)), queryBase+int64(i)*sec, queryBase+int64(i)*sec, i*1000, 10, false))
	}
	appendAll(t, st, stream, frags...)
}

// The memory a query holds does not grow with its range: the pipeline holds
// a bounded number of batches, however many fragments there are and however
// slowly the reader takes them.
func TestQueryMemoryBounded(t *testing.T) {
	st, _ := newTestService(t, "m")
	seconds(t, st, "m", 0, 2000)
	for _, shape := range []string{"samples", "windows"} {
		// The shorter range holds more than the pipeline may hold at once (2
		// workers, 5 batches each, of 500 rows or, cut into windows, 65536).
		peaks := map[int]int{}
		for _, secs := range []int{500, 2000} {
			svc := New(Options{Store: st, DecodeWorkers: 2})
			mem := newPeakAllocator()
			req := Request{Stream: "m", Start: queryBase, End: queryBase + int64(secs)*int64(time.Second), BatchRows: 500, Allocator: mem, Shape: shape}
			if shape == "windows" {
				req.Window, req.BatchRows = Window{Length: 250, Hop: 100}, 20
			}
			p, err := svc.PrepareQuery(req)
			if err != nil {
				t.Fatal(err)
			}
			rows := 0
			err = svc.QueryBatches(context.Background(), p, func(rec arrow.RecordBatch) error {
				rows += int(rec.NumRows())
				time.Sleep(20 * time.Microsecond) // a slow reader: the workers run ahead as far as they may
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			mem.AssertSize(t, 0)
			peaks[secs] = mem.peak
			t.Logf("%s, %d s: %d rows, peak %d bytes", shape, secs, rows, mem.peak)
		}
		// Memory that grew with the range would be about 4× here; how far
		// the workers run ahead of a slow reader varies with the machine's
		// load (a windows query's peak moved from 13 to 18 MB between runs).
		if peaks[2000] > peaks[500]*2 {
			t.Errorf("%s: peak %d bytes over 2000 s, %d over 500 s: memory grows with the range", shape, peaks[2000], peaks[500])
		}
	}
}

// waitGoroutines waits until at most n goroutines run.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// When the reader goes away — emit fails, or the context ends while the
// query reads or while a live query waits — the query returns at once, its
// workers stop, and every batch is released.
func TestQueryStopsWhenClientGoesAway(t *testing.T) {
	st, _ := newTestService(t, "c")
	seconds(t, st, "c", 0, 100)
	gone := errors.New("client went away")
	cases := []struct {
		name   string
		req    Request
		cancel bool // cancel the context at the first batch, rather than fail emit
	}{
		{"samples, emit fails", Request{}, false},
		{"samples, cancelled", Request{}, true},
		{"windows, emit fails", Request{Shape: "windows", Window: Window{Length: 100, Hop: 50}}, false},
		{"aligned, cancelled", Request{Shape: "aligned", Inputs: []Input{{Stream: "c"}}, Align: Align{Rate: 500, Interpolation: "linear"}}, true},
		{"live, cancelled while waiting", Request{Follow: true}, true},
		{"live aligned, cancelled while waiting", Request{Follow: true, Shape: "aligned", Inputs: []Input{{Stream: "c"}}, Align: Align{Rate: 50, Interpolation: "previous"}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			svc := New(Options{Store: st, DecodeWorkers: 3})
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			req := tc.req
			req.Stream, req.Start, req.End, req.BatchRows, req.Allocator = "c", queryBase, queryBase+int64(100*time.Second), 100, mem
			if req.Follow {
				req.End = math.MaxInt64
			}
			p, err := svc.PrepareQuery(req)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var batches atomic.Int64
			done := make(chan error, 1)
			go func() {
				done <- svc.QueryBatches(ctx, p, func(rec arrow.RecordBatch) error {
					n := batches.Add(1)
					if req.Follow {
						// A live query: the stored rows first; cancel once it waits.
						if int64(rec.Column(0).(*array.Timestamp).Value(int(rec.NumRows())-1)) >= queryBase+int64(99*time.Second) {
							go func() { time.Sleep(20 * time.Millisecond); cancel() }()
						}
						return nil
					}
					if n == 1 {
						if tc.cancel {
							cancel()
							return nil
						}
						return gone
					}
					return nil
				})
			}()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the query did not stop")
			}
			want := gone
			if tc.cancel {
				want = context.Canceled
			}
			if !errors.Is(err, want) {
				t.Fatalf("error %v, want %v", err, want)
			}
			if n := batches.Load(); !req.Follow && n > 3 {
				t.Errorf("%d batches handed on after the reader went away", n-1)
			}
			waitGoroutines(t, before)
			mem.AssertSize(t, 0)
		})
	}
}

// A live query follows the stream: the stored rows, then the new ones as
// their fragments become durable, for each shape; the windows and aligned
// shapes hand on what they have whenever the query waits for data (it
// does not hold rows back for a full batch).
func TestLiveShapes(t *testing.T) {
	cases := []struct {
		name string
		req  Request
		rows func(secs int) int // rows once the first secs seconds are in
	}{
		{"samples", Request{}, func(s int) int { return s * 1000 }},
		{"windows", Request{Shape: "windows", Window: Window{Length: 500, Hop: 500}}, func(s int) int { return 2 * s }},
		{"aligned", Request{Shape: "aligned", Inputs: []Input{{Stream: "live"}}, Align: Align{Rate: 10, Interpolation: "previous"}}, func(s int) int { return 10 * s }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, svc := newTestService(t, "live")
			seconds(t, st, "live", 0, 3)
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			req := tc.req
			req.Stream, req.Start, req.End, req.Follow, req.Allocator = "live", queryBase, math.MaxInt64, true, mem
			p, err := svc.PrepareQuery(req)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			rows := make(chan []int64, 100)
			done := make(chan error, 1)
			go func() {
				done <- svc.QueryBatches(ctx, p, func(rec arrow.RecordBatch) error {
					tc := rec.Column(0).(*array.Timestamp)
					var ts []int64
					for i := range tc.Len() {
						ts = append(ts, int64(tc.Value(i)))
					}
					rows <- ts
					return nil
				})
			}()
			var got []int64
			await := func(secs int) {
				t.Helper()
				// The aligned grid's point at the end of the stored data
				// waits for the next sample: it may still come at that time.
				want := tc.rows(secs)
				timeout := time.After(10 * time.Second)
				for len(got) < want {
					select {
					case ts := <-rows:
						got = append(got, ts...)
					case <-timeout:
						t.Fatalf("%d rows after %d s of data, want %d", len(got), secs, want)
					}
				}
				if len(got) != want {
					t.Fatalf("%d rows after %d s of data, want %d", len(got), secs, want)
				}
			}
			await(3)
			seconds(t, st, "live", 3, 2)
			await(5)
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("the live query ended with %v", err)
			}
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Fatalf("row %d at %d after %d: out of order or repeated", i, got[i], got[i-1])
				}
			}
			if got[0] != queryBase {
				t.Fatalf("first row at %d, want %d", got[0], queryBase)
			}
		})
	}
}

// The first batch is small — 48 KiB of rows, so that a reader has it in a
// few ms and it fits HTTP/2's first flow-control window — and the batches
// after it grow to batch_rows, never past it by more than a frame.
func TestFirstBatchSmall(t *testing.T) {
	st, svc := newTestService(t, "f")
	seconds(t, st, "f", 0, 200)
	p, err := svc.PrepareQuery(Request{Stream: "f", Start: queryBase, End: queryBase + int64(200*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	err = svc.QueryBatches(context.Background(), p, func(rec arrow.RecordBatch) error {
		sizes = append(sizes, rec.NumRows())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	first := int64((48 << 10) / 12) // a time and one float32 a row
	if sizes[0] < first || sizes[0] > first+100 || sizes[1] <= sizes[0] || slices.Max(sizes) > 65536+100 || slices.Max(sizes) < 60000 {
		t.Fatalf("batch sizes %v: want a first of %d rows (and a frame), then growing to about 65536", sizes, first)
	}
}

// While the first batch is handed on, no worker decodes (firstBatchPause):
// the one that made it waits, and the others have not started, so that the
// reader and the network have the cores. The rows are all there after.
func TestWorkersWaitWhileFirstBatchHandedOn(t *testing.T) {
	st, _ := newTestService(t, "w")
	seconds(t, st, "w", 0, 100)
	svc := New(Options{Store: st, DecodeWorkers: 2})
	mem := &countingAllocator{CheckedAllocator: memory.NewCheckedAllocator(memory.NewGoAllocator())}
	p, err := svc.PrepareQuery(Request{Stream: "w", Start: queryBase, End: queryBase + int64(100*time.Second), Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	var during int64
	err = svc.QueryBatches(context.Background(), p, func(rec arrow.RecordBatch) error {
		if rows == 0 {
			// A worker that decodes on allocates its next batch: give it
			// time to show.
			before := mem.n.Load()
			for range 20 {
				time.Sleep(5 * time.Millisecond)
				if during = mem.n.Load() - before; during > 0 {
					break
				}
			}
		}
		rows += rec.NumRows()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if during > 0 {
		t.Errorf("%d allocations while the first batch was handed on: a worker decoded meanwhile", during)
	}
	if rows != 100_000 {
		t.Errorf("%d rows, want 100000", rows)
	}
	mem.AssertSize(t, 0)
}

// countingAllocator counts allocations, and the bytes they asked for.
type countingAllocator struct {
	*memory.CheckedAllocator
	n, bytes atomic.Int64
}

func (a *countingAllocator) Allocate(n int) []byte {
	a.n.Add(1)
	a.bytes.Add(int64(n))
	return a.CheckedAllocator.Allocate(n)
}

func (a *countingAllocator) Reallocate(n int, b []byte) []byte {
	a.n.Add(1)
	a.bytes.Add(int64(max(0, n-len(b))))
	return a.CheckedAllocator.Reallocate(n, b)
}

// The first batches are built in buffers of their own size, not in buffers
// for a full batch: the memory a query has allocated when its first batch
// is handed on is a few times that batch, not the 65536 rows of a full one.
func TestFirstBatchBuffersSmall(t *testing.T) {
	st, svc := newTestService(t, "s")
	seconds(t, st, "s", 0, 100)
	mem := &countingAllocator{CheckedAllocator: memory.NewCheckedAllocator(memory.NewGoAllocator())}
	p, err := svc.PrepareQuery(Request{Stream: "s", Start: queryBase, End: queryBase + int64(100*time.Second), Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	var rows, first, allocated int64
	err = svc.QueryBatches(context.Background(), p, func(rec arrow.RecordBatch) error {
		if rows == 0 {
			first, allocated = rec.NumRows(), mem.bytes.Load()
		}
		rows += rec.NumRows()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A row is a timestamp and a float32.
	if limit := 4 * 12 * first; allocated > limit {
		t.Errorf("%d bytes allocated by the first batch of %d rows (%d bytes), want at most %d", allocated, first, 12*first, limit)
	}
	if rows != 100_000 {
		t.Errorf("%d rows, want 100000", rows)
	}
	mem.AssertSize(t, 0)
}

// The default number of decode workers is GOMAXPROCS as a query starts, at
// most 4, not as the Service was made: a process cut to fewer cores (a
// container's new CPU limit, which Go follows) decodes each query with as
// many workers as it has cores, instead of taking the cores in turns. An
// explicit Options.DecodeWorkers stays as given.
func TestDecodeWorkersFollowGOMAXPROCS(t *testing.T) {
	prev := runtime.GOMAXPROCS(4)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	auto, fixed := New(Options{}), New(Options{DecodeWorkers: 3})
	for _, tc := range []struct{ procs, auto int }{{4, 4}, {1, 1}, {2, 2}, {8, 4}} {
		runtime.GOMAXPROCS(tc.procs)
		if got := auto.decodeWorkers(); got != tc.auto {
			t.Errorf("GOMAXPROCS %d: %d workers by default, want %d", tc.procs, got, tc.auto)
		}
		if got := fixed.decodeWorkers(); got != 3 {
			t.Errorf("GOMAXPROCS %d: %d workers with DecodeWorkers 3, want 3", tc.procs, got)
		}
	}
}
