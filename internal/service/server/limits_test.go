package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/ingest"
	"github.com/sensorium-io/sensorium/internal/service/api"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/internal/service/throttle"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/store"
)

// GetMedia connections per stream are bounded: one past the limit is a
// ConnectionLimitExceededException, and a closed one frees its place.
func TestGetMediaConnectionLimit(t *testing.T) {
	srv, err := Start(context.Background(), Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Logger: testLogger(t), MaxMediaConnections: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	fill(t, srv, "cams", 1)
	client := sdk.NewClient(srv.HTTPURL(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var open []interface{ Close() error }
	for range 2 {
		body, err := client.GetMedia(ctx, sdk.ByName("cams"), sdk.StartNow(), true)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, body)
	}
	_, err = client.GetMedia(ctx, sdk.ByName("cams"), sdk.StartNow(), true)
	var apiErr *sdk.APIError
	if !errors.As(err, &apiErr) || apiErr.Name != "ConnectionLimitExceededException" {
		t.Fatalf("a third GetMedia: %v", err)
	}
	// Another stream is not affected.
	fill(t, srv, "other", 1)
	if body, err := client.GetMedia(ctx, sdk.ByName("other"), sdk.StartEarliest(), false); err != nil {
		t.Fatalf("GetMedia on another stream: %v", err)
	} else {
		body.Close()
	}
	open[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, err := client.GetMedia(ctx, sdk.ByName("cams"), sdk.StartNow(), true)
		if err == nil {
			body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a place did not free up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	open[1].Close()
}

// One producer id may feed several streams (a gateway's): JetStream dedupes
// message ids across the bus, so the ids must name the stream, or the second
// stream's fragments would vanish as duplicates of the first's.
func TestOneProducerIDManyStreams(t *testing.T) {
	srv := startServer(t, "")
	ctx := context.Background()
	_, nc := newStream(t, srv, "line-1", 1)
	client, _ := newStream(t, srv, "line-2", 1)
	for _, stream := range []string{"line-1", "line-2"} {
		track, _ := sdk.ScalarTrack(1, "v", pumpDesc)
		p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: stream, Tracks: []sdk.Track{track}, ProducerID: "gateway-7"})
		if err != nil {
			t.Fatal(err)
		}
		w, _ := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: time.Now().Add(-time.Minute).UnixNano()})
		if err := w.WriteFloat32(ctx, make([]float32, 3*3000)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := p.Close(cctx); err != nil {
			t.Fatalf("%s: %v", stream, err)
		}
		cancel()
	}
	for _, stream := range []string{"line-1", "line-2"} {
		frags, _, err := client.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName(stream), MaxResults: 100})
		if err != nil || len(frags) == 0 {
			t.Fatalf("%s: %d fragments (%v)", stream, len(frags), err)
		}
	}
}

// A request body past 1 MiB is refused before it is parsed.
func TestRequestBodyLimit(t *testing.T) {
	srv := startServer(t, "")
	status, typ, body := call(t, srv, "createStream", map[string]string{"StreamName": "x", "DeviceName": strings.Repeat("d", 2<<20)})
	if status != 400 || typ != "InvalidArgumentException" || !strings.Contains(string(body), "larger than") {
		t.Fatalf("a 2 MiB body: %d %s %s", status, typ, body)
	}
}

// docs/LIMITS.md states the defaults the code has: each row's default cell
// must hold the value computed from the code's constant.
func TestLimitsDocMatchesCode(t *testing.T) {
	b, err := os.ReadFile("../../../docs/LIMITS.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}     // first cell → second cell, spaces removed
	fullRows := map[string]string{} // first cell → the rest of the row
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		rows[strings.TrimSpace(cells[1])] = strings.ReplaceAll(cells[2], " ", "")
		fullRows[strings.TrimSpace(cells[1])] = strings.Join(cells[2:], "|")
	}
	l := ingest.DefaultLimits()
	mib := func(n int64) string { return fmt.Sprintf("%dMiB", n>>20) }
	rates := throttle.DefaultRates()
	// A call limit's row says its rate and its burst; a byte limit's, its
	// rate; each rate limit's row also names its flag and, per stream, its tag.
	callRate := func(lim throttle.Limit, r float64) string {
		source := "(theservice's)" // the media limits are the service's figures; the control plane's is ours
		if lim == throttle.ControlPlane {
			source = ""
		}
		return fmt.Sprintf("%v%s,upto%dat", r, source, throttle.Burst(lim, r))
	}
	byteRate := func(r float64) string { return fmt.Sprint(int64(r)) }
	for _, lim := range throttle.Limits {
		var row string
		for label, cells := range fullRows {
			if strings.Contains(cells, "--"+throttle.Flag(lim)+"`") {
				row = label
			}
		}
		switch {
		case row == "":
			t.Errorf("LIMITS.md has no row set with serve --%s", throttle.Flag(lim))
		case lim.Tag() != "" && !strings.Contains(fullRows[row], "`"+lim.Tag()+"`"):
			t.Errorf("LIMITS.md row %q does not name the stream tag %s", row, lim.Tag())
		}
	}
	for label, want := range map[string]string{
		"fragment size":                                        fmt.Sprintf("%dbytes", l.MaxFragmentSize),
		"fragment duration (timecode span)":                    fmt.Sprintf("%ds", int(l.MaxFragmentDuration.Seconds())),
		"frames per fragment":                                  fmt.Sprint(l.MaxFragmentFrames),
		"tracks per fragment":                                  fmt.Sprint(l.MaxTracks),
		"metadata tags per fragment":                           fmt.Sprint(l.MaxFragmentTags),
		"tag name or value":                                    fmt.Sprintf("%dbytes", l.MaxTagLength),
		"producer clock ahead of the server":                   fmt.Sprintf("%dh", int(l.MaxClockAhead.Hours())),
		"samples of one frame":                                 mib(codecs.MaxScalarFrameBytes),
		"NATS message (the embedded server's max payload)":     mib(natsembed.DefaultMaxPayload),
		"free disk below which the bus takes no new fragments": mib(ingest.DefaultDiskReserve),
		"streams":                   fmt.Sprint(store.DefaultStreamsLimit),
		"stream name":               fmt.Sprintf("1–%d", store.MaxStreamNameLen),
		"device name, media type":   fmt.Sprintf("%dcharacters", store.MaxDeviceNameLen),
		"KmsKeyId":                  fmt.Sprintf("%dcharacters", store.MaxKMSKeyIDLen),
		"tags per stream":           fmt.Sprintf("%d;key%d,value%dcharacters", store.MaxTagsPerStream, store.MaxTagKeyLen, store.MaxTagValueLen),
		"retention":                 fmt.Sprintf("0to%dhours", store.MaxRetentionHours),
		"PutMedia session duration": fmt.Sprintf("%dh", int(api.DefaultMaxPutMediaDuration.Hours())),
		"HTTP requests served at once (long-lived ones included; not `/healthz`)": fmt.Sprint(api.DefaultMaxRequests),
		"PutMedia calls per second per stream":                                    callRate(throttle.PutMediaConnections, rates.PutMediaConnections),
		"PutMedia body bytes per second per stream":                               byteRate(rates.PutMediaBytes),
		"GetMedia calls per second per stream":                                    callRate(throttle.GetMediaConnections, rates.GetMediaConnections),
		"GetMedia response bytes per second per connection":                       byteRate(rates.GetMediaBytes),
		"control-plane calls per second per server (every operation together)":    callRate(throttle.ControlPlane, rates.ControlPlane),
	} {
		got, ok := rows[label]
		if !ok {
			t.Errorf("LIMITS.md has no row %q", label)
			continue
		}
		if !strings.Contains(got, want) {
			t.Errorf("LIMITS.md row %q says %q; the code's default is %q", label, got, want)
		}
	}
	if store.MaxDeviceNameLen != store.MaxMediaTypeLen {
		t.Error("LIMITS.md gives device name and media type one length")
	}
}
