package compat

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	awsv1 "github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/service/kinesisvideoarchivedmedia"
)

// Media out through the v1 SDK's archived-media client at the endpoint
// GetDataEndpoint gives: GetClip here, HLS in hls_test.go. The media is
// ffmpeg's H.264 with B-frames and AAC, put through a presigned PutMedia
// URL; ffprobe, not our code, reads what comes back.

// avcAAC: 4 s at 25 fps, an IDR and a cluster (a fragment) every second,
// two B-frames; AAC at 48 kHz stereo.
var avcAAC = clip{
	name:      "h264+aac",
	mediaType: "video/h264,audio/aac",
	args: []string{
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
		"-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "2", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-ac", "2",
		"-cluster_time_limit", "10000", "-cluster_size_limit", "50000000",
	},
}

// putAV encodes c, puts it into a new stream through PutMedia and returns
// the frames put (per kind, in order, as ffprobe hashes them) and the
// server-time window the put fell in.
func putAV(t *testing.T, s *server, kv *kinesisvideo.Client, stream string, c clip) (video, audio []string, from, to time.Time) {
	t.Helper()
	_, b := encodeFile(t, c)
	docs, err := parseMKV(b)
	if err != nil || len(docs) != 1 {
		t.Fatalf("ffmpeg's Matroska: %d documents, %v", len(docs), err)
	}
	kinds := map[uint64]uint64{}
	for _, tr := range docs[0].Tracks {
		kinds[tr.Number] = tr.Type
	}
	for _, f := range frames(docs) {
		h := md5.Sum(f.Data)
		if kinds[f.Track] == 1 {
			video = append(video, "MD5:"+hex.EncodeToString(h[:]))
		} else {
			audio = append(audio, "MD5:"+hex.EncodeToString(h[:]))
		}
	}
	createStream(t, kv, stream, c.mediaType)
	url := s.presign(t, s.Key, dataEndpoint(t, kv, stream, kvtypes.APINamePutMedia), "/putMedia", time.Now(), 5*time.Minute)
	from = time.Now().Add(-time.Second)
	acks := putMedia(t, url, putMediaHeaders(stream, time.Now().Add(-time.Minute)), bytes.NewReader(b))
	persisted := 0
	for _, a := range acks {
		if a.EventType == "PERSISTED" {
			persisted++
		}
		if a.EventType == "ERROR" {
			t.Fatalf("PutMedia: %+v", a)
		}
	}
	if persisted != len(docs[0].Clusters) {
		t.Fatalf("%d fragments PERSISTED, %d sent", persisted, len(docs[0].Clusters))
	}
	return video, audio, from, time.Now()
}

// ffprobePackets has ffprobe read an MP4 (a file or a URL) and returns the
// MD5 of each packet's data per kind and the codecs; a warning fails.
func ffprobePackets(t *testing.T, input string) (video, audio []string, codecs string) {
	t.Helper()
	bin := needTool(t, "ffprobe")
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-v", "warning", "-show_packets", "-show_streams", "-show_data_hash", "md5", "-of", "json", input)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", input, err, stderr.Bytes())
	}
	if w := strings.TrimSpace(stderr.String()); w != "" {
		t.Errorf("ffprobe warns: %s", w)
	}
	var doc struct {
		Packets []struct {
			Stream int    `json:"stream_index"`
			Hash   string `json:"data_hash"`
		}
		Streams []struct {
			Codec string `json:"codec_name"`
			Type  string `json:"codec_type"`
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range doc.Streams {
		names = append(names, st.Codec)
	}
	for _, p := range doc.Packets {
		if doc.Streams[p.Stream].Type == "video" {
			video = append(video, p.Hash)
		} else {
			audio = append(audio, p.Hash)
		}
	}
	return video, audio, strings.Join(names, ",")
}

func sameHashes(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d packets, %d frames put", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: packet %d differs from the frame put", what, i)
		}
	}
}

// GetClip through the v1 SDK: video/mp4 whose every packet is a frame put,
// in order; then the service's errors as the SDK's typed codes.
func TestGetClip(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	s := startServer(t)
	kv := s.client(t)
	video, audio, from, to := putAV(t, s, kv, "clip-av", avcAAC)
	am := kinesisvideoarchivedmedia.New(s.v1Session(t, dataEndpoint(t, kv, "clip-av", kvtypes.APINameGetClip)))
	out, err := am.GetClip(&kinesisvideoarchivedmedia.GetClipInput{
		StreamName: awsv1.String("clip-av"),
		ClipFragmentSelector: &kinesisvideoarchivedmedia.ClipFragmentSelector{
			FragmentSelectorType: awsv1.String(kinesisvideoarchivedmedia.ClipFragmentSelectorTypeServerTimestamp),
			TimestampRange:       &kinesisvideoarchivedmedia.ClipTimestampRange{StartTimestamp: awsv1.Time(from), EndTimestamp: awsv1.Time(to)},
		},
	})
	if err != nil {
		t.Fatalf("GetClip: %v", err)
	}
	body, err := io.ReadAll(out.Payload)
	out.Payload.Close()
	if err != nil || awsv1.StringValue(out.ContentType) != "video/mp4" {
		t.Fatalf("GetClip: %s, %d bytes, %v", awsv1.StringValue(out.ContentType), len(body), err)
	}
	path := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	gotV, gotA, codecs := ffprobePackets(t, path)
	if codecs != "h264,aac" {
		t.Fatalf("codecs %s", codecs)
	}
	sameHashes(t, "video", gotV, video)
	sameHashes(t, "audio", gotA, audio)

	for _, c := range []struct {
		name       string
		in         *kinesisvideoarchivedmedia.GetClipInput
		code       string
		statusCode int
	}{
		{"no fragments in the range", &kinesisvideoarchivedmedia.GetClipInput{StreamName: awsv1.String("clip-av"),
			ClipFragmentSelector: &kinesisvideoarchivedmedia.ClipFragmentSelector{FragmentSelectorType: awsv1.String("SERVER_TIMESTAMP"),
				TimestampRange: &kinesisvideoarchivedmedia.ClipTimestampRange{StartTimestamp: awsv1.Time(from.Add(-2 * time.Hour)), EndTimestamp: awsv1.Time(from.Add(-time.Hour))}}},
			kinesisvideoarchivedmedia.ErrCodeResourceNotFoundException, 404},
		{"end before start", &kinesisvideoarchivedmedia.GetClipInput{StreamName: awsv1.String("clip-av"),
			ClipFragmentSelector: &kinesisvideoarchivedmedia.ClipFragmentSelector{FragmentSelectorType: awsv1.String("PRODUCER_TIMESTAMP"),
				TimestampRange: &kinesisvideoarchivedmedia.ClipTimestampRange{StartTimestamp: awsv1.Time(to), EndTimestamp: awsv1.Time(from)}}},
			kinesisvideoarchivedmedia.ErrCodeInvalidArgumentException, 400},
		{"unknown stream", &kinesisvideoarchivedmedia.GetClipInput{StreamName: awsv1.String("clip-nope"),
			ClipFragmentSelector: &kinesisvideoarchivedmedia.ClipFragmentSelector{FragmentSelectorType: awsv1.String("SERVER_TIMESTAMP"),
				TimestampRange: &kinesisvideoarchivedmedia.ClipTimestampRange{StartTimestamp: awsv1.Time(from), EndTimestamp: awsv1.Time(to)}}},
			kinesisvideoarchivedmedia.ErrCodeResourceNotFoundException, 404},
	} {
		_, err := am.GetClip(c.in)
		var rf awserr.RequestFailure
		if !errors.As(err, &rf) || rf.Code() != c.code || rf.StatusCode() != c.statusCode {
			t.Errorf("%s: %v, want %s (%d)", c.name, err, c.code, c.statusCode)
		}
	}
}
