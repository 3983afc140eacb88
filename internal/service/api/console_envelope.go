package api

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"sort"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/service/usage"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/store"
)

// GET /v1/envelope?stream=S&track=N&from&to&columns=C draws a sampled
// signal's overview fast whatever the range: for each of C columns of
// [from, to) it decodes ONE frame — the one nearest the column's middle —
// and answers that frame's min and max per channel. It reads C frames, not
// the range's every sample, so a day of 25.6 kHz vibration costs what 1,300
// frames cost. It is a sample of the range, not its extremes (a transient
// between the frames read is not in it): the console labels it so and
// offers the exact min/max (the aggregate shape) on demand. The key needs
// Query on the stream.

func init() {
	mount(func(a *api, mux *http.ServeMux) {
		mux.HandleFunc("GET /v1/envelope", a.authorized(awsauth.ActionQuery, queryParamStream, a.routedByParam(a.envelope)))
	})
}

const (
	maxEnvelopeColumns = 4096
	envelopeWorkers    = 4
)

// envelopeColumn is one column's frame: its time span and each channel's
// min and max (nil where the column holds no stored fragment).
type envelopeColumn struct {
	Start float64   `json:"start"` // ms: the frame's first sample
	End   float64   `json:"end"`
	Min   []float64 `json:"min"`
	Max   []float64 `json:"max"`
	frag  *store.FragmentInfo
	at    int64 // ns: the column's middle
}

func (a *api) envelope(w http.ResponseWriter, r *http.Request) {
	name, err := streamParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	columns, err := intParam(r, "columns", 1000, 1, maxEnvelopeColumns)
	if err != nil {
		writeError(w, err)
		return
	}
	trackNo, err := intParam(r, "track", 1, 1, math.MaxInt32)
	if err != nil {
		writeError(w, err)
		return
	}
	from, err := timeParam(r, "from", 0)
	if err != nil {
		writeError(w, err)
		return
	}
	to, err := timeParam(r, "to", 0)
	if err != nil {
		writeError(w, err)
		return
	}
	if to <= from {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "to must be after from"))
		return
	}
	if _, err := a.st.DescribeStream(store.StreamRef{Name: name}); err != nil {
		writeError(w, err)
		return
	}
	var frags []store.FragmentInfo
	for next := uint64(0); ; {
		page, err := a.st.Range(name, store.ProducerTime, from, to, next, 10000)
		if err != nil {
			writeError(w, err)
			return
		}
		frags = append(frags, page...)
		if len(page) < 10000 {
			break
		}
		next = page[len(page)-1].Number + 1
	}
	sort.Slice(frags, func(i, j int) bool { return frags[i].ProducerTime < frags[j].ProducerTime })
	// Each column reads the fragment that holds its middle, if one does.
	cols := make([]envelopeColumn, columns)
	span := float64(to - from)
	for c := range cols {
		at := from + int64((float64(c)+0.5)*span/float64(columns))
		cols[c].at = at
		i := sort.Search(len(frags), func(i int) bool { return frags[i].ProducerTime > at }) - 1
		if i >= 0 && at < frags[i].ProducerEnd() {
			cols[c].frag = &frags[i]
		}
	}
	a.meterAs(r, name, usage.Console)
	var desc signals.Description
	var channels []string
	var rate float64
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range envelopeWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rd *store.Reader
			var dec *liveDecoder
			defer func() {
				if rd != nil {
					rd.Close()
				}
			}()
			for c := range work {
				col := &cols[c]
				if rd == nil {
					r, err := a.st.NewReader(name)
					if err != nil {
						mu.Lock()
						firstErr = errors.Join(firstErr, err)
						mu.Unlock()
						continue
					}
					rd = r
				}
				if err := a.envelopeColumn(rd, &dec, uint64(trackNo), col); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				if dec != nil {
					mu.Lock()
					if desc == nil {
						desc, rate = dec.desc, dec.rate
						sch := dec.dec.Schema()
						for i := 1; i < sch.NumFields(); i++ {
							channels = append(channels, sch.Field(i).Name)
						}
					}
					mu.Unlock()
				}
			}
		}()
	}
	for c := range cols {
		if cols[c].frag != nil {
			work <- c
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		writeError(w, firstErr)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, struct {
		From       float64          `json:"from"`
		To         float64          `json:"to"`
		SampleRate float64          `json:"sampleRate"`
		Channels   []string         `json:"channels"`
		Columns    []envelopeColumn `json:"columns"`
	}{msOf(from), msOf(to), rate, channels, cols})
}

// envelopeColumn reads col's fragment, finds its frame of the track nearest
// the column's middle, decodes it and keeps each channel's min and max.
func (a *api) envelopeColumn(rd *store.Reader, dec **liveDecoder, track uint64, col *envelopeColumn) error {
	sf, err := rd.Read(*col.frag)
	if err != nil {
		return err
	}
	mr := mkv.NewReader(bytes.NewReader(sf.Payload))
	var best []byte
	var bestTime int64
	var bestKey bool
	bestDist := int64(math.MaxInt64)
	for {
		it, err := mr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		switch it.Kind {
		case mkv.ItemTracks:
			if *dec == nil {
				for _, t := range it.Tracks {
					if t.Number != track {
						continue
					}
					d, err := newEnvelopeDecoder(t)
					if err != nil {
						return err
					}
					*dec = d
				}
				if *dec == nil {
					return httpwire.Errorf(httpwire.InvalidArgument, "the stream has no track %d", track)
				}
			}
		case mkv.ItemBlock:
			if it.Block.Track != track {
				continue
			}
			// frames start at their time: the nearest start at or before the middle
			if d := col.at - it.Time; d >= 0 && d < bestDist || best == nil {
				best, bestTime, bestKey, bestDist = append(best[:0], it.Block.Data...), it.Time, it.Block.Keyframe, max(d, 0)
			}
		}
	}
	if best == nil || *dec == nil {
		return nil
	}
	d := *dec
	_, err = d.dec.Append(d.rb, codecs.Frame{Data: best, Time: bestTime, Key: bestKey, Fragment: d.fc}, codecs.TimeRange{All: true})
	rec := d.rb.NewRecordBatch()
	defer rec.Release()
	if err != nil {
		return err
	}
	if rec.NumRows() == 0 {
		return nil
	}
	times := rec.Column(0).(*array.Timestamp)
	col.Start, col.End = msOf(int64(times.Value(0))), msOf(int64(times.Value(times.Len()-1)))
	for i := 1; i < int(rec.NumCols()); i++ {
		vals := floats(rec.Column(i))
		mn, mx := math.Inf(1), math.Inf(-1)
		for _, v := range vals {
			mn, mx = min(mn, float64(v)), max(mx, float64(v))
		}
		col.Min, col.Max = append(col.Min, mn), append(col.Max, mx)
	}
	return nil
}

// newEnvelopeDecoder decodes a sampled track's frames into rows; other
// kinds are refused (an envelope is of samples).
func newEnvelopeDecoder(t mkv.TrackEntry) (*liveDecoder, error) {
	desc, err := signals.ParseDescription(t.CodecID, t.CodecPrivate)
	if err != nil {
		return nil, err
	}
	d := &liveDecoder{desc: desc, fc: &codecs.FragmentContext{Tags: map[string]string{}}}
	switch s := desc.(type) {
	case *signals.Scalar:
		d.rate = s.SampleRate
	case *signals.IMU:
		d.rate = s.SampleRate
	case *signals.Audio:
		d.rate = s.SampleRate
	default:
		return nil, httpwire.Errorf(httpwire.InvalidArgument, "track %d is %s: an envelope is of a sampled signal (scalar, IMU, audio)", t.Number, desc.Kind())
	}
	if d.dec, err = codecs.NewArrowDecoder(desc, codecs.ArrowOptions{}); err != nil {
		return nil, err
	}
	d.rb = array.NewRecordBuilder(memory.DefaultAllocator, d.dec.Schema())
	return d, nil
}
