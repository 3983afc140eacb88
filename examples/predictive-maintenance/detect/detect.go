// Package detect is the predictive-maintenance job of the example: it reads
// a pump's vibration as 1-second windows (the query's windows shape),
// computes condition indicators per window — RMS, kurtosis, energy in the
// 2–4 kHz band where bearing impacts ring — and flags a bearing fault when
// they leave the baseline learned from the first windows.
//
// It reads the stored windows and then follows the stream live (Follow: one
// query that hands on each new window as its fragment becomes durable). It
// keeps a checkpoint — the grid time of the next window it has not judged,
// and the baseline — written after every batch of windows, so that a job
// stopped and started again goes on where it stopped, missing no window: at
// least once, since a crash between a batch's verdicts and its checkpoint
// judges that batch again (a stop through ctx judges none twice).
package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/pump"
)

// Verdict is the judgement of one window.
type Verdict struct {
	Start    time.Time
	Features pump.Features // of the x axis, the bearing's radial direction
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
	// Anchor is the time of the first window the job judged: the windows sit
	// on the grid Anchor + k × Window samples (query.Window), and a resumed
	// query starts on that grid so that its windows are the same ones.
	Anchor int64 `json:"anchor"`
	// Next is the grid time of the next window to judge (ns).
	Next         int64   `json:"next"`
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
	if err := json.Unmarshal(b, &d.State); err != nil {
		return fmt.Errorf("detect: checkpoint %s: %w", d.Checkpoint, err)
	}
	if d.State.Anchor == 0 { // a checkpoint from before anchors
		d.State.Anchor = d.State.Next
	}
	return nil
}

// save writes the checkpoint: a temp file, synced, renamed over the old one,
// so a crash leaves the old checkpoint or the new, never half of one.
func (d *Detector) save() error {
	if d.Checkpoint == "" {
		return nil
	}
	b, _ := json.Marshal(d.State)
	tmp := d.Checkpoint + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, d.Checkpoint)
}

// Run judges every whole window from the checkpoint (or from) to until,
// calling each for every verdict, and moves the checkpoint past them.
func (d *Detector) Run(ctx context.Context, from, until time.Time, each func(Verdict)) error {
	d.begin(from)
	if until.UnixNano() <= d.State.Next {
		return nil
	}
	return d.read(ctx, sdk.QueryInput{End: until}, each)
}

// Follow judges the stored windows from the checkpoint (or from), then each
// new one as it is stored, until ctx ends (it then returns ctx's error) or
// the query fails (a restart of the server: call Follow again, it goes on
// from the checkpoint).
func (d *Detector) Follow(ctx context.Context, from time.Time, each func(Verdict)) error {
	d.begin(from)
	err := d.read(ctx, sdk.QueryInput{Follow: true}, each)
	if err == nil { // a live query ends only with an error or ctx
		err = errors.New("detect: the live query ended")
	}
	return err
}

func (d *Detector) begin(from time.Time) {
	if d.State.Next == 0 {
		d.State.Next = from.UnixNano()
		d.State.Anchor = d.State.Next
	}
}

// read runs a windows query from the checkpoint and judges its windows,
// saving the checkpoint after each batch.
func (d *Detector) read(ctx context.Context, in sdk.QueryInput, each func(Verdict)) error {
	in.Stream, in.Fields, in.Shape, in.Window = d.Stream, []string{"x"}, "windows", &sdk.QueryWindow{Length: d.Window}
	// The query's start is its grid's anchor, and Next is a time on the
	// checkpoint's grid: the windows are the grid's (query.Window).
	in.Start = time.Unix(0, d.State.Next)
	res, err := d.Client.Query(ctx, in, nil)
	if err != nil {
		return fmt.Errorf("detect: query: %w", err)
	}
	defer res.Close()
	grid := &signals.Scalar{SampleRate: d.Rate}
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
			start := int64(starts.Value(row))
			each(d.judge(time.Unix(0, start).UTC(), pump.Analyze(x, d.Rate)))
			// The window's place on the grid: its first sample is within a
			// sample period of its grid time.
			k := int(math.Round(float64(start-d.State.Anchor) * d.Rate / 1e9 / float64(d.Window)))
			d.State.Next = grid.SampleTime(d.State.Anchor, (k+1)*d.Window)
		}
		if err := d.save(); err != nil {
			return err
		}
	}
	if err := res.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return d.save()
}

// judge learns the baseline from the first windows, then flags a window
// whose kurtosis or band energy leaves it.
func (d *Detector) judge(start time.Time, f pump.Features) Verdict {
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
