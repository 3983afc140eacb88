package query

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// A lone decode worker (one core) decodes one job ahead of the batch being
// handed on, not two: on one core a job decoded further ahead makes nothing
// faster, and only holds its batches' memory (queueDepth).
func TestLoneWorkerDecodesOneJobAhead(t *testing.T) {
	st, _ := newTestService(t, "l")
	seconds(t, st, "l", 0, 60)
	svc := New(Options{Store: st, DecodeWorkers: 1})
	mem := newPeakAllocator()
	// A job is a fragment of 1000 rows, one batch.
	p, err := svc.PrepareQuery(Request{Stream: "l", Start: queryBase, End: queryBase + int64(60*time.Second), BatchRows: 1000, Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	batchBytes := 0
	err = svc.QueryBatches(context.Background(), p, func(rec arrow.RecordBatch) error {
		if batchBytes == 0 {
			for _, c := range rec.Columns() {
				for _, b := range c.Data().Buffers() {
					if b != nil {
						batchBytes += b.Len()
					}
				}
			}
		}
		time.Sleep(200 * time.Microsecond) // a slow reader: the worker runs ahead as far as it may
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
	// The batch handed on, the next job's, and the buffers the worker has
	// made ready for the one after: three, and some (the allocator rounds
	// buffers up; 3.65 here). A second job decoded ahead made it 4.75.
	held := float64(mem.peak) / float64(batchBytes)
	t.Logf("peak %d bytes, %.2f batches of %d", mem.peak, held, batchBytes)
	if held > 4.2 {
		t.Errorf("a lone worker held %.2f batches at once, want about 3", held)
	}
}
