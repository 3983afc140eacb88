package mp4

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// Sample is one sample of a run: a video access unit, an AAC frame, a run
// of PCM frames.
type Sample struct {
	Duration uint32 // in the track's timescale: the next sample's decode time minus this one's
	Size     uint32 // bytes in the run's Data
	// Sync marks a sample that decodes without the ones before it (an IDR
	// access unit; every audio sample).
	Sync bool
	// CompositionOffset is the presentation time minus the decode time, in
	// the track's timescale; negative ones make the trun version 1.
	CompositionOffset int32
}

// Run is one track's samples in a fragment.
type Run struct {
	Track      uint32 // the Track's ID
	DecodeTime uint64 // tfdt: the first sample's decode time, in the track's timescale
	Samples    []Sample
	Data       []byte // the samples' bytes back to back; len(Data) is the sum of their Sizes
}

// Fragment is a movie fragment: a moof with a traf per run, and an mdat
// with the runs' data in the same order.
type Fragment struct {
	Sequence uint32 // mfhd sequence_number; increasing within a file
	Runs     []Run
}

// Sample flags (ISO/IEC 14496-12 8.8.3.1): a sync sample depends on no
// other; any other depends on others and is not a sync sample.
const (
	flagsSync    = 0x02000000 // sample_depends_on 2
	flagsNonSync = 0x01010000 // sample_depends_on 1, sample_is_non_sync_sample
)

// tfhd and trun flags.
const (
	tfhdDefaultDuration = 0x000008
	tfhdDefaultSize     = 0x000010
	tfhdDefaultFlags    = 0x000020
	tfhdDefaultBaseMoof = 0x020000

	trunDataOffset = 0x000001
	trunFirstFlags = 0x000004
	trunDuration   = 0x000100
	trunSize       = 0x000200
	trunFlags      = 0x000400
	trunCTS        = 0x000800
)

func sampleFlags(s *Sample) uint32 {
	if s.Sync {
		return flagsSync
	}
	return flagsNonSync
}

func (f *Fragment) validate() error {
	if len(f.Runs) == 0 {
		return errors.New("mp4: a fragment needs a run")
	}
	for i := range f.Runs {
		r := &f.Runs[i]
		if len(r.Samples) == 0 {
			return fmt.Errorf("mp4: run %d (track %d) has no samples", i, r.Track)
		}
		var n uint64
		for _, s := range r.Samples {
			n += uint64(s.Size)
		}
		if n != uint64(len(r.Data)) {
			return fmt.Errorf("mp4: run %d (track %d): samples of %d bytes, data of %d", i, r.Track, n, len(r.Data))
		}
	}
	return nil
}

// DataSize is the bytes of the runs' data.
func (f *Fragment) DataSize() int64 {
	var n int64
	for i := range f.Runs {
		n += int64(len(f.Runs[i].Data))
	}
	return n
}

// AppendHeader appends the moof and the mdat's header: what goes before
// the runs' Data, which follows in the order of Runs.
func (f *Fragment) AppendHeader(dst []byte) ([]byte, error) {
	if err := f.validate(); err != nil {
		return dst, err
	}
	start := len(dst)
	dst, moof := startBox(dst, "moof")
	dst, b := startFullBox(dst, "mfhd", 0, 0)
	dst = u32(dst, f.Sequence)
	dst = endBox(dst, b)
	offsets := make([]int, len(f.Runs)) // where each trun's data_offset is, to patch
	for i := range f.Runs {
		dst, offsets[i] = appendTraf(dst, &f.Runs[i])
	}
	dst = endBox(dst, moof)
	data := f.DataSize()
	if 8+data > math.MaxUint32 {
		return dst[:start], fmt.Errorf("mp4: fragment of %d bytes of samples is too large for one mdat", data)
	}
	// data_offset is from the moof's first byte (default-base-is-moof).
	next := int64(len(dst)-moof) + 8
	for i, at := range offsets {
		be.PutUint32(dst[at:], uint32(next))
		next += int64(len(f.Runs[i].Data))
	}
	dst = u32(dst, uint32(8+data))
	return append(dst, "mdat"...), nil
}

// appendTraf writes a run's traf and returns where its trun's data_offset
// is. What every sample shares goes in tfhd as a default; when only the
// first sample's flags differ (a video run that starts with its one key
// frame), they go in trun's first_sample_flags.
func appendTraf(dst []byte, r *Run) ([]byte, int) {
	s0 := &r.Samples[0]
	sameDur, sameSize, sameFlags, restSame := true, true, true, true
	negative, anyCTS := false, false
	for i := range r.Samples {
		s := &r.Samples[i]
		sameDur = sameDur && s.Duration == s0.Duration
		sameSize = sameSize && s.Size == s0.Size
		sameFlags = sameFlags && s.Sync == s0.Sync
		if i > 1 {
			restSame = restSame && s.Sync == r.Samples[1].Sync
		}
		anyCTS = anyCTS || s.CompositionOffset != 0
		negative = negative || s.CompositionOffset < 0
	}
	firstFlags := !sameFlags && restSame && len(r.Samples) > 1

	tfhd := uint32(tfhdDefaultBaseMoof)
	if sameDur {
		tfhd |= tfhdDefaultDuration
	}
	if sameSize {
		tfhd |= tfhdDefaultSize
	}
	if sameFlags || firstFlags {
		tfhd |= tfhdDefaultFlags
	}
	dst, traf := startBox(dst, "traf")
	dst, b := startFullBox(dst, "tfhd", 0, tfhd)
	dst = u32(dst, r.Track)
	if sameDur {
		dst = u32(dst, s0.Duration)
	}
	if sameSize {
		dst = u32(dst, s0.Size)
	}
	switch {
	case sameFlags:
		dst = u32(dst, sampleFlags(s0))
	case firstFlags:
		dst = u32(dst, sampleFlags(&r.Samples[1]))
	}
	dst = endBox(dst, b)

	dst, b = startFullBox(dst, "tfdt", 1, 0)
	dst = u64(dst, r.DecodeTime)
	dst = endBox(dst, b)

	trun := uint32(trunDataOffset)
	if !sameDur {
		trun |= trunDuration
	}
	if !sameSize {
		trun |= trunSize
	}
	switch {
	case firstFlags:
		trun |= trunFirstFlags
	case !sameFlags:
		trun |= trunFlags
	}
	if anyCTS {
		trun |= trunCTS
	}
	var version byte
	if negative {
		version = 1
	}
	dst, b = startFullBox(dst, "trun", version, trun)
	dst = u32(dst, uint32(len(r.Samples)))
	offsetAt := len(dst)
	dst = u32(dst, 0) // data_offset, patched by AppendHeader
	if firstFlags {
		dst = u32(dst, sampleFlags(s0))
	}
	for i := range r.Samples {
		s := &r.Samples[i]
		if trun&trunDuration != 0 {
			dst = u32(dst, s.Duration)
		}
		if trun&trunSize != 0 {
			dst = u32(dst, s.Size)
		}
		if trun&trunFlags != 0 {
			dst = u32(dst, sampleFlags(s))
		}
		if anyCTS {
			dst = u32(dst, uint32(s.CompositionOffset)) // two's complement in version 1
		}
	}
	dst = endBox(dst, b)
	return endBox(dst, traf), offsetAt
}

// WriteTo writes the fragment: its header, then each run's data, without
// copying the data.
func (f *Fragment) WriteTo(w io.Writer) (int64, error) {
	h, err := f.AppendHeader(nil)
	if err != nil {
		return 0, err
	}
	return writeFragment(w, h, f)
}

func writeFragment(w io.Writer, header []byte, f *Fragment) (int64, error) {
	n, err := w.Write(header)
	total := int64(n)
	for i := 0; err == nil && i < len(f.Runs); i++ {
		n, err = w.Write(f.Runs[i].Data)
		total += int64(n)
	}
	return total, err
}
