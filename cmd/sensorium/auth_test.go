package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/service/server"
	"github.com/sensorium-io/sensorium/mkv"
)

// The CLI signs its requests with the key the AWS CLI would use, and
// presigns a PutMedia URL for a producer that cannot sign.
func TestCLISignsAndPresigns(t *testing.T) {
	const id, secret = "AKIDCLITESTEXAMPLE", "cli-secret-0123456789abcdef"
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[ops]\naws_access_key_id = "+id+"\naws_secret_access_key = "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := server.Start(context.Background(), server.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	ep := srv.HTTPURL()
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")

	if code, stderr := runCLI(t, "stream", "create", "cam", "--retention-hours", "1", "--endpoint", ep, "--profile", "ops"); code != 0 {
		t.Fatalf("signed create: exit %d: %s", code, stderr)
	}
	if code, stderr := runCLI(t, "stream", "list", "--endpoint", ep); code != 1 || !strings.Contains(stderr, "MissingAuthenticationToken") {
		t.Fatalf("unsigned list: exit %d: %s", code, stderr)
	}
	t.Setenv("AWS_PROFILE", "ops")
	if code, stderr := runCLI(t, "stream", "list", "--endpoint", ep); code != 0 {
		t.Fatalf("list signed through $AWS_PROFILE: exit %d: %s", code, stderr)
	}
	if code, stderr := runCLI(t, "stream", "list", "--endpoint", ep, "--region", "eu-west-1"); code != 1 || !strings.Contains(stderr, "region") {
		t.Fatalf("signed for another region: exit %d: %s", code, stderr)
	}
	if code, stderr := runCLI(t, "stream", "list", "--endpoint", ep, "--profile", "nobody"); code != 2 || !strings.Contains(stderr, "no profile [nobody]") {
		t.Fatalf("unknown profile: exit %d: %s", code, stderr)
	}

	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"presign", "putMedia", "--stream", "cam", "--endpoint", ep, "--expires", "10m"}, &stdout, &stderr); code != 0 {
		t.Fatalf("presign: exit %d: %s", code, stderr.String())
	}
	url := strings.TrimSpace(stdout.String())
	if !strings.Contains(url, "X-Amz-Signature=") || !strings.Contains(url, "X-Amz-Expires=600") || strings.Contains(url, secret) {
		t.Fatalf("presigned URL %q", url)
	}
	now := uint64(time.Now().Add(-time.Minute).UnixMilli())
	b := mkv.AppendEBMLHeader(nil, "matroska")
	b = mkv.AppendSegmentStart(b)
	b = mkv.AppendInfo(b, mkv.Info{TimecodeScale: mkv.DefaultTimecodeScale})
	b = mkv.AppendTracks(b, []mkv.TrackEntry{{Number: 1, UID: 1, Type: mkv.TrackTypeMetadata, CodecID: "S_SENSORIUM/OPAQUE", CodecPrivate: []byte("x")}})
	b = mkv.AppendCluster(b, now, []mkv.Block{{Track: 1, Keyframe: true, Data: []byte("frame")}})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("x-amzn-stream-name", "cam")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	persisted := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev struct{ EventType string }
		_ = json.Unmarshal(sc.Bytes(), &ev)
		persisted = persisted || ev.EventType == "PERSISTED"
	}
	if resp.StatusCode != http.StatusOK || !persisted {
		t.Fatalf("PutMedia to the presigned URL: %d, PERSISTED %v", resp.StatusCode, persisted)
	}

	// The URL is bound to its stream: naming another breaks the signature.
	other, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	other.Header.Set("x-amzn-stream-name", "another")
	if resp, err := http.DefaultClient.Do(other); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the URL used for another stream: %v %v, want 403", resp, err)
	} else {
		resp.Body.Close()
	}
	for _, bad := range [][]string{
		{"presign", "putMedia", "--stream", "cam", "--endpoint", ep, "--expires", "200h"},
		{"presign", "putMedia", "--endpoint", ep},
		{"presign", "listStreams", "--stream", "cam", "--endpoint", ep},
		{"presign", "deleteStream", "--endpoint", ep},
		{"presign", "bogus", "--endpoint", ep},
	} {
		if code, _ := runCLI(t, bad...); code != 2 {
			t.Fatalf("%v: exit %d, want 2", bad, code)
		}
	}
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "absent"))
	if code, stderr := runCLI(t, "presign", "putMedia", "--stream", "cam", "--endpoint", ep); code != 2 || !strings.Contains(stderr, "needs an access key") {
		t.Fatalf("presign without a key: exit %d: %s", code, stderr)
	}
}
