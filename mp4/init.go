package mp4

import (
	"errors"
	"fmt"
	"time"
)

// Track is one track of a movie.
type Track struct {
	ID        uint32 // track_ID: 1, 2 …, unique in the movie
	Timescale uint32 // ticks per second of the track's times (90000 for video, the sample rate for audio, say)
	Entry     SampleEntry
}

// Movie is what an initialization segment says: the tracks, and for a
// file, the length of the whole.
type Movie struct {
	Tracks []Track
	// Duration, when known, goes in mehd: the length of all the fragments
	// together, so that a player shows it before reading them. 0 leaves
	// mehd out (a live stream, or a session's segments).
	Duration time.Duration
}

// MovieTimescale is mvhd's timescale (mehd's unit): milliseconds.
const MovieTimescale = 1000

func (m *Movie) validate() error {
	if len(m.Tracks) == 0 {
		return errors.New("mp4: a movie needs a track")
	}
	seen := map[uint32]bool{}
	for i := range m.Tracks {
		t := &m.Tracks[i]
		switch {
		case t.ID == 0 || seen[t.ID]:
			return fmt.Errorf("mp4: track %d: ID %d is zero or not unique", i, t.ID)
		case t.Timescale == 0:
			return fmt.Errorf("mp4: track %d has no timescale", t.ID)
		case t.Entry == nil:
			return fmt.Errorf("mp4: track %d has no sample entry", t.ID)
		}
		if err := t.Entry.validate(); err != nil {
			return fmt.Errorf("mp4: track %d: %w", t.ID, err)
		}
		seen[t.ID] = true
	}
	return nil
}

// Codecs is the movie's RFC 6381 codecs list ("avc1.64001f,mp4a.40.2"), as
// HLS's CODECS attribute and MSE's type string take it.
func (m *Movie) Codecs() string {
	s := ""
	for i, t := range m.Tracks {
		if i > 0 {
			s += ","
		}
		s += t.Entry.Codec()
	}
	return s
}

// Brands of the ftyp: isom as the major brand; iso6 for what the
// fragments use (tfdt, trun version 1, default-base-is-moof), mp41 for
// players that look for it, and avc1 when there is H.264.
const (
	majorBrand   = "isom"
	minorVersion = 0x200
)

// AppendInit appends the initialization segment: ftyp and moov.
func AppendInit(dst []byte, m *Movie) ([]byte, error) {
	if err := m.validate(); err != nil {
		return dst, err
	}
	dst, at := startBox(dst, "ftyp")
	dst = append(dst, majorBrand...)
	dst = u32(dst, minorVersion)
	dst = append(dst, "isomiso6mp41"...)
	for _, t := range m.Tracks {
		if _, ok := t.Entry.(*AVC); ok {
			dst = append(dst, "avc1"...)
			break
		}
	}
	dst = endBox(dst, at)

	dst, moov := startBox(dst, "moov")
	dst = appendMvhd(dst, m)
	for i := range m.Tracks {
		dst = appendTrak(dst, &m.Tracks[i])
	}
	dst, mvex := startBox(dst, "mvex")
	var b int
	if m.Duration > 0 {
		dst, b = startFullBox(dst, "mehd", 1, 0)
		dst = u64(dst, uint64(m.Duration/time.Millisecond))
		dst = endBox(dst, b)
	}
	for _, t := range m.Tracks {
		dst, b = startFullBox(dst, "trex", 0, 0)
		dst = u32(dst, t.ID)
		dst = u32(dst, 1) // default_sample_description_index
		dst = u32(dst, 0) // default_sample_duration
		dst = u32(dst, 0) // default_sample_size
		dst = u32(dst, 0) // default_sample_flags
		dst = endBox(dst, b)
	}
	dst = endBox(dst, mvex)
	return endBox(dst, moov), nil
}

func appendMvhd(dst []byte, m *Movie) []byte {
	dst, at := startFullBox(dst, "mvhd", 0, 0)
	dst = u32(dst, 0)              // creation_time
	dst = u32(dst, 0)              // modification_time
	dst = u32(dst, MovieTimescale) // timescale
	dst = u32(dst, 0)              // duration: of the samples in moov, none
	dst = u32(dst, 0x00010000)     // rate 1.0
	dst = u16(dst, 0x0100)         // volume 1.0
	dst = zeros(dst, 10)           // reserved
	dst = appendMatrix(dst)
	dst = zeros(dst, 24) // pre_defined
	var next uint32
	for _, t := range m.Tracks {
		next = max(next, t.ID)
	}
	dst = u32(dst, next+1) // next_track_ID
	return endBox(dst, at)
}

func appendTrak(dst []byte, t *Track) []byte {
	dst, trak := startBox(dst, "trak")
	audio := t.Entry.handler() == "soun"

	dst, b := startFullBox(dst, "tkhd", 0, 3) // enabled, in movie
	dst = u32(dst, 0)                         // creation_time
	dst = u32(dst, 0)                         // modification_time
	dst = u32(dst, t.ID)
	dst = u32(dst, 0) // reserved
	dst = u32(dst, 0) // duration
	dst = zeros(dst, 8)
	dst = u16(dst, 0) // layer
	dst = u16(dst, 0) // alternate_group
	if audio {
		dst = u16(dst, 0x0100) // volume
	} else {
		dst = u16(dst, 0)
	}
	dst = u16(dst, 0) // reserved
	dst = appendMatrix(dst)
	if v, ok := t.Entry.(*AVC); ok {
		dst = u32(dst, uint32(v.Width)<<16)
		dst = u32(dst, uint32(v.Height)<<16)
	} else {
		dst = u64(dst, 0)
	}
	dst = endBox(dst, b)

	dst, mdia := startBox(dst, "mdia")
	dst, b = startFullBox(dst, "mdhd", 0, 0)
	dst = u32(dst, 0) // creation_time
	dst = u32(dst, 0) // modification_time
	dst = u32(dst, t.Timescale)
	dst = u32(dst, 0)      // duration
	dst = u16(dst, 0x55c4) // language "und", ISO-639-2/T packed in three 5-bit letters
	dst = u16(dst, 0)      // pre_defined
	dst = endBox(dst, b)

	dst, b = startFullBox(dst, "hdlr", 0, 0)
	dst = u32(dst, 0) // pre_defined
	dst = append(dst, t.Entry.handler()...)
	dst = zeros(dst, 12)
	if audio {
		dst = append(dst, "SoundHandler\x00"...)
	} else {
		dst = append(dst, "VideoHandler\x00"...)
	}
	dst = endBox(dst, b)

	dst, minf := startBox(dst, "minf")
	if audio {
		dst, b = startFullBox(dst, "smhd", 0, 0)
		dst = u32(dst, 0) // balance, reserved
	} else {
		dst, b = startFullBox(dst, "vmhd", 0, 1)
		dst = zeros(dst, 8) // graphicsmode, opcolor
	}
	dst = endBox(dst, b)
	dst, dinf := startBox(dst, "dinf")
	dst, dref := startFullBox(dst, "dref", 0, 0)
	dst = u32(dst, 1)                        // entry_count
	dst, b = startFullBox(dst, "url ", 0, 1) // media in this file
	dst = endBox(dst, b)
	dst = endBox(dst, dref)
	dst = endBox(dst, dinf)

	dst, stbl := startBox(dst, "stbl")
	dst, b = startFullBox(dst, "stsd", 0, 0)
	dst = u32(dst, 1) // entry_count
	dst = t.Entry.appendEntry(dst)
	dst = endBox(dst, b)
	for _, typ := range []string{"stts", "stsc", "stco"} {
		dst, b = startFullBox(dst, typ, 0, 0)
		dst = u32(dst, 0) // entry_count
		dst = endBox(dst, b)
	}
	dst, b = startFullBox(dst, "stsz", 0, 0)
	dst = u32(dst, 0) // sample_size
	dst = u32(dst, 0) // sample_count
	dst = endBox(dst, b)
	dst = endBox(dst, stbl)

	dst = endBox(dst, minf)
	dst = endBox(dst, mdia)
	return endBox(dst, trak)
}
