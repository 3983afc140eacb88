package mkv

import "fmt"

func decodeTracks(body []byte, base int64) ([]TrackEntry, error) {
	var tracks []TrackEntry
	it := elemIter{b: body, base: base}
	for {
		c, ok, err := it.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return tracks, nil
		}
		if c.id != IDTrackEntry {
			continue
		}
		if len(tracks) == maxTracks {
			return nil, fmt.Errorf("mkv: Tracks at offset %d has more than %d entries: %w", base, maxTracks, ErrTooLarge)
		}
		t, err := decodeTrackEntry(c)
		if err != nil {
			return nil, err
		}
		tracks = append(tracks, t)
	}
}

func decodeTrackEntry(e child) (TrackEntry, error) {
	var t TrackEntry
	it := elemIter{b: e.body, base: e.bodyOff}
	for {
		c, ok, err := it.next()
		if err != nil || !ok {
			return t, err
		}
		switch c.id {
		case IDTrackNumber:
			t.Number, err = decodeUint(c)
		case IDTrackUID:
			t.UID, err = decodeUint(c)
		case IDTrackType:
			t.Type, err = decodeUint(c)
		case IDName:
			t.Name = decodeString(c)
		case IDCodecID:
			t.CodecID = decodeString(c)
		case IDCodecPrivate:
			// A copy, so that the track does not pin the Raw buffer and
			// cannot be changed through it.
			t.CodecPrivate = append([]byte(nil), c.body...)
		case IDDefaultDuration:
			t.DefaultDuration, err = decodeUint(c)
		case IDVideo:
			t.Video, err = decodeVideo(c)
		case IDAudio:
			t.Audio, err = decodeAudio(c)
		}
		if err != nil {
			return TrackEntry{}, err
		}
	}
}

func decodeVideo(e child) (*Video, error) {
	v := &Video{}
	it := elemIter{b: e.body, base: e.bodyOff}
	for {
		c, ok, err := it.next()
		if err != nil || !ok {
			return v, err
		}
		switch c.id {
		case IDPixelWidth:
			v.PixelWidth, err = decodeUint(c)
		case IDPixelHeight:
			v.PixelHeight, err = decodeUint(c)
		}
		if err != nil {
			return nil, err
		}
	}
}

func decodeAudio(e child) (*Audio, error) {
	a := &Audio{}
	it := elemIter{b: e.body, base: e.bodyOff}
	for {
		c, ok, err := it.next()
		if err != nil || !ok {
			return a, err
		}
		switch c.id {
		case IDSamplingFrequency:
			a.SamplingFrequency, err = decodeFloat(c)
		case IDChannels:
			a.Channels, err = decodeUint(c)
		case IDBitDepth:
			a.BitDepth, err = decodeUint(c)
		}
		if err != nil {
			return nil, err
		}
	}
}
