// Command camera streams H.264 video into Sensorium in real time, as a
// camera would: the access units of an Annex B elementary stream, one per
// frame period, looped for as long as it runs. GetMedia's output plays in
// ffplay or VLC, and a query returns a row per access unit.
//
//	ffmpeg -f lavfi -i testsrc2=size=640x360:rate=25 -t 10 -c:v libx264 -g 50 -bf 2 -f h264 clip.h264
//	sensorium serve &
//	go run ./examples/camera --input clip.h264 --stream cam-1 --duration 30s
//	sensorium get cam-1 --from -30s -o camera.mkv && ffplay camera.mkv
//
// Without --input, and with ffmpeg (with libx264) on the PATH, it makes that
// clip itself, in a temporary file. --width and --height must be the clip's
// picture size, --fps its frame rate.
//
// Access units go in in decode order, each at its presentation time: with
// B-frames these differ, and sdk.SplitAnnexB gives each access unit its
// place in presentation order (AccessUnit.Order), so loop k's access unit
// is presented at origin + (k × len(clip) + Order) × frame period.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sensorium-io/sensorium/examples/internal/stream"
	"github.com/sensorium-io/sensorium/sdk"
)

func main() {
	cfg := stream.Flags("cam-1")
	input := flag.String("input", "", "H.264 Annex B elementary stream to loop (default: a test clip made with ffmpeg)")
	fps := flag.Float64("fps", 25, "frame rate of the clip")
	width := flag.Int("width", 640, "picture width of the clip")
	height := flag.Int("height", 360, "picture height of the clip")
	flag.Parse()
	cfg.MediaType = "video/h264"
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, *input, *fps, *width, *height); err != nil {
		log.Fatal("camera: ", err)
	}
}

func run(ctx context.Context, cfg *stream.Config, input string, fps float64, width, height int) error {
	if !(fps > 0 && fps <= 1000) || width <= 0 || height <= 0 {
		return fmt.Errorf("--fps %g, --width %d, --height %d: want a frame rate in (0, 1000] and a picture size", fps, width, height)
	}
	clip, err := readClip(ctx, input, fps, width, height)
	if err != nil {
		return err
	}
	aus, avcC, err := sdk.SplitAnnexB(clip)
	if err != nil {
		return err
	}
	switch {
	case len(aus) == 0:
		return errors.New("the clip has no access units")
	case !aus[0].Key:
		return errors.New("the clip does not start with an IDR access unit: a fragment must start at a key frame")
	}
	for i, au := range aus {
		if au.Order < 0 {
			return fmt.Errorf("access unit %d: SplitAnnexB could not derive its presentation order from the slice header, so its presentation time is unknown", i)
		}
	}
	track, err := sdk.H264Track(1, "camera", avcC, width, height)
	if err != nil {
		return err
	}
	frame := time.Duration(math.Round(float64(time.Second) / fps))
	log.Printf("looping %d access units (%.1f s at %g fps, %dx%d)", len(aus), float64(len(aus))/fps, fps, width, height)
	return stream.RunTracks(ctx, cfg, []sdk.Track{track}, func(ctx context.Context, s *stream.Session) error {
		origin := s.Start.UnixNano()
		n := 0 // access units put
		put := func(ctx context.Context) error {
			loop, au := n/len(aus), aus[n%len(aus)]
			pts := origin + int64(loop*len(aus)+au.Order)*int64(frame)
			if err := s.P.PutH264(ctx, 1, pts, int64(frame), au.Data, au.Key); err != nil {
				return err
			}
			n++
			return nil
		}
		err := s.Every(ctx, frame, func(int64) error { return put(ctx) })
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		// Stopped (--duration or a signal): put the few access units that
		// complete the pictures presented so far (the B-frames of the last
		// P-frame put), so that the stream ends without a hole.
		for n%len(aus) != 0 && !complete(aus[:n%len(aus)]) {
			if perr := put(context.Background()); perr != nil {
				return perr
			}
		}
		return err
	})
}

// complete tells whether a clip's first access units, in decode order, hold
// the first pictures in presentation order without a gap.
func complete(aus []sdk.AccessUnit) bool {
	last := -1
	for _, au := range aus {
		last = max(last, au.Order)
	}
	return last == len(aus)-1
}

// readClip reads the input, or without one makes a test clip with ffmpeg.
func readClip(ctx context.Context, input string, fps float64, width, height int) ([]byte, error) {
	if input != "" {
		return os.ReadFile(input)
	}
	size := fmt.Sprintf("%dx%d", width, height)
	gop := fmt.Sprint(int(math.Round(2 * fps)))
	args := []string{"-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=%g", size, fps), "-t", "10",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", gop, "-bf", "2", "-f", "h264"}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return nil, fmt.Errorf("no --input and no ffmpeg on the PATH: give an H.264 Annex B clip with --input FILE, e.g. made with: ffmpeg %s clip.h264", strings.Join(args[2:], " "))
	}
	dir, err := os.MkdirTemp("", "camera-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "clip.h264")
	log.Printf("no --input: making a 10 s test clip with ffmpeg (testsrc2, %s at %g fps, libx264 with B-frames) in %s", size, fps, path)
	if out, err := exec.CommandContext(ctx, "ffmpeg", append(args, path)...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ffmpeg could not make the test clip (%v): %s; give one with --input FILE", err, bytes.TrimSpace(out))
	}
	return os.ReadFile(path)
}
