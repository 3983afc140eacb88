package codecbench

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/audio"
)

// soundInput is 60 s of the machine's audio at 16 kHz, int16 mono, in the
// PCM writer's 20 ms frames.
type soundInput struct {
	raw     []byte
	frames  [][]byte
	decoded [][]byte
}

func init() {
	Register(Case{
		Name: "audio PCM int16 16 kHz, passthrough (machine, 60 s)",
		Data: soundData, Encode: encodeSound, Decode: decodeSound, Verify: verifySound, Peers: soundPeers,
	})
}

func soundData() ([]byte, any, error) {
	m := audio.New(16000, 8)
	s := make([]int16, 16000*60)
	m.Fill(s)
	in := &soundInput{}
	for _, v := range s {
		in.raw = binary.LittleEndian.AppendUint16(in.raw, uint16(v))
	}
	return in.raw, in, nil
}

// encodeSound: PCM frames are the samples themselves, so that players play
// them; "encoding" is cutting them into 20 ms frames.
func encodeSound(input any) (int, error) {
	in := input.(*soundInput)
	in.frames = in.frames[:0]
	n := 0
	for at := 0; at < len(in.raw); at += 640 {
		f := in.raw[at:min(at+640, len(in.raw))]
		in.frames = append(in.frames, f)
		n += len(f)
	}
	return n, nil
}

func decodeSound(input any) error {
	in := input.(*soundInput)
	in.decoded = append(in.decoded[:0], in.frames...)
	return nil
}

func verifySound(input any) error {
	in := input.(*soundInput)
	at := 0
	for _, f := range in.decoded {
		if string(f) != string(in.raw[at:at+len(f)]) {
			return fmt.Errorf("frame at byte %d differs", at)
		}
		at += len(f)
	}
	return nil
}

// soundPeers: FLAC at level 8 through ffmpeg, when it is installed, and our
// numeric codec on the same samples stored as a scalar track instead (what a
// user who needs no player gets).
func soundPeers(input any) (map[string]int, error) {
	in := input.(*soundInput)
	out := map[string]int{}
	desc := &signals.Scalar{SampleRate: 16000, SampleType: signals.Int16, Channels: []signals.Channel{{Name: "mono"}}}
	n := 0
	for _, f := range in.frames {
		s := signals.Samples{N: len(f) / 2, Channels: 1, Type: signals.Int16, I16: make([]int16, len(f)/2)}
		for i := range s.I16 {
			s.I16[i] = int16(binary.LittleEndian.Uint16(f[2*i:]))
		}
		b, err := codecs.AppendScalarFrame(nil, desc, &s, codecs.Auto)
		if err != nil {
			return nil, err
		}
		n += len(b)
	}
	out["numeric as a scalar track"] = n
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return out, nil
	}
	dir, err := os.MkdirTemp("", "flac")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(dir)
	pcm, flac := filepath.Join(dir, "a.pcm"), filepath.Join(dir, "a.flac")
	if err := os.WriteFile(pcm, in.raw, 0o644); err != nil {
		return out, err
	}
	if b, err := exec.Command(ffmpeg, "-v", "error", "-f", "s16le", "-ar", "16000", "-ac", "1", "-i", pcm, "-c:a", "flac", "-compression_level", "8", flac).CombinedOutput(); err != nil {
		return out, fmt.Errorf("ffmpeg flac: %v: %s", err, b)
	}
	fi, err := os.Stat(flac)
	if err != nil {
		return out, err
	}
	out["flac -8"] = int(fi.Size())
	return out, nil
}
