package sampletable

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// bigEnv makes TestMemoryBounded read files ten times larger.
const bigEnv = "SENSORIUM_SAMPLETABLE_BIG"

// Reading a table holds a few batches, whatever the file's size: the heap
// stays under a bound far below the file while a CSV file and an Arrow
// stream and a Parquet file (row groups of 1 Mi rows) of a million rows (ten
// with SENSORIUM_SAMPLETABLE_BIG) are read
// through the chunker.
func TestMemoryBounded(t *testing.T) {
	rows := 1_000_000
	if os.Getenv(bigEnv) != "" {
		rows *= 10
	}
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "big.csv")
	f, err := os.Create(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "time,x,y,z")
	for k := 0; k < rows; k++ {
		fmt.Fprintf(w, "%d.%06d,%d.25,%d.5,-%d\n", 1_700_000_000+k/1000, (k%1000)*1000, k%977, k%13, k%101)
	}
	w.Flush()
	f.Close()

	arrowsPath := filepath.Join(dir, "big.arrows")
	af, _ := os.Create(arrowsPath)
	schema := arrow.NewSchema([]arrow.Field{{Name: "time", Type: arrow.FixedWidthTypes.Timestamp_us}, {Name: "v", Type: arrow.PrimitiveTypes.Float64}}, nil)
	aw := ipc.NewWriter(af, ipc.WithSchema(schema))
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	for k := 0; k < rows; k++ {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000 + int64(k)*1000))
		b.Field(1).(*array.Float64Builder).Append(float64(k))
		if (k+1)%100_000 == 0 {
			rec := b.NewRecordBatch()
			if err := aw.Write(rec); err != nil {
				t.Fatal(err)
			}
			rec.Release()
		}
	}
	b.Release()
	aw.Close()
	af.Close()

	pqPath := filepath.Join(dir, "big.parquet")
	pf, _ := os.Create(pqPath)
	pw, err := pqarrow.NewFileWriter(schema, pf, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(1<<20)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	b = array.NewRecordBuilder(memory.DefaultAllocator, schema)
	for k := 0; k < rows; k++ {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000 + int64(k)*1000))
		b.Field(1).(*array.Float64Builder).Append(float64(k % 1000))
		if (k+1)%100_000 == 0 {
			rec := b.NewRecordBatch()
			if err := pw.WriteBuffered(rec); err != nil {
				t.Fatal(err)
			}
			rec.Release()
		}
	}
	b.Release()
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{csvPath, arrowsPath, pqPath} {
		st, _ := os.Stat(path)
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		stop := make(chan struct{})
		peak := make(chan uint64)
		go func() {
			var max uint64
			var m runtime.MemStats
			for {
				select {
				case <-stop:
					peak <- max
					return
				default:
				}
				runtime.ReadMemStats(&m)
				if m.HeapInuse > max {
					max = m.HeapInuse
				}
				runtime.Gosched()
			}
		}()
		n, err := readAll(path, Options{}, 1000)
		close(stop)
		p := <-peak
		if err != nil || n != int64(rows) {
			t.Fatalf("%s: %d rows, %v", path, n, err)
		}
		const bound = 48 << 20 // a million rows of values alone, held at once, are 32 MB
		grew := int64(p) - int64(base.HeapInuse)
		t.Logf("%s: %d MB file, heap grew by %d MB at most", filepath.Base(path), st.Size()>>20, grew>>20)
		if grew > bound {
			t.Errorf("%s: the heap grew by %d MB reading a %d MB file; bound %d MB", path, grew>>20, st.Size()>>20, bound>>20)
		}
	}
}
