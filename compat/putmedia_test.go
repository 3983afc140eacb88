package compat

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	credsv1 "github.com/aws/aws-sdk-go/aws/credentials"
	v4 "github.com/aws/aws-sdk-go/aws/signer/v4"
)

// presign is a URL for POST endpoint+path signed with the v1 SDK's SigV4
// signer in its query string: SignedHeaders=host, valid for expires from at.
// The v1 signer signs the empty body's hash, since it is given none. It is
// what a producer that cannot sign (ffmpeg) is given.
func (s *server) presign(t *testing.T, key keyPair, endpoint, path string, at time.Time, expires time.Duration) string {
	t.Helper()
	u, h := s.presignWith(t, key, endpoint, path, at, expires, false)
	if len(h) != 0 || !strings.Contains(u, "X-Amz-SignedHeaders=host&") {
		t.Fatalf("the v1 signer's presigned URL %s signs headers %v besides host", u, h)
	}
	return u
}

// presignWith presigns as presign does or, with unsignedPayload, signs
// UNSIGNED-PAYLOAD, which the v1 signer then puts in a signed header the
// caller must send (returned).
func (s *server) presignWith(t *testing.T, key keyPair, endpoint, path string, at time.Time, expires time.Duration, unsignedPayload bool) (string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer := v4.NewSigner(credsv1.NewStaticCredentials(key.ID, key.Secret, ""), func(sg *v4.Signer) { sg.UnsignedPayload = unsignedPayload })
	h, err := signer.Presign(req, nil, "kinesisvideo", s.Region, expires, at)
	if err != nil {
		t.Fatalf("presign: %v", err)
	}
	u := req.URL.String()
	if !strings.Contains(u, "X-Amz-Signature=") {
		t.Fatalf("the v1 signer's presigned URL %s has no X-Amz-Signature", u)
	}
	return u, h
}

// ackEvent is one PutMedia acknowledgement, the service's field names.
type ackEvent struct {
	EventType        string
	FragmentTimecode int64
	FragmentNumber   string
	ErrorId          int //nolint:revive // the service's spelling
}

// putMediaHeaders are a PutMedia session's headers for stream; start, when
// not zero, makes the cluster timecodes RELATIVE to it.
func putMediaHeaders(stream string, start time.Time) map[string]string {
	h := map[string]string{"x-amzn-stream-name": stream, "x-amzn-fragment-timecode-type": "ABSOLUTE"}
	if !start.IsZero() {
		h["x-amzn-fragment-timecode-type"] = "RELATIVE"
		ms := start.UnixMilli()
		h["x-amzn-producer-start-timestamp"] = fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
	}
	return h
}

// putMedia POSTs body (chunked: its length is unknown) to the presigned url
// and returns the acknowledgements the server streams back until it ends the
// response.
func putMedia(t *testing.T, url string, headers map[string]string, body io.Reader) []ackEvent {
	t.Helper()
	ctx := testContext(t, 90*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PutMedia: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PutMedia: %s %s: %s", resp.Status, resp.Header.Get("x-amzn-ErrorType"), b)
	}
	acks, err := readAcks(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return acks
}

// readAcks reads acknowledgements, one JSON object a line, to the end.
func readAcks(r io.Reader) ([]ackEvent, error) {
	var acks []ackEvent
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var ev ackEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return acks, fmt.Errorf("PutMedia acknowledgement %q is not JSON: %v", line, err)
		}
		acks = append(acks, ev)
	}
	if err := sc.Err(); err != nil {
		return acks, fmt.Errorf("reading PutMedia's acknowledgements: %w", err)
	}
	return acks, nil
}

// checkAcks checks that every cluster of the MKV that was sent was
// acknowledged BUFFERING, RECEIVED and PERSISTED in that order under one
// fragment number, and returns the fragment numbers by fragment timecode
// (the cluster timecode plus offset).
func checkAcks(t *testing.T, acks []ackEvent, sent []mkvCluster, offset int64) map[int64]string {
	t.Helper()
	type state struct {
		events []string
		number string
	}
	byTC := map[int64]*state{}
	for _, ev := range acks {
		switch ev.EventType {
		case "IDLE":
			continue
		case "ERROR":
			t.Errorf("ERROR acknowledgement: %+v", ev)
			continue
		case "BUFFERING", "RECEIVED", "PERSISTED":
		default:
			t.Errorf("acknowledgement with EventType %q: %+v", ev.EventType, ev)
			continue
		}
		st := byTC[ev.FragmentTimecode]
		if st == nil {
			st = &state{}
			byTC[ev.FragmentTimecode] = st
		}
		st.events = append(st.events, ev.EventType)
		if ev.ErrorId != 0 {
			t.Errorf("%s acknowledgement with ErrorId %d", ev.EventType, ev.ErrorId)
		}
		// The service numbers a fragment when it has received it; this server
		// numbers it when it stores it, so RECEIVED may come without one.
		if ev.EventType == "BUFFERING" || (ev.EventType == "RECEIVED" && ev.FragmentNumber == "") {
			continue
		}
		if _, err := strconv.ParseUint(ev.FragmentNumber, 10, 64); err != nil {
			t.Errorf("%s acknowledgement's FragmentNumber %q is not a decimal string", ev.EventType, ev.FragmentNumber)
		}
		if st.number != "" && st.number != ev.FragmentNumber {
			t.Errorf("fragment at %d: FragmentNumber %q, then %q", ev.FragmentTimecode, st.number, ev.FragmentNumber)
		}
		st.number = ev.FragmentNumber
	}
	numbers := map[int64]string{}
	seen := map[string]bool{}
	for _, c := range sent {
		tc := c.Timecode + offset
		st := byTC[tc]
		if st == nil {
			t.Errorf("cluster at %d (fragment timecode %d) was not acknowledged", c.Timecode, tc)
			continue
		}
		if got := strings.Join(st.events, ","); got != "BUFFERING,RECEIVED,PERSISTED" {
			t.Errorf("fragment at %d: events %s, want BUFFERING,RECEIVED,PERSISTED", tc, got)
		}
		if seen[st.number] {
			t.Errorf("fragment number %s acknowledged for two clusters", st.number)
		}
		seen[st.number] = true
		numbers[tc] = st.number
		delete(byTC, tc)
	}
	for tc, st := range byTC {
		t.Errorf("acknowledgements %v for fragment timecode %d, which no cluster has", st.events, tc)
	}
	return numbers
}

// relay is a TCP hop between a producer and the server, standing where a
// load balancer would: it passes the producer's request through unchanged
// (the presigned URL names the relay's address, so the signed Host is
// right) and keeps the server's answer, the acknowledgements, for the test
// instead of passing it back. A producer that never reads its response,
// such as ffmpeg's HTTP output, then closes cleanly, at full speed too:
// closing a socket with unread data resets the connection, discarding what
// is still in its send buffer (see TestPutMediaFFmpegDirect).
type relay struct {
	URL  string // http://<relay address>
	acks chan relayResult
}

type relayResult struct {
	acks []ackEvent
	err  error
}

// startRelay relays one connection to the server at target (a base URL).
func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &relay{URL: "http://" + ln.Addr().String(), acks: make(chan relayResult, 1)}
	go func() {
		in, err := ln.Accept()
		if err != nil {
			r.acks <- relayResult{err: err}
			return
		}
		defer in.Close()
		up, err := net.Dial("tcp", strings.TrimPrefix(target, "http://"))
		if err != nil {
			r.acks <- relayResult{err: err}
			return
		}
		defer up.Close()
		go func() { _, _ = io.Copy(up, in) }() // until the producer closes; the server's side stays open
		resp, err := http.ReadResponse(bufio.NewReader(up), nil)
		if err != nil {
			r.acks <- relayResult{err: fmt.Errorf("relay: reading the server's answer: %w", err)}
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			r.acks <- relayResult{err: fmt.Errorf("PutMedia: %s %s: %s", resp.Status, resp.Header.Get("x-amzn-ErrorType"), b)}
			return
		}
		acks, err := readAcks(resp.Body)
		r.acks <- relayResult{acks: acks, err: err}
	}()
	return r
}

// wait returns the acknowledgements the server sent until it ended its
// answer.
func (r *relay) wait(t *testing.T, d time.Duration) []ackEvent {
	t.Helper()
	select {
	case res := <-r.acks:
		if res.err != nil {
			t.Fatal(res.err)
		}
		return res.acks
	case <-time.After(d):
		t.Fatalf("the server did not end its PutMedia answer within %v", d)
		return nil
	}
}
