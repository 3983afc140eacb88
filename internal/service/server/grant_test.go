package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/internal/testkit/poll"
	"github.com/sensorium-io/sensorium/sdk"
)

// The keys of the grant tests: one without a grant, and three narrowed by
// streams = and actions = lines.
var (
	grantAdmin  = awsauth.Key{AccessKeyID: "AKIDGRANTADMIN0001", SecretAccessKey: "admin-secret-0123456789", Profile: "admin"}
	grantCtl    = awsauth.Key{AccessKeyID: "AKIDGRANTCTL000001", SecretAccessKey: "ctl-secret-0123456789", Profile: "ctl"}
	grantProd   = awsauth.Key{AccessKeyID: "AKIDGRANTPROD00001", SecretAccessKey: "prod-secret-0123456789", Profile: "prod"}
	grantReader = awsauth.Key{AccessKeyID: "AKIDGRANTREADER001", SecretAccessKey: "reader-secret-0123456789", Profile: "reader"}
)

const grantCredentials = `[admin]
aws_access_key_id = AKIDGRANTADMIN0001
aws_secret_access_key = admin-secret-0123456789

# every action, on the cam-* streams
[ctl]
aws_access_key_id = AKIDGRANTCTL000001
aws_secret_access_key = ctl-secret-0123456789
streams = cam-*

# a producer of one stream
[prod]
aws_access_key_id = AKIDGRANTPROD00001
aws_secret_access_key = prod-secret-0123456789
streams = cam-1
actions = PutMedia

# a reader of one stream
[reader]
aws_access_key_id = AKIDGRANTREADER001
aws_secret_access_key = reader-secret-0123456789
streams = cam-1
actions = Get*, List*, Query
`

// startGrantServer runs a server with grantCredentials (and Flight when
// flight is set) and the streams cam-1, cam-2 and other, each holding one
// fragment of the test signal; it returns the server and its log.
func startGrantServer(t *testing.T, flight bool) (*Server, *lockedBuffer) {
	t.Helper()
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte(grantCredentials), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cfg := Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Credentials: creds,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if flight {
		cfg.FlightListen = "127.0.0.1:0"
	}
	srv, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	origin := time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano()
	for _, name := range []string{"cam-1", "cam-2", "other"} {
		if st, typ, body := signedCall(t, srv, grantAdmin, "createStream", map[string]any{"StreamName": name, "DataRetentionInHours": 1}); st != http.StatusOK {
			t.Fatalf("admin CreateStream %s: %d %s %s", name, st, typ, body)
		}
		st, typ, evs := grantPutMedia(t, srv, grantAdmin, name, scalarFragment(t, origin, 0, 5), false)
		if st != http.StatusOK || len(evs) == 0 || evs[len(evs)-1].EventType != wire.EventPersisted {
			t.Fatalf("admin PutMedia %s: %d %s %+v", name, st, typ, evs)
		}
	}
	return srv, logs
}

// signedCall posts a JSON body to an operation, signed with key.
func signedCall(t *testing.T, srv *Server, key awsauth.Key, op string, body any) (int, string, []byte) {
	t.Helper()
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, srv.HTTPURL()+"/"+op, bytes.NewReader(j))
	if err := awsauth.Sign(req, key, "us-east-1", j, time.Now()); err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// presignedCall posts a JSON body to a URL presigned by key.
func presignedCall(t *testing.T, srv *Server, key awsauth.Key, op string, body any) (int, string, []byte) {
	t.Helper()
	u, _ := http.NewRequest(http.MethodPost, srv.HTTPURL()+"/"+op, nil)
	if err := awsauth.Presign(u, key, "us-east-1", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, u.URL.String(), bytes.NewReader(j))
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, string, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), out
}

// grantPutMedia sends one PutMedia session signed by key (presigned when
// presign is set) and returns its status, error type and events.
func grantPutMedia(t *testing.T, srv *Server, key awsauth.Key, stream string, body []byte, presign bool) (int, string, []wire.AckEvent) {
	t.Helper()
	u := srv.HTTPURL() + "/putMedia"
	if presign {
		p, _ := http.NewRequest(http.MethodPost, u, nil)
		if err := awsauth.Presign(p, key, "us-east-1", time.Now(), time.Hour); err != nil {
			t.Fatal(err)
		}
		u = p.URL.String()
	}
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("x-amzn-stream-name", stream)
	if !presign {
		if err := awsauth.SignUnsignedPayload(req, key, "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var evs []wire.AckEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && resp.StatusCode == http.StatusOK {
		var ev wire.AckEvent
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.EventType != "" && ev.EventType != wire.EventIdle {
			evs = append(evs, ev)
		}
	}
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), evs
}

// Every operation of the HTTP API, for each kind of grant, allowed and
// refused: 403 AccessDeniedException with the service's JSON error body,
// before the stream is touched.
func TestGrantHTTPAPI(t *testing.T) {
	srv, logs := startGrantServer(t, false)
	describe := func(name string) httpwire.StreamInfo {
		_, _, b := signedCall(t, srv, grantAdmin, "describeStream", map[string]string{"StreamName": name})
		var out httpwire.DescribeStreamOutput
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out.StreamInfo
	}
	firstFragment := func(name string) string {
		_, _, b := signedCall(t, srv, grantAdmin, "listFragments", map[string]string{"StreamName": name})
		var out httpwire.ListFragmentsOutput
		if err := json.Unmarshal(b, &out); err != nil || len(out.Fragments) == 0 {
			t.Fatalf("admin ListFragments %s: %s", name, b)
		}
		return out.Fragments[0].FragmentNumber
	}
	no := false
	getMedia := func(name string) map[string]any {
		return map[string]any{"StreamName": name, "StartSelector": map[string]string{"StartSelectorType": "EARLIEST"}, "Follow": &no}
	}
	q := func(name string) map[string]any {
		return map[string]any{"stream": name, "start": 0, "end": time.Now().UnixNano()}
	}
	cases := []struct {
		name string
		key  awsauth.Key
		op   string
		body func() any
		want int // 200, or 403 AccessDeniedException
	}{
		// ctl: every action on cam-*.
		{"ctl creates a cam stream", grantCtl, "createStream", func() any { return map[string]any{"StreamName": "cam-9", "DataRetentionInHours": 1} }, 200},
		{"ctl creates another stream", grantCtl, "createStream", func() any { return map[string]any{"StreamName": "new-9", "DataRetentionInHours": 1} }, 403},
		{"ctl describes cam-2", grantCtl, "describeStream", func() any { return map[string]string{"StreamName": "cam-2"} }, 200},
		{"ctl describes other", grantCtl, "describeStream", func() any { return map[string]string{"StreamName": "other"} }, 403},
		{"ctl describes other by ARN", grantCtl, "describeStream", func() any { return map[string]string{"StreamARN": describe("other").StreamARN} }, 403},
		{"ctl describes a missing stream outside its grant", grantCtl, "describeStream", func() any { return map[string]string{"StreamName": "nothing"} }, 403},
		{"ctl updates cam-2", grantCtl, "updateStream", func() any {
			return map[string]string{"StreamName": "cam-2", "CurrentVersion": describe("cam-2").Version, "DeviceName": "d"}
		}, 200},
		{"ctl updates other", grantCtl, "updateStream", func() any {
			return map[string]string{"StreamName": "other", "CurrentVersion": describe("other").Version, "DeviceName": "d"}
		}, 403},
		{"ctl raises cam-2's retention", grantCtl, "updateDataRetention", func() any {
			return map[string]any{"StreamName": "cam-2", "CurrentVersion": describe("cam-2").Version, "Operation": "INCREASE_DATA_RETENTION", "DataRetentionChangeInHours": 1}
		}, 200},
		{"ctl raises other's retention", grantCtl, "updateDataRetention", func() any {
			return map[string]any{"StreamName": "other", "CurrentVersion": describe("other").Version, "Operation": "INCREASE_DATA_RETENTION", "DataRetentionChangeInHours": 1}
		}, 403},
		{"ctl tags cam-2", grantCtl, "tagStream", func() any { return map[string]any{"StreamName": "cam-2", "Tags": map[string]string{"a": "b"}} }, 200},
		{"ctl tags other", grantCtl, "tagStream", func() any { return map[string]any{"StreamName": "other", "Tags": map[string]string{"a": "b"}} }, 403},
		{"ctl untags cam-2", grantCtl, "untagStream", func() any { return map[string]any{"StreamName": "cam-2", "TagKeyList": []string{"a"}} }, 200},
		{"ctl untags other", grantCtl, "untagStream", func() any { return map[string]any{"StreamName": "other", "TagKeyList": []string{"a"}} }, 403},
		{"ctl lists cam-2's tags", grantCtl, "listTagsForStream", func() any { return map[string]string{"StreamName": "cam-2"} }, 200},
		{"ctl lists other's tags", grantCtl, "listTagsForStream", func() any { return map[string]string{"StreamName": "other"} }, 403},
		{"ctl asks cam-2's endpoint", grantCtl, "getDataEndpoint", func() any { return map[string]string{"StreamName": "cam-2", "APIName": "GET_MEDIA"} }, 200},
		{"ctl asks other's endpoint", grantCtl, "getDataEndpoint", func() any { return map[string]string{"StreamName": "other", "APIName": "GET_MEDIA"} }, 403},
		{"ctl deletes cam-9", grantCtl, "deleteStream", func() any { return map[string]string{"StreamARN": describe("cam-9").StreamARN} }, 200},
		{"ctl deletes other", grantCtl, "deleteStream", func() any { return map[string]string{"StreamARN": describe("other").StreamARN} }, 403},
		// prod: PutMedia on cam-1 only.
		{"prod lists streams", grantProd, "listStreams", func() any { return map[string]any{} }, 403},
		{"prod describes cam-1", grantProd, "describeStream", func() any { return map[string]string{"StreamName": "cam-1"} }, 403},
		{"prod reads cam-1", grantProd, "getMedia", func() any { return getMedia("cam-1") }, 403},
		// reader: Get*, List*, Query on cam-1.
		{"reader GetMedia cam-1", grantReader, "getMedia", func() any { return getMedia("cam-1") }, 200},
		{"reader GetMedia cam-2", grantReader, "getMedia", func() any { return getMedia("cam-2") }, 403},
		{"reader ListFragments cam-1", grantReader, "listFragments", func() any { return map[string]string{"StreamName": "cam-1"} }, 200},
		{"reader ListFragments cam-2", grantReader, "listFragments", func() any { return map[string]string{"StreamName": "cam-2"} }, 403},
		{"reader ListFragments cam-2 by ARN", grantReader, "listFragments", func() any { return map[string]string{"StreamARN": describe("cam-2").StreamARN} }, 403},
		{"reader GetMediaForFragmentList cam-1", grantReader, "getMediaForFragmentList", func() any {
			return map[string]any{"StreamName": "cam-1", "Fragments": []string{firstFragment("cam-1")}}
		}, 200},
		{"reader GetMediaForFragmentList cam-2", grantReader, "getMediaForFragmentList", func() any {
			return map[string]any{"StreamName": "cam-2", "Fragments": []string{firstFragment("cam-2")}}
		}, 403},
		{"reader queries cam-1", grantReader, "v1/query", func() any { return q("cam-1") }, 200},
		{"reader queries cam-2", grantReader, "v1/query", func() any { return q("cam-2") }, 403},
		{"reader queries cam-1 and cam-2", grantReader, "v1/query", func() any {
			return map[string]any{"streams": []string{"cam-1", "cam-2"}, "start": 0, "end": time.Now().UnixNano()}
		}, 403},
		{"reader describes cam-1", grantReader, "describeStream", func() any { return map[string]string{"StreamName": "cam-1"} }, 403},
		{"reader deletes cam-1", grantReader, "deleteStream", func() any { return map[string]string{"StreamName": "cam-1"} }, 403},
		// admin: no grant lines, everything.
		{"admin queries other", grantAdmin, "v1/query", func() any { return q("other") }, 200},
		{"admin describes other", grantAdmin, "describeStream", func() any { return map[string]string{"StreamName": "other"} }, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, typ, body := signedCall(t, srv, c.key, c.op, c.body())
			switch c.want {
			case 200:
				if status != http.StatusOK {
					t.Fatalf("%d %s %.300s, want 200", status, typ, body)
				}
			case 403:
				var e httpwire.ErrorBody
				if status != http.StatusForbidden || typ != httpwire.AccessDenied || json.Unmarshal(body, &e) != nil ||
					e.Type != httpwire.AccessDenied || !strings.Contains(e.Message, "not granted") {
					t.Fatalf("%d %s %.300s, want 403 AccessDeniedException with its JSON body", status, typ, body)
				}
			}
		})
	}
	// Nothing a refusal named was changed.
	if info := describe("other"); info.DeviceName != "" || info.DataRetentionInHours != 1 || info.Status != "ACTIVE" {
		t.Fatalf("other changed by refused calls: %+v", info)
	}
	// ListStreams shows a key the streams it may see, and no other.
	for _, c := range []struct {
		key  awsauth.Key
		want []string
	}{{grantAdmin, []string{"cam-1", "cam-2", "other"}}, {grantCtl, []string{"cam-1", "cam-2"}}, {grantReader, []string{"cam-1"}}} {
		for _, page := range []int{1, 2, 100} {
			var got []string
			token := ""
			for range 10 {
				body := map[string]any{"MaxResults": page}
				if token != "" {
					body["NextToken"] = token
				}
				status, typ, b := signedCall(t, srv, c.key, "listStreams", body)
				var out httpwire.ListStreamsOutput
				if status != http.StatusOK || json.Unmarshal(b, &out) != nil {
					t.Fatalf("%s ListStreams: %d %s %s", c.key.Profile, status, typ, b)
				}
				for _, s := range out.StreamInfoList {
					got = append(got, s.StreamName)
				}
				if token = out.NextToken; token == "" {
					break
				}
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("%s ListStreams by pages of %d: %v, want %v", c.key.Profile, page, got, c.want)
			}
		}
	}
	log := logs.String()
	if !strings.Contains(log, "AccessDeniedException") || !strings.Contains(log, grantReader.AccessKeyID) {
		t.Fatalf("refusals are not logged with their key:\n%s", log)
	}
	for _, k := range []awsauth.Key{grantAdmin, grantCtl, grantProd, grantReader} {
		if strings.Contains(log, k.SecretAccessKey) {
			t.Fatalf("the log holds %s's secret", k.Profile)
		}
	}
}

// PutMedia, signed or through a presigned URL, is held to the grant of the
// key that signed it: into its stream it is PERSISTED, into another (or by
// a key without PutMedia) it is refused before a byte is stored.
func TestGrantPutMediaAndPresignedURLs(t *testing.T) {
	srv, _ := startGrantServer(t, false)
	origin := time.Now().Add(-30 * time.Minute).Truncate(time.Second).UnixNano()
	cases := []struct {
		name    string
		key     awsauth.Key
		stream  string
		presign bool
		allowed bool
	}{
		{"prod signed into cam-1", grantProd, "cam-1", false, true},
		{"prod presigned into cam-1", grantProd, "cam-1", true, true},
		{"prod signed into cam-2", grantProd, "cam-2", false, false},
		{"prod presigned into cam-2", grantProd, "cam-2", true, false},
		{"reader presigned into cam-1", grantReader, "cam-1", true, false},
		{"ctl presigned into cam-2", grantCtl, "cam-2", true, true},
		{"ctl presigned into other", grantCtl, "other", true, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			frag := scalarFragment(t, origin, int64(i+1)*1000, 2)
			status, typ, evs := grantPutMedia(t, srv, c.key, c.stream, frag, c.presign)
			if c.allowed {
				if status != http.StatusOK || len(evs) == 0 || evs[len(evs)-1].EventType != wire.EventPersisted {
					t.Fatalf("%d %s %+v, want PERSISTED", status, typ, evs)
				}
				return
			}
			if status != http.StatusForbidden || typ != httpwire.AccessDenied {
				t.Fatalf("%d %s %+v, want 403 AccessDeniedException", status, typ, evs)
			}
		})
	}
	// The refused sessions stored nothing: cam-2 holds its first fragment and
	// ctl's, other only its first.
	for stream, want := range map[string]int{"cam-1": 3, "cam-2": 2, "other": 1} {
		_, _, b := signedCall(t, srv, grantAdmin, "listFragments", map[string]string{"StreamName": stream})
		var out httpwire.ListFragmentsOutput
		if err := json.Unmarshal(b, &out); err != nil || len(out.Fragments) != want {
			t.Fatalf("%s holds %d fragments (%s), want %d", stream, len(out.Fragments), b, want)
		}
	}
	// A presigned read beyond its key's grant: the reader's URL for cam-1
	// works, the same key's URL for cam-2 is refused.
	for stream, want := range map[string]int{"cam-1": http.StatusOK, "cam-2": http.StatusForbidden} {
		status, typ, body := presignedCall(t, srv, grantReader, "listFragments", map[string]string{"StreamName": stream})
		if status != want || (want == http.StatusForbidden && typ != httpwire.AccessDenied) {
			t.Fatalf("reader's presigned ListFragments of %s: %d %s %s, want %d", stream, status, typ, body, want)
		}
	}
	// Keys without a grant keep doing everything, signed or presigned.
	if status, typ, body := presignedCall(t, srv, grantAdmin, "deleteStream", map[string]string{"StreamName": "other"}); status != http.StatusOK {
		t.Fatalf("admin's presigned DeleteStream: %d %s %s", status, typ, body)
	}
}

// Flight holds a key to its grant as the HTTP API does: ListFlights shows
// its streams only (and needs ListStreams), GetFlightInfo, GetSchema and
// DoGet of a stream outside it are PermissionDenied — a ticket written by
// hand too, since a ticket is only a query's JSON.
func TestGrantFlight(t *testing.T) {
	srv, _ := startGrantServer(t, true)
	conn, err := grpc.NewClient(strings.TrimPrefix(srv.FlightURL(), "grpc+tcp://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fc := flight.NewClientFromConn(conn, nil)
	ctx := context.Background()
	as := func(k awsauth.Key) context.Context {
		c, err := fc.AuthenticateBasicToken(ctx, k.AccessKeyID, k.SecretAccessKey)
		if err != nil {
			t.Fatalf("%s Handshake: %v", k.Profile, err)
		}
		return c
	}
	listed := func(ctx context.Context) ([]string, error) {
		s, err := fc.ListFlights(ctx, &flight.Criteria{})
		if err != nil {
			return nil, err
		}
		var names []string
		for {
			info, err := s.Recv()
			if err == io.EOF {
				return names, nil
			}
			if err != nil {
				return names, err
			}
			names = append(names, info.FlightDescriptor.Path...)
		}
	}
	cmd := func(stream string) []byte {
		b, _ := json.Marshal(map[string]any{"stream": stream, "start": 0, "end": time.Now().UnixNano(), "partitions": 1})
		return b
	}
	doGet := func(ctx context.Context, ticket []byte) (int, error) {
		s, err := fc.DoGet(ctx, &flight.Ticket{Ticket: ticket})
		if err != nil {
			return 0, err
		}
		for n := 0; ; n++ {
			if _, err := s.Recv(); err != nil {
				if err == io.EOF {
					return n, nil
				}
				return n, err
			}
		}
	}
	denied := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "AccessDeniedException") {
			t.Fatalf("%s: %v, want PermissionDenied (AccessDeniedException)", what, err)
		}
	}

	for _, c := range []struct {
		key  awsauth.Key
		want []string
	}{{grantAdmin, []string{"cam-1", "cam-2", "other"}}, {grantCtl, []string{"cam-1", "cam-2"}}, {grantReader, []string{"cam-1"}}} {
		if got, err := listed(as(c.key)); err != nil || !slices.Equal(got, c.want) {
			t.Fatalf("%s ListFlights: %v %v, want %v", c.key.Profile, got, err, c.want)
		}
	}
	_, err = listed(as(grantProd))
	denied("prod ListFlights", err)

	reader := as(grantReader)
	info, err := fc.GetFlightInfo(reader, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd("cam-1")})
	if err != nil || len(info.Endpoint) != 1 {
		t.Fatalf("reader GetFlightInfo cam-1: %v %v", info, err)
	}
	if n, err := doGet(reader, info.Endpoint[0].Ticket.Ticket); err != nil || n < 2 {
		t.Fatalf("reader DoGet cam-1: %d messages, %v", n, err)
	}
	if _, err := fc.GetSchema(reader, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd("cam-1")}); err != nil {
		t.Fatalf("reader GetSchema cam-1: %v", err)
	}
	_, err = fc.GetFlightInfo(reader, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd("cam-2")})
	denied("reader GetFlightInfo cam-2", err)
	_, err = fc.GetSchema(reader, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd("cam-2")})
	denied("reader GetSchema cam-2", err)
	_, err = doGet(reader, cmd("cam-2"))
	denied("reader DoGet of a hand-written cam-2 ticket", err)
	two, _ := json.Marshal(map[string]any{"streams": []string{"cam-1", "other"}, "start": 0, "end": time.Now().UnixNano()})
	_, err = doGet(reader, two)
	denied("reader DoGet of cam-1 and other", err)
	// A ticket the reader was given is no use to a key without Query.
	_, err = doGet(as(grantProd), info.Endpoint[0].Ticket.Ticket)
	denied("prod DoGet of the reader's ticket", err)
	// Basic credentials on the call are held to the same grant.
	basic := metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(grantReader.AccessKeyID+":"+grantReader.SecretAccessKey)))
	_, err = doGet(basic, cmd("other"))
	denied("reader DoGet of other with Basic credentials", err)
	if n, err := doGet(as(grantAdmin), cmd("other")); err != nil || n < 2 {
		t.Fatalf("admin DoGet other: %d messages, %v", n, err)
	}
}

// natsClient connects as a key, with its own inbox prefix, and collects the
// asynchronous errors (permissions violations) the server reports to it.
type natsClient struct {
	*nats.Conn
	mu   sync.Mutex
	errs []string
}

func (c *natsClient) violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.errs)
}

func connectAs(t *testing.T, srv *Server, k awsauth.Key, inbox string) *natsClient {
	t.Helper()
	c := &natsClient{}
	nc, err := nats.Connect(srv.NATSURL(), nats.UserInfo(k.AccessKeyID, k.SecretAccessKey), nats.CustomInboxPrefix(inbox),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.errs = append(c.errs, strings.ToLower(err.Error()))
			c.mu.Unlock()
		}))
	if err != nil {
		t.Fatalf("%s connects to NATS: %v", k.Profile, err)
	}
	t.Cleanup(nc.Close)
	c.Conn = nc
	return c
}

// waitViolation waits until the server has reported a permissions
// violation on a subject to the client.
func waitViolation(t *testing.T, c *natsClient, subject string) {
	t.Helper()
	poll.Until(t, 5*time.Second, 10*time.Millisecond, func() error {
		for _, e := range c.violations() {
			if strings.Contains(e, "permissions violation") && strings.Contains(e, strings.ToLower(subject)) {
				return nil
			}
		}
		return fmt.Errorf("no permissions violation for %s yet: %v", subject, c.violations())
	})
}

// The NATS login a key is given follows its grant: it publishes fragments
// into its streams and no other, subscribes to its streams' subjects only,
// and to its own inboxes, so that one producer does not receive another's
// publish acknowledgements. A grant turns NATS authentication on.
func TestGrantNATS(t *testing.T) {
	srv, logs := startGrantServer(t, false)
	if nc, err := nats.Connect(srv.NATSURL()); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected to NATS although the keys carry grants")
	}
	if !strings.Contains(logs.String(), "[ctl] streams = cam-*") {
		t.Fatalf("start-up does not say that ctl's cam-* has no NATS form:\n%s", logs.String())
	}
	ctx := context.Background()
	origin := time.Now().Add(-20 * time.Minute).Truncate(time.Second).UnixNano()
	// wait bounds the wait for PERSISTED: a refused publish never gets it.
	produce := func(nc *nats.Conn, stream string, first int64, wait time.Duration) error {
		track, _ := sdk.ScalarTrack(1, "v", pumpDesc)
		p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: stream, Tracks: []sdk.Track{track}})
		if err != nil {
			return err
		}
		w, _ := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: origin + first*int64(time.Millisecond)})
		if err := w.WriteFloat32(ctx, make([]float32, 3*2000)); err != nil {
			return err
		}
		if err := w.Flush(ctx); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		return p.Close(cctx)
	}
	prodInbox := natsembed.UserInboxPrefix(grantProd.AccessKeyID)
	adminInbox := natsembed.UserInboxPrefix(grantAdmin.AccessKeyID)

	// The reader (GetMedia on cam-1) follows cam-1's live frames; cam-2's
	// are not its to read, nor may it publish a fragment.
	reader := connectAs(t, srv, grantReader, "_INBOX_reader")
	live, err := reader.SubscribeSync("sensorium.live.cam-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reader.SubscribeSync("sensorium.live.cam-2"); err != nil {
		t.Fatal(err)
	}
	_ = reader.Publish("sensorium.frag.cam-1", []byte("not a fragment"))
	_ = reader.Flush()
	waitViolation(t, reader, "sensorium.live.cam-2")
	waitViolation(t, reader, "sensorium.frag.cam-1")

	// A spy with prod's key tries every other inbox: the admin's, the
	// shared _INBOX, everything.
	spy := connectAs(t, srv, grantProd, prodInbox)
	var mu sync.Mutex
	var seen []string
	for _, subj := range []string{adminInbox + ".>", "_INBOX.>", ">"} {
		if _, err := spy.Subscribe(subj, func(m *nats.Msg) {
			mu.Lock()
			seen = append(seen, m.Subject)
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
	}
	_ = spy.Flush()
	waitViolation(t, spy, adminInbox)
	waitViolation(t, spy, "_inbox.>")

	// prod produces into cam-1 (its inbox gets its acknowledgements) and
	// is refused cam-2.
	prod := connectAs(t, srv, grantProd, prodInbox)
	if err := produce(prod.Conn, "cam-1", 0, 5*time.Second); err != nil {
		t.Fatalf("prod producing into cam-1 over NATS: %v", err)
	}
	if _, err := live.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("the reader saw no live frame of cam-1: %v", err)
	}
	if err := produce(prod.Conn, "cam-2", 10_000, 500*time.Millisecond); err == nil {
		t.Fatal("prod produced into cam-2 over NATS")
	}
	waitViolation(t, prod, "sensorium.frag.cam-2")
	// ctl's cam-* has no NATS form: refused, never widened.
	ctl := connectAs(t, srv, grantCtl, natsembed.UserInboxPrefix(grantCtl.AccessKeyID))
	_ = ctl.Publish("sensorium.frag.cam-1", []byte("x"))
	_ = ctl.Flush()
	waitViolation(t, ctl, "sensorium.frag.cam-1")

	// The admin (no grant) produces into any stream, logged in as the SDK
	// documents; none of its acknowledgements reach the spy.
	admin, err := nats.Connect(srv.NATSURL(), (&sdk.Credentials{AccessKeyID: grantAdmin.AccessKeyID, SecretAccessKey: grantAdmin.SecretAccessKey}).NATSOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := produce(admin, "other", 20_000, 5*time.Second); err != nil {
		t.Fatalf("admin producing into other over NATS: %v", err)
	}
	_ = spy.Flush()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) > 0 {
		t.Fatalf("prod's key received messages on %v", seen)
	}
	for stream, want := range map[string]int{"cam-1": 2, "cam-2": 1, "other": 2} {
		_, _, b := signedCall(t, srv, grantAdmin, "listFragments", map[string]string{"StreamName": stream})
		var out httpwire.ListFragmentsOutput
		if err := json.Unmarshal(b, &out); err != nil || len(out.Fragments) != want {
			t.Fatalf("%s holds %d fragments (%s), want %d", stream, len(out.Fragments), b, want)
		}
	}
}
