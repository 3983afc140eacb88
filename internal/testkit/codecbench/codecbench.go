// Package codecbench measures every codec on realistic data against plain
// zstd of the same raw bytes (and, where one exists, the field's own peer:
// Draco for point clouds, FLAC for audio), in one run, and prints the table
// `make bench` shows. Each kind registers its cases from its own file.
package codecbench

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Case is one dataset and one way of encoding it.
type Case struct {
	Name string // e.g. "vibration float32 (pump, 3 × 25.6 kHz)"
	// Data makes the dataset: the raw bytes (what zstd compresses: the samples
	// as the sensor would write them, little endian) and whatever the codec
	// needs to encode it, as an opaque value.
	Data func() (raw []byte, input any, err error)
	// Encode returns the encoded size in bytes (all frames of the dataset).
	Encode func(input any) (encoded int, err error)
	// Decode decodes everything Encode made (it is timed).
	Decode func(input any) error
	// Verify checks that what Decode made equals the input (losslessly, or
	// within the kind's declared resolution); it is not timed.
	Verify func(input any) error
	// Peers are other tools measured on the same data: name → encoded size.
	Peers func(input any) (map[string]int, error)
	// Goal, when > 0, is the highest acceptable size ratio to zstd.
	Goal float64
	// DecodeGoalMBps, when > 0, is the lowest acceptable decode speed in MB/s
	// of raw data, on one core.
	DecodeGoalMBps float64
	// PeerGoal, when set, is the peer our size is held to instead of zstd:
	// ours ≤ PeerGoalRatio × that peer's size.
	PeerGoal      string
	PeerGoalRatio float64
	// Note, when set, adds to the row what only the case knows (decode
	// speed as a multiple of real time, for audio).
	Note func(input any, r *Result) string
}

var (
	mu    sync.Mutex
	cases []Case
)

// Register adds a case; kinds call it from init functions.
func Register(c Case) {
	mu.Lock()
	cases = append(cases, c)
	mu.Unlock()
}

// Result is what Run measured for one case.
type Result struct {
	Case          Case
	Raw, Zstd     int
	Encoded       int
	EncodeMBps    float64
	DecodeMBps    float64
	Peers         map[string]int
	Err           error
	GoalMet       bool
	DecodeGoalMet bool
	note          string
}

// Ratio is the encoded size as a fraction of zstd's.
func (r *Result) Ratio() float64 { return float64(r.Encoded) / float64(r.Zstd) }

// Run measures every registered case, or those whose name contains
// $CODECBENCH_MATCH when it is set.
func Run() []Result {
	mu.Lock()
	cs := append([]Case(nil), cases...)
	mu.Unlock()
	if m := os.Getenv("CODECBENCH_MATCH"); m != "" {
		cs = slices.DeleteFunc(cs, func(c Case) bool { return !strings.Contains(c.Name, m) })
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	out := make([]Result, 0, len(cs))
	for _, c := range cs {
		out = append(out, run(c))
	}
	return out
}

func run(c Case) Result {
	r := Result{Case: c}
	raw, input, err := c.Data()
	if err != nil {
		r.Err = err
		return r
	}
	r.Raw = len(raw)
	enc, _ := zstd.NewWriter(nil) // default level, as PEERS.md says
	r.Zstd = len(enc.EncodeAll(raw, nil))
	enc.Close()
	mbps := func(d time.Duration) float64 { return float64(len(raw)) / d.Seconds() / 1e6 }
	t := time.Now()
	r.Encoded, r.Err = c.Encode(input)
	r.EncodeMBps = mbps(time.Since(t))
	if r.Err != nil {
		return r
	}
	best := time.Duration(1 << 62)
	for i := 0; i < 3; i++ { // the best of three: machines here are noisy
		t = time.Now()
		if r.Err = c.Decode(input); r.Err != nil {
			return r
		}
		best = min(best, time.Since(t))
	}
	r.DecodeMBps = mbps(best)
	if c.Verify != nil {
		if r.Err = c.Verify(input); r.Err != nil {
			return r
		}
	}
	if c.Peers != nil {
		r.Peers, r.Err = c.Peers(input)
	}
	r.GoalMet = c.Goal <= 0 || r.Ratio() <= c.Goal
	if p, ok := r.Peers[c.PeerGoal]; ok && c.PeerGoal != "" {
		r.GoalMet = r.GoalMet && float64(r.Encoded) <= c.PeerGoalRatio*float64(p)
	}
	r.DecodeGoalMet = c.DecodeGoalMBps <= 0 || r.DecodeMBps >= c.DecodeGoalMBps
	if c.Note != nil {
		r.note = c.Note(input, &r)
	}
	return r
}

// Print writes the table.
func Print(w io.Writer, rs []Result) {
	fmt.Fprintf(w, "%-58s %9s %9s %8s %8s %10s %10s  %s\n", "codec table (raw = samples as written)", "raw MB", "zstd MB", "ours MB", "× zstd", "enc MB/s", "dec MB/s", "peers / goals")
	for _, r := range rs {
		if r.Err != nil {
			fmt.Fprintf(w, "%-58s error: %v\n", r.Case.Name, r.Err)
			continue
		}
		note := ""
		names := make([]string, 0, len(r.Peers))
		for n := range r.Peers {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			note += fmt.Sprintf("%s %.2f× zstd; ", n, float64(r.Peers[n])/float64(r.Zstd))
		}
		if p, ok := r.Peers[r.Case.PeerGoal]; ok && r.Case.PeerGoal != "" {
			note += fmt.Sprintf("ours %.3f× %s, goal ≤ %.2f: %s; ", float64(r.Encoded)/float64(p), r.Case.PeerGoal, r.Case.PeerGoalRatio, met(r.GoalMet))
		} else if r.Case.Goal > 0 {
			note += fmt.Sprintf("goal ≤ %.2f: %s; ", r.Case.Goal, met(r.GoalMet))
		}
		note += r.note
		if r.Case.DecodeGoalMBps > 0 {
			note += fmt.Sprintf("decode goal ≥ %.0f MB/s: %s", r.Case.DecodeGoalMBps, met(r.DecodeGoalMet))
		}
		fmt.Fprintf(w, "%-58s %9.2f %9.2f %8.2f %8.3f %10.0f %10.0f  %s\n", r.Case.Name,
			float64(r.Raw)/1e6, float64(r.Zstd)/1e6, float64(r.Encoded)/1e6, r.Ratio(), r.EncodeMBps, r.DecodeMBps, note)
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
