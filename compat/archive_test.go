package compat

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	awsv1 "github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/service/kinesisvideoarchivedmedia"
	"github.com/aws/aws-sdk-go/service/kinesisvideomedia"
)

// Reading a PutMedia session back through the v1 SDK's archived-media and
// media clients, and checking it against what the producer sent.

// upload is one PutMedia session: what was sent and what the server said.
type upload struct {
	s      *server
	kv     *kinesisvideo.Client
	stream string
	clip   clip
	sent   mkvDoc // the MKV the producer sent
	offset int64  // ms the cluster timecodes are shifted by (RELATIVE start, ffmpeg's -output_ts_offset)
	// numbers are the acknowledged fragment numbers by producer timestamp (ms).
	numbers  map[int64]string
	from, to time.Time // when the upload ran, for server timestamps
}

// checkStored checks the stream holds what was sent, by every read path.
func checkStored(t *testing.T, u *upload) {
	t.Helper()
	am := u.s.archivedMedia(t, u.kv, u.stream)
	order := u.checkFragments(t, am)
	t.Run("ListFragments ranges", func(t *testing.T) { u.checkRanges(t, am, order) })
	t.Run("GetMediaForFragmentList", func(t *testing.T) { u.checkFragmentList(t, am, order) })
	t.Run("GetMedia EARLIEST", func(t *testing.T) { u.checkGetMedia(t, order) })
}

// tc is a cluster's timecode on the server's clock.
func (u *upload) tc(i int) int64 { return u.sent.Clusters[i].Timecode + u.offset }

// checkFragments lists every fragment, a page of two at a time, checks
// their fields, and returns their numbers in the order they were sent.
func (u *upload) checkFragments(t *testing.T, am *kinesisvideoarchivedmedia.KinesisVideoArchivedMedia) []string {
	t.Helper()
	n := len(u.sent.Clusters)
	all := listFragments(t, am, u.stream, "PRODUCER_TIMESTAMP", time.UnixMilli(u.tc(0)), time.UnixMilli(u.tc(n-1)+10_000), 2)
	slices.SortFunc(all, func(a, b *kinesisvideoarchivedmedia.Fragment) int {
		return awsv1.TimeValue(a.ProducerTimestamp).Compare(awsv1.TimeValue(b.ProducerTimestamp))
	})
	if len(all) != n {
		t.Fatalf("ListFragments lists %d fragments, %d clusters were sent", len(all), n)
	}
	var order []string
	for i, f := range all {
		cl := u.sent.Clusters[i]
		num := awsv1.StringValue(f.FragmentNumber)
		order = append(order, num)
		if got := awsv1.TimeValue(f.ProducerTimestamp).UnixMilli(); got != u.tc(i) {
			t.Errorf("fragment %s: ProducerTimestamp %d ms, the cluster's is %d", num, got, u.tc(i))
		}
		if want := u.numbers[u.tc(i)]; num != want {
			t.Errorf("fragment at %d: FragmentNumber %s, acknowledged as %q", u.tc(i), num, want)
		}
		st := awsv1.TimeValue(f.ServerTimestamp)
		if st.Before(u.from.Add(-time.Second)) || st.After(u.to.Add(time.Second)) {
			t.Errorf("fragment %s: ServerTimestamp %v, outside the upload's %v to %v", num, st, u.from, u.to)
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
		gap := int64(10_000)
		if i+1 < n {
			gap = u.tc(i+1) - u.tc(i)
		}
		if length < span || length > gap+50 {
			t.Errorf("fragment %s: FragmentLengthInMilliseconds %d, its frames span %d ms and the next fragment starts %d ms after it",
				num, length, span, gap)
		}
	}
	return order
}

// checkRanges lists fragments by server and producer time ranges.
func (u *upload) checkRanges(t *testing.T, am *kinesisvideoarchivedmedia.KinesisVideoArchivedMedia, order []string) {
	ms := time.UnixMilli
	for _, tc := range []struct {
		name       string
		basis      string
		from, to   time.Time
		want, some []string // want exactly / want at least
	}{
		{"all by server time", "SERVER_TIMESTAMP", u.from.Add(-time.Second), u.to.Add(time.Second), order, nil},
		{"after the upload", "SERVER_TIMESTAMP", u.to.Add(time.Minute), u.to.Add(time.Hour), []string{}, nil},
		{"before the first", "PRODUCER_TIMESTAMP", ms(u.tc(0) - 60_000), ms(u.tc(0) - 30_000), []string{}, nil},
		{"inside the second", "PRODUCER_TIMESTAMP", ms(u.tc(1) + 100), ms(u.tc(1) + 200), nil, order[1:2]},
		{"second to third", "PRODUCER_TIMESTAMP", ms(u.tc(1) + 100), ms(u.tc(2) + 100), nil, order[1:3]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range listFragments(t, am, u.stream, tc.basis, tc.from, tc.to, 1000) {
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
			for _, n := range got {
				j := slices.Index(order, n)
				if j < 0 {
					t.Errorf("fragment %s is not one that was sent", n)
					continue
				}
				endsBefore := j+1 < len(order) && u.tc(j+1) <= tc.from.UnixMilli()
				if tc.basis == "PRODUCER_TIMESTAMP" && (u.tc(j) > tc.to.UnixMilli() || endsBefore) {
					t.Errorf("fragment %s (%d ms) is outside the range %d to %d ms", n, u.tc(j), tc.from.UnixMilli(), tc.to.UnixMilli())
				}
			}
		})
	}
}

// checkFragmentList gets every fragment by number: the same frames, MKV that
// ffprobe decodes and mkvinfo reads; and a few in an order of its own.
func (u *upload) checkFragmentList(t *testing.T, am *kinesisvideoarchivedmedia.KinesisVideoArchivedMedia, order []string) {
	ctx := testContext(t, 60*time.Second)
	get := func(numbers []string) []byte {
		t.Helper()
		out, err := am.GetMediaForFragmentListWithContext(ctx, &kinesisvideoarchivedmedia.GetMediaForFragmentListInput{
			StreamName: &u.stream, Fragments: awsv1.StringSlice(numbers),
		})
		if err != nil {
			t.Fatalf("GetMediaForFragmentList %v: %v", numbers, err)
		}
		defer out.Payload.Close()
		u.checkContentType(t, out.ContentType)
		body, err := io.ReadAll(out.Payload)
		if err != nil {
			t.Fatalf("reading GetMediaForFragmentList: %v", err)
		}
		return body
	}
	want := frames([]mkvDoc{u.sent})
	body := get(order)
	docs := checkChunks(t, body, order)
	compareFrames(t, frames(docs), want, u.offset)
	path := filepath.Join(t.TempDir(), "fragments.mkv")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	checkProbe(t, path, u.sent)
	var starts []int
	for _, d := range docs {
		starts = append(starts, d.Offset)
	}
	checkMkvinfo(t, path, len(want), starts)

	// In the order asked, not the stream's.
	rev := slices.Clone(order[1:4])
	slices.Reverse(rev)
	checkChunks(t, get(rev), rev)
}

// checkGetMedia reads the stream from its start until every frame is in,
// then closes the body: GetMedia follows the stream live and never ends by
// itself.
func (u *upload) checkGetMedia(t *testing.T, order []string) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	m := u.s.media(t, u.kv, u.stream)
	out, err := m.GetMediaWithContext(ctx, &kinesisvideomedia.GetMediaInput{
		StreamName:    &u.stream,
		StartSelector: &kinesisvideomedia.StartSelector{StartSelectorType: awsv1.String(kinesisvideomedia.StartSelectorTypeEarliest)},
	})
	if err != nil {
		t.Fatalf("GetMedia: %v", err)
	}
	defer out.Payload.Close()
	u.checkContentType(t, out.ContentType)
	// Until every frame is in and the last chunk has its closing tags, or
	// 5 s after the frames are in.
	want := frames([]mkvDoc{u.sent})
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
	compareFrames(t, frames(docs), want, u.offset)
	for i, d := range docs {
		for _, tag := range []string{"AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", "AWS_KINESISVIDEO_CONTINUATION_TOKEN"} {
			if _, ok := d.Tags[tag]; !ok {
				t.Errorf("GetMedia chunk %d lacks the tag %s (tags %v)", i, tag, d.Tags)
			}
		}
	}
}

// checkContentType wants the stream's (first) media type.
func (u *upload) checkContentType(t *testing.T, ct *string) {
	t.Helper()
	if got, want := awsv1.StringValue(ct), strings.Split(u.clip.mediaType, ",")[0]; got != want {
		t.Errorf("ContentType %q, want the stream's media type %q", got, want)
	}
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
