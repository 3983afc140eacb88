package compat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	awsv1 "github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/service/kinesisvideoarchivedmedia"
	"github.com/aws/aws-sdk-go/service/kinesisvideomedia"
)

// TestPutMediaAcks streams ffmpeg's live Matroska output (its stdout) to a
// presigned PutMedia URL with a Go http.Client, which reads the
// acknowledgements ffmpeg's HTTP output would not show, then reads the media
// back through the v1 SDK's archived-media and media clients.
func TestPutMediaAcks(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	s := startServer(t)
	kv := s.client(t)
	for _, c := range []clip{avClip, audioClip} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			stream := "acks-" + strings.ReplaceAll(c.name, "+", "-")
			createStream(t, kv, stream, c.mediaType)
			url := s.presign(t, s.Key, dataEndpoint(t, kv, stream, kvtypes.APINamePutMedia), "/putMedia", time.Now(), 5*time.Minute)

			pipeFFmpeg(t, s, kv, stream, c, url)
		})
	}
}

// TestPutMediaFFmpegHTTP has ffmpeg itself POST to the presigned URL (its
// HTTP output: -method POST, -headers), copying a file it encoded before so
// that the frames it sent are known. A relay on the way keeps the
// acknowledgements, which ffmpeg never reads; ListFragments shows every
// fragment arrived and GetMediaForFragmentList that every frame came back as
// it was.
func TestPutMediaFFmpegHTTP(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	kv := s.client(t)
	ffmpegHTTP(t, s, kv, "ffmpeg-http", true)
}

// TestPutMediaFFmpegDirect is ffmpeg's HTTP output straight to the server,
// at full speed. ffmpeg closes its connection right after its last write
// without reading the response: a socket closed with unread data is reset,
// which discards what it had not yet sent. So it asks for no
// acknowledgements (x-sensorium-acks: none, Sensorium's), and its close is
// a clean FIN. The server also publishes every cluster it read in full
// after a client has gone (it once used the request's context, which
// net/http cancels on a failed write, and lost the last fragments).
func TestPutMediaFFmpegDirect(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	kv := s.client(t)
	ffmpegHTTP(t, s, kv, "ffmpeg-direct", false)
}

func ffmpegHTTP(t *testing.T, s *server, kv *kinesisvideo.Client, stream string, viaRelay bool) {
	t.Helper()
	ffmpeg := needTool(t, "ffmpeg")
	c := avClip
	createStream(t, kv, stream, c.mediaType)
	srcPath, src := encodeFile(t, c)
	docs, err := parseMKV(src)
	if err != nil || len(docs) != 1 {
		t.Fatalf("ffmpeg's file: %d documents, %v", len(docs), err)
	}
	checkClip(t, c, docs[0])

	endpoint := dataEndpoint(t, kv, stream, kvtypes.APINamePutMedia)
	var rl *relay
	if viaRelay {
		rl = startRelay(t, endpoint)
		endpoint = rl.URL
	}
	url := s.presign(t, s.Key, endpoint, "/putMedia", time.Now(), 5*time.Minute)
	// ABSOLUTE timecodes: ffmpeg shifts its output to the producer's clock.
	// -map_metadata -1: without it ffmpeg writes the file's length as the
	// Info Duration (see TestPutMediaInfoDuration).
	offset := time.Now().Add(-time.Hour).UnixMilli()
	headers := "x-amzn-stream-name: " + stream + "\r\nx-amzn-fragment-timecode-type: ABSOLUTE\r\n"
	serverFrom := time.Now()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error"}
	if !viaRelay {
		headers += "x-sensorium-acks: none\r\n"
	}
	cmd := exec.CommandContext(testContext(t, 90*time.Second), ffmpeg, append(args,
		"-i", srcPath, "-map", "0", "-c", "copy", "-map_metadata", "-1", "-output_ts_offset", fmt.Sprintf("%d.%03d", offset/1000, offset%1000),
		"-f", "matroska", "-cluster_time_limit", "10000", "-cluster_size_limit", "50000000",
		"-method", "POST", "-content_type", "video/x-matroska", "-headers", headers, url)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg's HTTP output: %v\n%s", err, out)
	}

	am := s.archivedMedia(t, kv, stream)
	want := len(docs[0].Clusters)
	numbers := map[int64]string{}
	if viaRelay {
		numbers = checkAcks(t, rl.wait(t, 60*time.Second), docs[0].Clusters, offset)
	} else {
		// Without the relay nothing reads the acknowledgements: ListFragments
		// shows when every fragment is stored.
		waitFor(t, 10*time.Second, func() error {
			frags := listFragments(t, am, stream, "PRODUCER_TIMESTAMP", time.UnixMilli(offset-1000), time.UnixMilli(offset+60_000), 1000)
			if len(frags) != want {
				return fmt.Errorf("ListFragments lists %d fragments, ffmpeg sent %d clusters", len(frags), want)
			}
			for _, f := range frags {
				numbers[awsv1.TimeValue(f.ProducerTimestamp).UnixMilli()] = awsv1.StringValue(f.FragmentNumber)
			}
			return nil
		})
	}
	checkStored(t, &upload{s: s, kv: kv, stream: stream, clip: c, sent: docs[0], offset: offset, numbers: numbers, from: serverFrom, to: time.Now()})
}

// TestPutMediaInfoDuration streams ffmpeg's output for a fixed length (-t):
// ffmpeg then writes that length as the Segment's Info Duration. A
// fragment's length is its own, not the recording's (the server once copied
// the session's Info into every fragment and took its Duration as the
// fragment's length: every fragment as long as the session, and all refused
// with MAX_FRAGMENT_DURATION_REACHED past 20 s).
func TestPutMediaInfoDuration(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	kv := s.client(t)
	c := avClip
	c.args = slices.Clone(c.args)
	for i, a := range c.args {
		c.args[i] = strings.Replace(a, "duration=10", "duration=30", 1)
	}
	c.args = append(c.args, "-t", "24")
	c.videoFrames = 600
	stream := "info-duration"
	createStream(t, kv, stream, c.mediaType)
	url := s.presign(t, s.Key, dataEndpoint(t, kv, stream, kvtypes.APINamePutMedia), "/putMedia", time.Now(), 5*time.Minute)
	pipeFFmpeg(t, s, kv, stream, c, url)
}

// pipeFFmpeg encodes c with ffmpeg to its stdout, which a Go http.Client
// POSTs to the presigned url while it reads the acknowledgements, with
// RELATIVE timecodes from a producer start an hour ago. It keeps a copy of
// what ffmpeg wrote, and checks the acknowledgements and the stream's
// content against it.
func pipeFFmpeg(t *testing.T, s *server, kv *kinesisvideo.Client, stream string, c clip, url string) {
	t.Helper()
	start := time.Now().Add(-time.Hour).Truncate(time.Millisecond) // a producer clock of its own
	cmd := ffmpegCmd(testContext(t, 90*time.Second), t, c, nil, "pipe:1")
	var stderr, sent bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serverFrom := time.Now()
	acks := putMedia(t, url, putMediaHeaders(stream, start), io.TeeReader(stdout, &sent))
	serverTo := time.Now()
	// The server may end its answer before the body (an ERROR); ffmpeg's
	// next write then fails instead of blocking.
	_ = stdout.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ffmpeg: %v (the server ended its answer early?)\n%s\nacknowledgements: %+v", err, stderr.String(), acks)
	}
	docs, err := parseMKV(sent.Bytes())
	if err != nil || len(docs) != 1 {
		t.Fatalf("ffmpeg's output: %d documents, %v", len(docs), err)
	}
	checkClip(t, c, docs[0])
	numbers := checkAcks(t, acks, docs[0].Clusters, start.UnixMilli())
	checkStored(t, &upload{s: s, kv: kv, stream: stream, clip: c, sent: docs[0], offset: start.UnixMilli(), numbers: numbers, from: serverFrom, to: serverTo})
}

// checkClip checks ffmpeg made what the clip says: frame counts, tracks,
// key frames at cluster starts.
func checkClip(t *testing.T, c clip, d mkvDoc) {
	t.Helper()
	counts := map[uint64]int{}
	types := map[uint64]uint64{}
	for _, tr := range d.Tracks {
		types[tr.Number] = tr.Type
	}
	for _, b := range frames([]mkvDoc{d}) {
		counts[types[b.Track]]++
	}
	if c.videoFrames >= 0 && counts[1] != c.videoFrames {
		t.Fatalf("ffmpeg wrote %d video frames, want %d", counts[1], c.videoFrames)
	}
	if counts[2] == 0 && c.audioFrames != 0 {
		t.Fatal("ffmpeg wrote no audio frames")
	}
	if len(d.Clusters) < 4 {
		t.Fatalf("ffmpeg wrote %d clusters, want 4 or more", len(d.Clusters))
	}
	for i, cl := range d.Clusters {
		for _, b := range cl.Blocks {
			if types[b.Track] == 1 {
				if !b.Key {
					t.Errorf("cluster %d at %d ms starts its video with a frame that is not a key frame", i, cl.Timecode)
				}
				break
			}
		}
	}
}

// TestMediaErrors checks the v1 SDK's typed errors from the media and
// archived-media operations.
func TestMediaErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	kv := s.client(t)
	const stream = "errors-media"
	createStream(t, kv, stream, "video/h264")
	am := s.archivedMedia(t, kv, stream)
	m := s.media(t, kv, stream)
	ctx := testContext(t, 30*time.Second)
	now := time.Now()
	missing := "no-such-stream"
	for _, tc := range []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"ListFragments unknown stream", func() error {
			_, err := am.ListFragmentsWithContext(ctx, &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: &missing})
			return err
		}, "ResourceNotFoundException", 404},
		{"GetMediaForFragmentList unknown stream", func() error {
			_, err := am.GetMediaForFragmentListWithContext(ctx, &kinesisvideoarchivedmedia.GetMediaForFragmentListInput{StreamName: &missing, Fragments: awsv1.StringSlice([]string{"1"})})
			return err
		}, "ResourceNotFoundException", 404},
		{"GetMedia unknown stream", func() error {
			out, err := m.GetMediaWithContext(ctx, &kinesisvideomedia.GetMediaInput{StreamName: &missing,
				StartSelector: &kinesisvideomedia.StartSelector{StartSelectorType: awsv1.String("NOW")}})
			if err == nil {
				out.Payload.Close()
			}
			return err
		}, "ResourceNotFoundException", 404},
		{"ListFragments bad selector type", func() error {
			_, err := am.ListFragmentsWithContext(ctx, &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: awsv1.String(stream),
				FragmentSelector: &kinesisvideoarchivedmedia.FragmentSelector{FragmentSelectorType: awsv1.String("ARRIVAL_TIME"),
					TimestampRange: &kinesisvideoarchivedmedia.TimestampRange{StartTimestamp: &now, EndTimestamp: &now}}})
			return err
		}, "InvalidArgumentException", 400},
		{"GetMedia FRAGMENT_NUMBER without a number", func() error {
			out, err := m.GetMediaWithContext(ctx, &kinesisvideomedia.GetMediaInput{StreamName: awsv1.String(stream),
				StartSelector: &kinesisvideomedia.StartSelector{StartSelectorType: awsv1.String("FRAGMENT_NUMBER")}})
			if err == nil {
				out.Payload.Close()
			}
			return err
		}, "InvalidArgumentException", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae awserr.RequestFailure
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T), want an awserr.RequestFailure", err, err)
			}
			if ae.Code() != tc.code || ae.StatusCode() != tc.status {
				t.Errorf("Code %q HTTP %d, want %q %d (%v)", ae.Code(), ae.StatusCode(), tc.code, tc.status, err)
			}
			if ae.Message() == "" {
				t.Error("the error has no message")
			}
		})
	}
}

// TestPutMediaRefusedFragments sends what ffmpeg writes by default when it
// copies a file to a pipe: ABSOLUTE timecodes from 0, and a cluster every
// 32 KiB, not at key frames. The service refuses the session with an ERROR;
// the server must stay up while the store's refusals of the clusters
// already on the bus come back as the session ends. It takes a race to
// fail, so it runs sessions back to back.
func TestPutMediaRefusedFragments(t *testing.T) {
	t.Parallel()
	ffmpeg := needTool(t, "ffmpeg")
	s := startServer(t)
	kv := s.client(t)
	src := filepath.Join(t.TempDir(), "camera.mp4")
	enc := exec.CommandContext(testContext(t, 60*time.Second), ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=8", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p", src)
	if out, err := enc.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	for i := range 20 {
		stream := fmt.Sprintf("refused-%d", i)
		createStream(t, kv, stream, "video/h264")
		url := s.presign(t, s.Key, dataEndpoint(t, kv, stream, kvtypes.APINamePutMedia), "/putMedia", time.Now(), 5*time.Minute)
		cmd := exec.CommandContext(testContext(t, 60*time.Second), ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
			"-i", src, "-c", "copy", "-f", "matroska", "pipe:1")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(testContext(t, 60*time.Second), http.MethodPost, url, stdout)
		for k, v := range putMediaHeaders(stream, time.Time{}) {
			req.Header.Set(k, v)
		}
		// The server ends the session at the first ERROR, and may reset the
		// connection on the rest of the body: an error here is no failure.
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		_ = stdout.Close()
		_ = cmd.Wait()
		describe(t, kv, stream) // the server is still up
	}
}
