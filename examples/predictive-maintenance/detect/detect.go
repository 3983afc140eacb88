// Package detect is the predictive-maintenance job of the example: it reads
// a pump's vibration as 1-second windows (the query's windows shape),
// computes condition indicators per window — RMS, kurtosis, energy in the
// 2–4 kHz band where bearing impacts ring — and flags a bearing fault when
// they leave the baseline learned from the first windows. It keeps a
// checkpoint (the end of the last window it judged) so that a restart goes
// on where it stopped, neither missing nor repeating a window.
package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/examples/pump/simulate"
	"github.com/sensorium-io/sensorium/sdk"
)

// Verdict is the judgement of one window.
type Verdict struct {
	Start    time.Time
	Features simulate.Features // of the x axis, the bearing's radial direction
	Fault    bool
	Why      string
}

// Detector judges windows against a baseline.
type Detector struct {
	Client     *sdk.Client
	Stream     string
	Rate       float64 // samples per second of the stream
	Window     int     // samples per window
	Checkpoint string  // file keeping the position across restarts; "" for none

	State State
}

// State is what the checkpoint file holds.
type State struct {
	Next         int64   `json:"next"` // ns: where the next window starts
	BaselineN    int     `json:"baseline_windows"`
	BaselineKurt float64 `json:"baseline_kurtosis"`
	BaselineBand float64 `json:"baseline_band_rms"`
}

// baselineWindows are the windows the detector learns "healthy" from.
const baselineWindows = 10

// Load reads the checkpoint, if any.
func (d *Detector) Load() error {
	if d.Checkpoint == "" {
		return nil
	}
	b, err := os.ReadFile(d.Checkpoint)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, &d.State)
}

func (d *Detector) save() error {
	if d.Checkpoint == "" {
		return nil
	}
	b, _ := json.Marshal(d.State)
	tmp := d.Checkpoint + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, d.Checkpoint)
}

// Run judges every whole window from the checkpoint (or from) to until,
// calling each for every verdict, and moves the checkpoint past them.
func (d *Detector) Run(ctx context.Context, from, until time.Time, each func(Verdict)) error {
	if d.State.Next == 0 {
		d.State.Next = from.UnixNano()
	}
	if until.UnixNano() <= d.State.Next {
		return nil
	}
	res, err := d.Client.Query(ctx, sdk.QueryInput{Stream: d.Stream, Fields: []string{"x"}, Shape: "windows",
		Window: &sdk.QueryWindow{Length: d.Window}, Start: time.Unix(0, d.State.Next), End: until}, nil)
	if err != nil {
		return fmt.Errorf("detect: query: %w", err)
	}
	defer res.Close()
	x := make([]float32, d.Window)
	for res.Next() {
		rec := res.RecordBatch()
		starts := rec.Column(0).(*array.Timestamp)
		tensors := rec.Column(2).(*array.FixedSizeList)
		vals := tensors.ListValues().(*array.Float32)
		for row := 0; row < int(rec.NumRows()); row++ {
			off := (tensors.Offset() + row) * d.Window
			for i := range x {
				x[i] = vals.Value(off + i)
			}
			v := d.judge(time.Unix(0, int64(starts.Value(row))).UTC(), simulate.Analyze(x, d.Rate))
			each(v)
			d.State.Next = int64(starts.Value(row)) + int64(float64(d.Window)*1e9/d.Rate)
		}
	}
	if err := res.Err(); err != nil {
		return err
	}
	return d.save()
}

// judge learns the baseline from the first windows, then flags a window
// whose kurtosis or band energy leaves it.
func (d *Detector) judge(start time.Time, f simulate.Features) Verdict {
	v := Verdict{Start: start, Features: f}
	s := &d.State
	if s.BaselineN < baselineWindows {
		s.BaselineKurt = (s.BaselineKurt*float64(s.BaselineN) + f.Kurtosis) / float64(s.BaselineN+1)
		s.BaselineBand = (s.BaselineBand*float64(s.BaselineN) + f.BandRMS) / float64(s.BaselineN+1)
		s.BaselineN++
		v.Why = "learning the baseline"
		return v
	}
	switch {
	case f.BandRMS > 5*s.BaselineBand:
		v.Fault, v.Why = true, fmt.Sprintf("2–4 kHz band RMS %.4f g is %.0f× the baseline: bearing impacts", f.BandRMS, f.BandRMS/s.BaselineBand)
	case f.Kurtosis > 2*s.BaselineKurt && f.Kurtosis > 4:
		v.Fault, v.Why = true, fmt.Sprintf("kurtosis %.1f against a baseline of %.1f: impulsive vibration", f.Kurtosis, s.BaselineKurt)
	default:
		v.Why = "healthy"
	}
	return v
}
