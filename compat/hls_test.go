package compat

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	awsv1 "github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/service/kinesisvideoarchivedmedia"
)

// HLS through the v1 SDK: the session URL it is given plays in ffprobe
// (ON_DEMAND, every frame) and ffmpeg (LIVE), as a player would fetch it —
// unsigned, the token its only credential; a forged token is refused.
func TestHLSSessions(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	s := startServer(t)
	kv := s.client(t)
	video, audio, from, to := putAV(t, s, kv, "hls-av", avcAAC)
	endpoint := dataEndpoint(t, kv, "hls-av", kvtypes.APINameGetHlsStreamingSessionUrl)
	am := kinesisvideoarchivedmedia.New(s.v1Session(t, endpoint))

	out, err := am.GetHLSStreamingSessionURL(&kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{
		StreamName:   awsv1.String("hls-av"),
		PlaybackMode: awsv1.String(kinesisvideoarchivedmedia.HLSPlaybackModeOnDemand),
		HLSFragmentSelector: &kinesisvideoarchivedmedia.HLSFragmentSelector{
			FragmentSelectorType: awsv1.String(kinesisvideoarchivedmedia.HLSFragmentSelectorTypeServerTimestamp),
			TimestampRange:       &kinesisvideoarchivedmedia.HLSTimestampRange{StartTimestamp: awsv1.Time(from), EndTimestamp: awsv1.Time(to)},
		},
		Expires: awsv1.Int64(600),
	})
	if err != nil {
		t.Fatalf("GetHLSStreamingSessionURL: %v", err)
	}
	url := awsv1.StringValue(out.HLSStreamingSessionURL)
	if !strings.HasPrefix(url, endpoint+"/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=") {
		t.Fatalf("session URL %s is not at the data endpoint %s", url, endpoint)
	}
	gotV, gotA, codecs := ffprobePackets(t, url)
	if codecs != "h264,aac" {
		t.Fatalf("codecs %s", codecs)
	}
	sameHashes(t, "ON_DEMAND video", gotV, video)
	sameHashes(t, "ON_DEMAND audio", gotA, audio)

	// LIVE (the default mode), the newest three fragments: ffmpeg plays
	// from the first shown, and a second and a half of it is the frames of
	// fragment 1 on (0-based) as put: 25 pictures and 47 AAC frames a
	// fragment.
	out, err = am.GetHLSStreamingSessionURL(&kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{
		StreamName: awsv1.String("hls-av"), MaxMediaPlaylistFragmentResults: awsv1.Int64(3),
	})
	if err != nil {
		t.Fatalf("GetHLSStreamingSessionURL LIVE: %v", err)
	}
	live := awsv1.StringValue(out.HLSStreamingSessionURL)
	ffmpeg := needTool(t, "ffmpeg")
	var stderr bytes.Buffer
	cmd := exec.CommandContext(testContext(t, 30*time.Second), ffmpeg, "-v", "error", "-live_start_index", "0", "-i", live,
		"-c", "copy", "-t", "1.5", "-f", "framemd5", "-")
	cmd.Stderr = &stderr
	md5s, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg plays the LIVE session: %v: %s", err, stderr.Bytes())
	}
	var liveV, liveA []string
	for _, l := range strings.Split(string(md5s), "\n") {
		f := strings.Split(l, ",")
		if len(f) != 6 || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.TrimSpace(f[0]) == "0" {
			liveV = append(liveV, "MD5:"+strings.TrimSpace(f[5]))
		} else {
			liveA = append(liveA, "MD5:"+strings.TrimSpace(f[5]))
		}
	}
	if len(liveV) < 30 || len(liveA) < 60 {
		t.Fatalf("ffmpeg read %d video and %d audio packets of 1.5 s of the LIVE session", len(liveV), len(liveA))
	}
	sameHashes(t, "LIVE video", liveV, video[25:25+len(liveV)])
	if !isRun(audio, liveA) {
		t.Errorf("the LIVE session's %d AAC packets are not a run of the frames put", len(liveA))
	}

	// A forged token is refused with the service's NotAuthorizedException.
	i := strings.Index(live, "SessionToken=") + len("SessionToken=") + 30
	c := byte('A')
	if live[i] == 'A' {
		c = 'B'
	}
	resp, err := http.Get(live[:i] + string(c) + live[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-amzn-ErrorType") != "NotAuthorizedException" {
		t.Errorf("forged token: %s %s %s", resp.Status, resp.Header.Get("x-amzn-ErrorType"), b)
	}

	// The service's refusals, as the SDK's typed errors.
	_, err = am.GetHLSStreamingSessionURL(&kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{
		StreamName: awsv1.String("hls-av"), ContainerFormat: awsv1.String(kinesisvideoarchivedmedia.ContainerFormatMpegTs),
	})
	var rf awserr.RequestFailure
	if !errors.As(err, &rf) || rf.Code() != kinesisvideoarchivedmedia.ErrCodeInvalidArgumentException {
		t.Errorf("MPEG_TS: %v", err)
	}
	_, err = am.GetHLSStreamingSessionURL(&kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{
		StreamName: awsv1.String("hls-av"), PlaybackMode: awsv1.String("ON_DEMAND"),
		HLSFragmentSelector: &kinesisvideoarchivedmedia.HLSFragmentSelector{
			FragmentSelectorType: awsv1.String("PRODUCER_TIMESTAMP"),
			TimestampRange:       &kinesisvideoarchivedmedia.HLSTimestampRange{StartTimestamp: awsv1.Time(from.Add(-3 * time.Hour)), EndTimestamp: awsv1.Time(from.Add(-2 * time.Hour))},
		},
	})
	if !errors.As(err, &rf) || rf.Code() != kinesisvideoarchivedmedia.ErrCodeResourceNotFoundException || rf.StatusCode() != 404 {
		t.Errorf("no fragments in the range: %v", err)
	}
}

// isRun reports whether part is a contiguous run of all.
func isRun(all, part []string) bool {
	for start := range all {
		if start+len(part) <= len(all) && strings.Join(all[start:start+len(part)], ",") == strings.Join(part, ",") {
			return true
		}
	}
	return false
}
