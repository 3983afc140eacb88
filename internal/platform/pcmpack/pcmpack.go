// Package pcmpack keeps the PCM audio of stored fragments losslessly
// compressed and gives the very PCM back to readers.
//
// A producer that sends audio as Matroska PCM (ffmpeg's pcm_s16le, a
// camera's microphone, the SDK's audio tracks) gets it stored at about the
// size of FLAC -8 instead of raw: Pack, run by the ingester before the store
// writes a fragment, codes each block of every PCM track with the lossless
// audio codec at its fast effort (codecs.EncodeAudioFrameEffort, AudioFast:
// self-contained frames that decode to exactly the bytes given), and marks
// the fragment with a Void element
// before its Cluster, naming the packed tracks. Unpack, run by the store's
// reader for every consumer (GetMedia, HLS, clips, Arrow queries, the
// console), rebuilds the fragment with the original PCM blocks: the same
// frames, byte for byte, with the same times, flags and durations, behind
// the same EBML header, Info, Tracks and Tags bytes. Players, ffprobe's
// packet hashes and the query layer see what the producer sent. The stored
// form is FORMAT.md's "Packed PCM".
//
// A fragment is left as it is when packing would not make it smaller, when
// a PCM track's format is not one the codec takes, or when a block is laced
// (its frames could not be given back in the same blocks).
package pcmpack

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/signals"
)

// The marker is a Void element (ID 0xEC, which every Matroska reader skips)
// of a fixed length, right before the Cluster: magic, then the numbers of
// the packed tracks, one byte each, 0 for none (a fragment has at most 3
// tracks).
const (
	voidID      = 0xEC
	magic       = "SENSORIUM-PCMPACK-1"
	markerBody  = len(magic) + maxTracks
	markerBytes = 2 + markerBody // ID, one-byte size, body
	maxTracks   = 3
)

// Marked reports whether a stored fragment was packed.
func Marked(payload []byte, clusterOffset uint32) bool {
	co := int(clusterOffset)
	if co < markerBytes || co > len(payload) {
		return false
	}
	m := payload[co-markerBytes : co]
	return m[0] == voidID && m[1] == byte(0x80|markerBody) && string(m[2:2+len(magic)]) == magic
}

func appendMarker(dst []byte, tracks []uint64) []byte {
	dst = append(dst, voidID, byte(0x80|markerBody))
	dst = append(dst, magic...)
	for i := range maxTracks {
		n := byte(0)
		if i < len(tracks) {
			n = byte(tracks[i])
		}
		dst = append(dst, n)
	}
	return dst
}

// Codable reports whether Pack codes a track's frames: PCM audio of a
// sample format it knows. A fragment without such a track is stored as it
// came, so Pack need not be called on it.
func Codable(t *mkv.TrackEntry) bool {
	_, ok := formatOf(t)
	return ok
}

// formatOf is the codec's PCM format for a track whose PCM it can code.
func formatOf(t *mkv.TrackEntry) (codecs.PCMFormat, bool) {
	if t.Audio == nil || t.Audio.Channels < 1 || t.Audio.Channels > 255 || t.Number < 1 || t.Number > 255 {
		return codecs.PCMFormat{}, false
	}
	f := codecs.PCMFormat{Channels: int(t.Audio.Channels)}
	switch {
	case t.CodecID == signals.CodecIDPCMInt && t.Audio.BitDepth == 16:
		f.Type = codecs.PCMInt16
	case t.CodecID == signals.CodecIDPCMInt && t.Audio.BitDepth == 24:
		f.Type = codecs.PCMInt24
	case t.CodecID == signals.CodecIDPCMInt && t.Audio.BitDepth == 32:
		f.Type = codecs.PCMInt32
	case t.CodecID == signals.CodecIDPCMFloat && t.Audio.BitDepth == 32:
		f.Type = codecs.PCMFloat32
	case t.CodecID == signals.CodecIDPCMFloat && t.Audio.BitDepth == 64:
		f.Type = codecs.PCMFloat64
	default:
		return f, false
	}
	return f, true
}

// Pack returns the stored form of a canonical fragment (ingest.Fragment's
// payload, its Cluster at clusterOffset) with its PCM tracks coded, and the
// new Cluster offset; ok is false, and payload should be stored as it is,
// when there is nothing to gain.
func Pack(payload []byte, clusterOffset uint32) (packed []byte, offset uint32, ok bool, err error) {
	if int(clusterOffset) > len(payload) || Marked(payload, clusterOffset) {
		return nil, 0, false, nil
	}
	rd := mkv.NewReader(bytes.NewReader(payload), mkv.MaxElementSize(int64(len(payload))))
	formats := map[uint64]codecs.PCMFormat{}
	var tracks []uint64
	var timecode uint64
	var blocks, orig []mkv.Block
	raw, coded, clusters := 0, 0, 0
	lastOffset := int64(-1)
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, false, fmt.Errorf("pcmpack: pack: %w", err)
		}
		switch it.Kind {
		case mkv.ItemTracks:
			for i := range it.Tracks {
				if f, ok := formatOf(&it.Tracks[i]); ok && len(tracks) < maxTracks {
					formats[it.Tracks[i].Number] = f
					tracks = append(tracks, it.Tracks[i].Number)
				}
			}
			if len(tracks) == 0 {
				return nil, 0, false, nil
			}
		case mkv.ItemClusterStart:
			if it.Offset != int64(clusterOffset) || clusters > 0 || it.Segment > 0 {
				return nil, 0, false, nil // not the canonical form: one Cluster, where it is said to be
			}
			clusters++
			timecode = it.Timecode
		case mkv.ItemBlock:
			if it.Offset == lastOffset {
				return nil, 0, false, nil // laced: frames of one block
			}
			lastOffset = it.Offset
			b := *it.Block
			b.Data = bytes.Clone(b.Data)
			orig = append(orig, b)
			if f, pcm := formats[b.Track]; pcm {
				raw += len(b.Data)
				if b.Data, err = codecs.EncodeAudioFrameEffort(nil, b.Data, f, codecs.AudioFast); err != nil {
					return nil, 0, false, nil // not whole samples of its format: keep it as it came
				}
				coded += len(b.Data)
			}
			blocks = append(blocks, b)
		}
	}
	if coded >= raw {
		return nil, 0, false, nil
	}
	// Unpack writes the Cluster from the blocks' fields alone, so only a
	// Cluster that is exactly what those fields make (as the SDK and
	// PutMedia write them) is packed: one with what the reader does not keep
	// — BlockAdditions, DiscardPadding, ReferenceBlock values, CRC-32 or
	// Void elements — is stored as it came.
	if !bytes.Equal(mkv.AppendCluster(nil, timecode, orig), payload[clusterOffset:]) {
		return nil, 0, false, nil
	}
	out := make([]byte, 0, int(clusterOffset)+markerBytes+len(payload)-int(clusterOffset)-raw+coded+64)
	out = append(out, payload[:clusterOffset]...)
	out = appendMarker(out, tracks)
	offset = uint32(len(out))
	out = mkv.AppendCluster(out, timecode, blocks)
	return out, offset, true, nil
}

// Disarm returns a fragment that was not packed but whose bytes before its
// Cluster happen to end like the marker (a producer's tag value can): a
// 2-byte Void element goes before the Cluster, so that readers do not take
// it for packed. Other fragments are returned as they are. The ingester
// runs it on every fragment it stores.
func Disarm(payload []byte, clusterOffset uint32) ([]byte, uint32) {
	if !Marked(payload, clusterOffset) {
		return payload, clusterOffset
	}
	out := make([]byte, 0, len(payload)+2)
	out = append(out, payload[:clusterOffset]...)
	out = append(out, voidID, 0x80) // an empty Void
	return append(out, payload[clusterOffset:]...), clusterOffset + 2
}

// Unpack appends to dst the fragment a reader gets for a stored payload —
// the payload itself unless Pack made it — and returns it with the offset of
// the fragment's Cluster from the fragment's start.
func Unpack(dst, payload []byte, clusterOffset uint32) ([]byte, uint32, error) {
	if !Marked(payload, clusterOffset) {
		return append(dst, payload...), clusterOffset, nil
	}
	co := int(clusterOffset)
	marker := payload[co-markerBytes : co]
	packed := map[uint64]bool{}
	for _, n := range marker[2+len(magic):] {
		if n != 0 {
			packed[uint64(n)] = true
		}
	}
	rd := mkv.NewReader(bytes.NewReader(payload), mkv.MaxElementSize(int64(len(payload))))
	var timecode uint64
	var blocks []mkv.Block
	var pcm []byte
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return dst, 0, fmt.Errorf("pcmpack: unpack: %w", err)
		}
		switch it.Kind {
		case mkv.ItemClusterStart:
			timecode = it.Timecode
		case mkv.ItemBlock:
			b := *it.Block
			start := len(pcm)
			if packed[b.Track] {
				if pcm, _, err = codecs.DecodeAudioFrame(pcm, b.Data); err != nil {
					return dst, 0, fmt.Errorf("pcmpack: unpack track %d: %w", b.Track, err)
				}
			} else {
				pcm = append(pcm, b.Data...)
			}
			b.Data = pcm[start:len(pcm):len(pcm)]
			blocks = append(blocks, b)
		}
	}
	// (pcm grew while the blocks were collected: their Data were cut from
	// its final array only if it never moved, so cut them again.)
	at := 0
	for i := range blocks {
		n := len(blocks[i].Data)
		blocks[i].Data = pcm[at : at+n]
		at += n
	}
	start := len(dst)
	dst = append(dst, payload[:co-markerBytes]...)
	offset := uint32(len(dst) - start)
	return mkv.AppendCluster(dst, timecode, blocks), offset, nil
}
