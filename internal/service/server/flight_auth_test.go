package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/flightauth"
	"github.com/sensorium-io/sensorium/sdk"
)

// With --credentials the Flight service takes the HTTP API's access keys:
// a Handshake with Basic credentials gives a bearer token that reads;
// nothing, a wrong secret or a forged or expired token is Unauthenticated.
func TestFlightRequiresCredentials(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[ml]\naws_access_key_id = "+authKeyID+"\naws_secret_access_key = "+authSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	srv, err := Start(context.Background(), Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", FlightListen: "127.0.0.1:0",
		Credentials: creds, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	ctx := context.Background()
	client := sdk.NewClientWithOptions(srv.HTTPURL(), sdk.ClientOptions{Credentials: &sdk.Credentials{AccessKeyID: authKeyID, SecretAccessKey: authSecret}})
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "pump-1", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	origin := time.Now().Add(-time.Minute).UnixNano()
	if ev := publish(t, nc, "pump-1", scalarFragment(t, origin, 0, 10), "p", 1); ev.EventType != wire.EventPersisted {
		t.Fatalf("fragment: %+v", ev)
	}
	conn, err := grpc.NewClient(strings.TrimPrefix(srv.FlightURL(), "grpc+tcp://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fc := flight.NewClientFromConn(conn, nil)

	listed := func(ctx context.Context) error {
		s, err := fc.ListFlights(ctx, &flight.Criteria{})
		if err != nil {
			return err
		}
		for {
			if _, err := s.Recv(); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	}
	unauthenticated := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("%s: %v, want Unauthenticated", what, err)
		}
	}
	unauthenticated("no credentials", listed(ctx))
	if _, err := fc.AuthenticateBasicToken(ctx, authKeyID, "not-the-secret-0123456789"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Handshake with a wrong secret: %v", err)
	}
	if _, err := fc.AuthenticateBasicToken(ctx, "AKIDSOMEONEELSE001", authSecret); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Handshake with an unknown key: %v", err)
	}
	authed, err := fc.AuthenticateBasicToken(ctx, authKeyID, authSecret)
	if err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	if err := listed(authed); err != nil {
		t.Fatalf("ListFlights with the bearer token: %v", err)
	}
	// GetFlightInfo and DoGet of a query, as a training worker does.
	cmd, _ := json.Marshal(map[string]any{"stream": "pump-1", "start": time.Unix(0, origin).UTC().Format(time.RFC3339Nano), "end": time.Unix(0, origin).Add(time.Second).UTC().Format(time.RFC3339Nano)})
	info, err := fc.GetFlightInfo(authed, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
	if err != nil {
		t.Fatalf("GetFlightInfo with the bearer token: %v", err)
	}
	if _, err := fc.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("GetFlightInfo without credentials: %v", err)
	}
	messages := 0
	for _, ep := range info.Endpoint {
		s, err := fc.DoGet(authed, ep.Ticket)
		if err != nil {
			t.Fatal(err)
		}
		for ; ; messages++ {
			if _, err := s.Recv(); err != nil {
				if err != io.EOF {
					t.Fatalf("DoGet with the bearer token: %v", err)
				}
				break
			}
		}
	}
	if messages < 2 {
		t.Fatalf("DoGet streamed %d messages, want the schema and a batch", messages)
	}
	basic := metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(authKeyID+":"+authSecret)))
	if err := listed(basic); err != nil {
		t.Fatalf("Basic credentials on the call itself: %v", err)
	}

	key := awsauth.Key{AccessKeyID: authKeyID, SecretAccessKey: authSecret}
	a := &flightauth.Authenticator{}
	bearer := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	unauthenticated("expired token", listed(bearer(a.Token(key, time.Now().Add(-time.Second)))))
	unauthenticated("token of another secret", listed(bearer(a.Token(awsauth.Key{AccessKeyID: authKeyID, SecretAccessKey: "forged-secret-0123456789"}, time.Now().Add(time.Hour)))))
	unauthenticated("garbage token", listed(bearer("garbage")))
	if err := listed(bearer(a.Token(key, time.Now().Add(time.Hour)))); err != nil {
		t.Fatalf("a token made with the key (as another replica would): %v", err)
	}

	log := logs.String()
	if !strings.Contains(log, "flight: call refused") || strings.Contains(log, authSecret) || strings.Contains(log, "not-the-secret") {
		t.Fatalf("refusals not logged, or logged with a secret:\n%s", log)
	}
}
