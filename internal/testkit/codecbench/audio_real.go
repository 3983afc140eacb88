package codecbench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sensorium-io/sensorium/codecs"
)

// Real recordings, stored with the lossless audio codec against FLAC -8 of
// the same PCM. The files come from Debian packages
// (scripts/install-audio-corpus.sh installs them; `make bench` runs it):
// speech recorded for alsa-utils' speaker test, sound effects and jingles of
// the freedesktop, GNOME and Deepin sound themes (camera shutter, card
// shuffle, bell: real mechanical sounds among them), and music from
// Drascula's soundtrack. Lossy sources (.ogg, .oga) are decoded to PCM by
// ffmpeg first, and FLAC gets that same PCM. A file that is missing is left
// out of the table.
var audioCorpus = []struct {
	kind, path string
}{
	{"speech", "/usr/share/sounds/alsa/Front_Center.wav"},
	{"speech", "/usr/share/sounds/alsa/Front_Left.wav"},
	{"speech", "/usr/share/sounds/alsa/Rear_Right.wav"},
	{"speech", "/usr/share/sounds/alsa/Side_Left.wav"},
	{"speech", "/usr/share/sounds/freedesktop/stereo/audio-channel-front-left.oga"},
	{"mechanical", "/usr/share/sounds/card_shuffle.wav"},
	{"mechanical", "/usr/share/sounds/freedesktop/stereo/camera-shutter.oga"},
	{"mechanical", "/usr/share/sounds/deepin/stereo/camera-shutter.wav"},
	{"mechanical", "/usr/share/sounds/freedesktop/stereo/trash-empty.oga"},
	{"effect", "/usr/share/sounds/freedesktop/stereo/bell.oga"},
	{"effect", "/usr/share/sounds/freedesktop/stereo/complete.oga"},
	{"effect", "/usr/share/sounds/freedesktop/stereo/phone-incoming-call.oga"},
	{"effect", "/usr/share/sounds/deepin/stereo/desktop-login.wav"},
	{"music", "/usr/share/sounds/startup3.wav"},
	{"music", "/usr/share/scummvm/drascula/audio/track1.ogg"},
	{"music", "/usr/share/scummvm/drascula/audio/track5.ogg"},
	{"music", "/usr/share/scummvm/drascula/audio/track12.ogg"},
}

// audioMaxSeconds cuts long music to what a fragment-sized bench can time.
const audioMaxSeconds = 30

// audioInput is one recording as s16le PCM and its frames.
type audioInput struct {
	pcm      []byte
	rate, ch int
	frames   [][]byte
	decoded  []byte
}

func init() {
	for _, f := range audioCorpus {
		if _, err := os.Stat(f.path); err != nil {
			continue
		}
		Register(Case{
			Name:          fmt.Sprintf("audio %s %s, 20 ms frames", f.kind, filepath.Base(f.path)),
			Data:          func() ([]byte, any, error) { return audioFile(f.path) },
			Encode:        func(in any) (int, error) { return encodeAudio(in.(*audioInput), 20) },
			Decode:        decodeAudio,
			Verify:        verifyAudio,
			Peers:         audioPeers,
			PeerGoal:      "flac -8",
			PeerGoalRatio: 1.0,
			Note:          audioRealTime,
		})
	}
}

func audioFile(path string) ([]byte, any, error) {
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=sample_rate,channels", "-of", "csv=p=0", path).Output()
	if err != nil {
		return nil, nil, fmt.Errorf("ffprobe %s: %v", path, err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), ",")
	if len(f) < 2 {
		return nil, nil, fmt.Errorf("ffprobe %s: %q", path, out)
	}
	in := &audioInput{}
	in.rate, _ = strconv.Atoi(f[0])
	in.ch, _ = strconv.Atoi(f[1])
	if in.pcm, err = exec.Command("ffmpeg", "-v", "error", "-i", path, "-t", strconv.Itoa(audioMaxSeconds), "-f", "s16le", "-acodec", "pcm_s16le", "-").Output(); err != nil {
		return nil, nil, fmt.Errorf("ffmpeg %s: %v", path, err)
	}
	return in.pcm, in, nil
}

// encodeAudio cuts the PCM into frames of ms milliseconds, as the SDK's PCM
// writer does, and encodes each.
func encodeAudio(in *audioInput, ms int) (int, error) {
	per := in.rate * ms / 1000 * in.ch * 2
	in.frames = in.frames[:0]
	n := 0
	for at := 0; at < len(in.pcm); at += per {
		f, err := codecs.EncodeAudioFrame(nil, in.pcm[at:min(at+per, len(in.pcm))], codecs.PCMFormat{Type: codecs.PCMInt16, Channels: in.ch})
		if err != nil {
			return 0, err
		}
		in.frames = append(in.frames, f)
		n += len(f)
	}
	return n, nil
}

func decodeAudio(input any) error {
	in := input.(*audioInput)
	in.decoded = in.decoded[:0]
	var err error
	for _, f := range in.frames {
		if in.decoded, _, err = codecs.DecodeAudioFrame(in.decoded, f); err != nil {
			return err
		}
	}
	return nil
}

func verifyAudio(input any) error {
	in := input.(*audioInput)
	if !bytes.Equal(in.decoded, in.pcm) {
		return fmt.Errorf("decoded PCM differs")
	}
	return nil
}

// audioPeers: FLAC at level 8 of the whole file through ffmpeg (when it is
// installed), and ours with longer frames.
func audioPeers(input any) (map[string]int, error) {
	in := input.(*audioInput)
	out := map[string]int{}
	frames := in.frames
	for _, ms := range []int{100, 1000} {
		n, err := encodeAudio(in, ms)
		if err != nil {
			return nil, err
		}
		out[fmt.Sprintf("ours %d ms", ms)] = n
	}
	in.frames = frames
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
	if err := os.WriteFile(pcm, in.pcm, 0o644); err != nil {
		return out, err
	}
	if b, err := exec.Command(ffmpeg, "-v", "error", "-f", "s16le", "-ar", strconv.Itoa(in.rate), "-ac", strconv.Itoa(in.ch), "-i", pcm,
		"-c:a", "flac", "-compression_level", "8", flac).CombinedOutput(); err != nil {
		return out, fmt.Errorf("ffmpeg flac: %v: %s", err, b)
	}
	fi, err := os.Stat(flac)
	if err != nil {
		return out, err
	}
	out["flac -8"] = int(fi.Size())
	return out, nil
}

// audioRealTime says how many times real time one core decodes, against the
// goal of 50, and the other frame lengths against FLAC.
func audioRealTime(input any, r *Result) string {
	in := input.(*audioInput)
	rt := r.DecodeMBps * 1e6 / float64(in.rate*in.ch*2)
	s := fmt.Sprintf("%d Hz %d ch; decode %.0f× real time (goal ≥ 50: %s)", in.rate, in.ch, rt, met(rt >= 50))
	if f, ok := r.Peers["flac -8"]; ok {
		s += fmt.Sprintf("; × flac: 100 ms %.3f, 1 s %.3f", float64(r.Peers["ours 100 ms"])/float64(f), float64(r.Peers["ours 1000 ms"])/float64(f))
	}
	return s
}
