package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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

// TestPutMediaFFmpegDirect is ffmpeg's HTTP output straight to the server.
// ffmpeg closes its connection right after its last write without reading
// the response, so the unread acknowledgements make the close a TCP reset;
// the server's next acknowledgement write fails, net/http cancels the
// request's context, and PutMedia's publish of the clusters it is still
// reading fails with it: the last fragment is lost.
func TestPutMediaFFmpegDirect(t *testing.T) {
	knownIssue(t, "PutMedia publishes with the request's context, which a failed acknowledgement write cancels: "+
		"ffmpeg's HTTP output (which resets the connection at its end) loses its last fragment")
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
		// At 4 times its rate, as a live producer at its own pace: the server
		// keeps up, so all that ffmpeg wrote has reached it when ffmpeg resets
		// the connection (at full speed its unsent data would be lost too).
		args = append(args, "-readrate", "4")
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
	checkStored(t, s, kv, stream, c, docs[0], offset, numbers, serverFrom, time.Now())
}

// TestPutMediaInfoDuration streams ffmpeg's output for a fixed length (-t):
// ffmpeg then writes that length as the Segment's Info Duration, which the
// server copies into every fragment and takes as each fragment's length.
func TestPutMediaInfoDuration(t *testing.T) {
	knownIssue(t, "PutMedia copies the session's Info (with ffmpeg's Duration of the whole recording) into every fragment, "+
		"and the ingester takes Info Duration as the fragment's length: every FragmentLengthInMilliseconds is the session's length, "+
		"and a session over 20 s has every fragment refused with MAX_FRAGMENT_DURATION_REACHED")
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
	checkStored(t, s, kv, stream, c, docs[0], start.UnixMilli(), numbers, serverFrom, serverTo)
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

// checkStored reads the stream back through the v1 SDK and checks it holds
// what was sent: sent is the MKV the producer sent, offset the ms its
// cluster timecodes are shifted by, numbers the fragment numbers by
// producer timestamp (ms), and the upload ran from serverFrom to serverTo.
func checkStored(t *testing.T, s *server, kv *kinesisvideo.Client, stream string, c clip, sent mkvDoc, offset int64,
	numbers map[int64]string, serverFrom, serverTo time.Time) {
	t.Helper()
	am := s.archivedMedia(t, kv, stream)
	first := sent.Clusters[0].Timecode + offset
	last := sent.Clusters[len(sent.Clusters)-1].Timecode + offset

	// Every fragment, a page of two at a time.
	all := listFragments(t, am, stream, "PRODUCER_TIMESTAMP", time.UnixMilli(first), time.UnixMilli(last+10_000), 2)
	slices.SortFunc(all, func(a, b *kinesisvideoarchivedmedia.Fragment) int {
		return awsv1.TimeValue(a.ProducerTimestamp).Compare(awsv1.TimeValue(b.ProducerTimestamp))
	})
	if len(all) != len(sent.Clusters) {
		t.Fatalf("ListFragments lists %d fragments, %d clusters were sent", len(all), len(sent.Clusters))
	}
	var order []string
	for i, f := range all {
		cl := sent.Clusters[i]
		num := awsv1.StringValue(f.FragmentNumber)
		order = append(order, num)
		tc := cl.Timecode + offset
		if got := awsv1.TimeValue(f.ProducerTimestamp).UnixMilli(); got != tc {
			t.Errorf("fragment %s: ProducerTimestamp %d ms, the cluster's is %d", num, got, tc)
		}
		if want := numbers[tc]; num != want {
			t.Errorf("fragment at %d: FragmentNumber %s, acknowledged as %q", tc, num, want)
		}
		st := awsv1.TimeValue(f.ServerTimestamp)
		if st.Before(serverFrom.Add(-time.Second)) || st.After(serverTo.Add(time.Second)) {
			t.Errorf("fragment %s: ServerTimestamp %v, outside the upload's %v to %v", num, st, serverFrom, serverTo)
		}
		var payload int64
		for _, b := range cl.Blocks {
			payload += int64(len(b.Data))
		}
		if size := awsv1.Int64Value(f.FragmentSizeInBytes); size < payload || size > 2*payload+64<<10 {
			t.Errorf("fragment %s: FragmentSizeInBytes %d, its frames are %d bytes", num, size, payload)
		}
		// A fragment lasts from its cluster's time to the end of its last frame:
		// at least its frames' span, and about as long as the gap to the next.
		length := awsv1.Int64Value(f.FragmentLengthInMilliseconds)
		span := cl.Blocks[len(cl.Blocks)-1].Time - cl.Timecode
		limit := int64(10_000)
		if i+1 < len(sent.Clusters) {
			limit = sent.Clusters[i+1].Timecode - cl.Timecode + 50
		}
		if length < span || length > limit {
			t.Errorf("fragment %s: FragmentLengthInMilliseconds %d, its frames span %d ms and the next fragment starts %d ms after it",
				num, length, span, limit-50)
		}
	}

	t.Run("ListFragments ranges", func(t *testing.T) {
		for _, tc := range []struct {
			name       string
			basis      string
			from, to   time.Time
			want, some []string // want exactly / want at least
		}{
			{"all by server time", "SERVER_TIMESTAMP", serverFrom.Add(-time.Second), serverTo.Add(time.Second), order, nil},
			{"after the upload", "SERVER_TIMESTAMP", serverTo.Add(time.Minute), serverTo.Add(time.Hour), []string{}, nil},
			{"before the first", "PRODUCER_TIMESTAMP", time.UnixMilli(first - 60_000), time.UnixMilli(first - 30_000), []string{}, nil},
			{"inside the second", "PRODUCER_TIMESTAMP", time.UnixMilli(sent.Clusters[1].Timecode + offset + 100), time.UnixMilli(sent.Clusters[1].Timecode + offset + 200), nil, order[1:2]},
			{"second to third", "PRODUCER_TIMESTAMP", time.UnixMilli(sent.Clusters[1].Timecode + offset + 100), time.UnixMilli(sent.Clusters[2].Timecode + offset + 100), nil, order[1:3]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var got []string
				for _, f := range listFragments(t, am, stream, tc.basis, tc.from, tc.to, 1000) {
					got = append(got, awsv1.StringValue(f.FragmentNumber))
				}
				slices.SortFunc(got, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
				if tc.want != nil && !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
					t.Errorf("fragments %v, want %v", got, tc.want)
				}
				for _, n := range tc.some {
					if !slices.Contains(got, n) {
						t.Errorf("fragments %v lack %s", got, n)
					}
				}
				// Nothing that starts after the range or ends before it.
				for i, n := range got {
					j := slices.Index(order, n)
					if j < 0 {
						t.Errorf("fragment %s is not one that was sent", n)
						continue
					}
					_ = i
					startMS := sent.Clusters[j].Timecode + offset
					if tc.basis == "PRODUCER_TIMESTAMP" && (startMS > tc.to.UnixMilli() || (j+1 < len(sent.Clusters) && sent.Clusters[j+1].Timecode+offset <= tc.from.UnixMilli())) {
						t.Errorf("fragment %s (%d ms) is outside the range %d to %d ms", n, startMS, tc.from.UnixMilli(), tc.to.UnixMilli())
					}
				}
			})
		}
	})

	want := frames([]mkvDoc{sent})
	t.Run("GetMediaForFragmentList", func(t *testing.T) {
		ctx := testContext(t, 60*time.Second)
		out, err := am.GetMediaForFragmentListWithContext(ctx, &kinesisvideoarchivedmedia.GetMediaForFragmentListInput{
			StreamName: &stream, Fragments: awsv1.StringSlice(order),
		})
		if err != nil {
			t.Fatalf("GetMediaForFragmentList: %v", err)
		}
		body, err := io.ReadAll(out.Payload)
		out.Payload.Close()
		if err != nil {
			t.Fatalf("reading GetMediaForFragmentList: %v", err)
		}
		if ct := awsv1.StringValue(out.ContentType); ct != strings.Split(c.mediaType, ",")[0] {
			t.Errorf("ContentType %q, want the stream's media type %q", ct, c.mediaType)
		}
		docs := checkChunks(t, body, order)
		compareFrames(t, frames(docs), want, offset)
		path := filepath.Join(t.TempDir(), "fragments.mkv")
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		checkProbe(t, path, sent)
		var starts []int
		for _, d := range docs {
			starts = append(starts, d.Offset)
		}
		checkMkvinfo(t, path, len(want), starts)

		// In the order asked, not the stream's.
		rev := slices.Clone(order[1:4])
		slices.Reverse(rev)
		out, err = am.GetMediaForFragmentListWithContext(ctx, &kinesisvideoarchivedmedia.GetMediaForFragmentListInput{
			StreamName: &stream, Fragments: awsv1.StringSlice(rev),
		})
		if err != nil {
			t.Fatalf("GetMediaForFragmentList %v: %v", rev, err)
		}
		body, err = io.ReadAll(out.Payload)
		out.Payload.Close()
		if err != nil {
			t.Fatal(err)
		}
		checkChunks(t, body, rev)
	})

	t.Run("GetMedia EARLIEST", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		m := s.media(t, kv, stream)
		out, err := m.GetMediaWithContext(ctx, &kinesisvideomedia.GetMediaInput{
			StreamName:    &stream,
			StartSelector: &kinesisvideomedia.StartSelector{StartSelectorType: awsv1.String(kinesisvideomedia.StartSelectorTypeEarliest)},
		})
		if err != nil {
			t.Fatalf("GetMedia: %v", err)
		}
		defer out.Payload.Close() // GetMedia follows the stream live: it never ends by itself
		if ct := awsv1.StringValue(out.ContentType); ct != strings.Split(c.mediaType, ",")[0] {
			t.Errorf("ContentType %q, want the stream's media type %q", ct, c.mediaType)
		}
		// Read until every frame is in and the last chunk has its closing
		// tags, or 5 s after the frames are in; then close the body.
		var body []byte
		var docs []mkvDoc
		buf := make([]byte, 64<<10)
		var grace *time.Timer
		for {
			n, err := out.Payload.Read(buf)
			body = append(body, buf[:n]...)
			d, perr := parseMKV(body)
			if perr == nil && len(frames(d)) >= len(want) {
				docs = d
				if _, ok := d[len(d)-1].Tags["AWS_KINESISVIDEO_CONTINUATION_TOKEN"]; ok {
					break
				}
				if grace == nil {
					grace = time.AfterFunc(5*time.Second, func() { out.Payload.Close() })
					defer grace.Stop()
				}
			}
			if err != nil {
				if docs != nil {
					break
				}
				t.Fatalf("GetMedia ended (%v) after %d bytes, %d documents (%v), %d of %d frames", err, len(body), len(d), perr, len(frames(d)), len(want))
			}
		}
		checkChunks(t, body, order)
		compareFrames(t, frames(docs), want, offset)
		for i, d := range docs {
			for _, tag := range []string{"AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", "AWS_KINESISVIDEO_CONTINUATION_TOKEN"} {
				if _, ok := d.Tags[tag]; !ok {
					t.Errorf("GetMedia chunk %d lacks the tag %s (tags %v)", i, tag, d.Tags)
				}
			}
		}
	})
}

// listFragments is every page of ListFragments over a range.
func listFragments(t *testing.T, am *kinesisvideoarchivedmedia.KinesisVideoArchivedMedia, stream, basis string, from, to time.Time, pageSize int64) []*kinesisvideoarchivedmedia.Fragment {
	t.Helper()
	var out []*kinesisvideoarchivedmedia.Fragment
	pages := 0
	err := am.ListFragmentsPagesWithContext(testContext(t, 30*time.Second), &kinesisvideoarchivedmedia.ListFragmentsInput{
		StreamName: &stream,
		MaxResults: &pageSize,
		FragmentSelector: &kinesisvideoarchivedmedia.FragmentSelector{
			FragmentSelectorType: &basis,
			TimestampRange:       &kinesisvideoarchivedmedia.TimestampRange{StartTimestamp: &from, EndTimestamp: &to},
		},
	}, func(p *kinesisvideoarchivedmedia.ListFragmentsOutput, last bool) bool {
		pages++
		if int64(len(p.Fragments)) > pageSize {
			t.Errorf("ListFragments page of %d fragments, MaxResults %d", len(p.Fragments), pageSize)
		}
		out = append(out, p.Fragments...)
		return pages < 100
	})
	if err != nil {
		t.Fatalf("ListFragments %s %v to %v: %v", basis, from, to, err)
	}
	return out
}

// checkChunks checks that body is one MKV document per fragment, in order,
// each tagged as the service tags them, and returns the documents.
func checkChunks(t *testing.T, body []byte, order []string) []mkvDoc {
	t.Helper()
	docs, err := parseMKV(body)
	if err != nil {
		t.Fatalf("the media is not MKV that the test's reader reads: %v", err)
	}
	var got []string
	for i, d := range docs {
		got = append(got, d.Tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"])
		for _, tag := range []string{"AWS_KINESISVIDEO_SERVER_TIMESTAMP", "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"} {
			v, ok := d.Tags[tag]
			if _, err := strconv.ParseFloat(v, 64); !ok || err != nil {
				t.Errorf("chunk %d: tag %s = %q, want seconds", i, tag, v)
			}
		}
		if len(d.Clusters) != 1 {
			t.Errorf("chunk %d has %d clusters, want 1", i, len(d.Clusters))
		}
		if len(d.Tracks) == 0 {
			t.Errorf("chunk %d has no tracks", i)
		}
	}
	if !slices.Equal(got, order) {
		t.Errorf("chunks' AWS_KINESISVIDEO_FRAGMENT_NUMBER %v, want %v", got, order)
	}
	return docs
}

// compareFrames checks that got are the frames want, byte for byte, on the
// same tracks, at their times shifted by offset ms.
func compareFrames(t *testing.T, got, want []mkvBlock, offset int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d frames, %d were sent", len(got), len(want))
	}
	bad := 0
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.Track != w.Track || g.Time != w.Time+offset || !bytes.Equal(g.Data, w.Data) {
			if bad++; bad <= 5 {
				t.Errorf("frame %d: track %d at %d ms, %d bytes; sent track %d at %d ms, %d bytes (equal bytes: %v)",
					i, g.Track, g.Time, len(g.Data), w.Track, w.Time+offset, len(w.Data), bytes.Equal(g.Data, w.Data))
			}
		}
	}
	if bad > 5 {
		t.Errorf("… %d frames differ in all", bad)
	}
}

// checkProbe has ffprobe decode the file and checks it finds every frame
// that was sent.
func checkProbe(t *testing.T, path string, sent mkvDoc) {
	t.Helper()
	types := map[uint64]string{}
	for _, tr := range sent.Tracks {
		types[tr.Number] = map[uint64]string{1: "video", 2: "audio"}[tr.Type]
	}
	want := map[string]int{}
	for _, b := range frames([]mkvDoc{sent}) {
		want[types[b.Track]]++
	}
	got := probeFrames(t, path)
	for kind, n := range want {
		if got[kind] != n {
			t.Errorf("ffprobe -count_frames decodes %d %s frames, %d were sent", got[kind], kind, n)
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
