// Package tools finds the external programs that tests check our output
// with (ffmpeg, ffprobe, mkvinfo, node): scripts/install-test-deps.sh
// installs them. A test skips, saying so, when one is missing — and fails
// under CI=true, where the script must have installed it.
package tools

import (
	"os"
	"os/exec"
	"testing"
)

// Need returns the path of each named program, in order, or ends the test.
func Need(t testing.TB, names ...string) []string {
	t.Helper()
	var paths []string
	for _, name := range names {
		p, err := exec.LookPath(name)
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing: run scripts/install-test-deps.sh", name)
			}
			t.Skipf("%s missing: run scripts/install-test-deps.sh", name)
		}
		paths = append(paths, p)
	}
	return paths
}

// Speech is a real recording of speech (sound-theme-freedesktop, which
// scripts/install-test-deps.sh installs), 1.5 s, stereo Vorbis.
const Speech = "/usr/share/sounds/freedesktop/stereo/audio-channel-front-left.oga"

// AudioInput is ffmpeg's input arguments for a test's audio: Speech, or
// where it is missing a tone in noise that ffmpeg makes.
func AudioInput() []string {
	if _, err := os.Stat(Speech); err == nil {
		return []string{"-i", Speech}
	}
	return []string{"-f", "lavfi", "-i", "aevalsrc=0.3*sin(2*PI*440*t)+0.05*(random(0)-0.5)|0.2*sin(2*PI*660*t)+0.02*(random(1)-0.5):s=44100:d=3"}
}

// FFmpeg runs ffmpeg quietly, overwriting its output, or ends the test with
// what ffmpeg said.
func FFmpeg(t testing.TB, args ...string) {
	t.Helper()
	ffmpeg := Need(t, "ffmpeg")[0]
	out, err := exec.Command(ffmpeg, append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}
