package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/sdk"
)

// With --nats-auth, a producer may publish into its own streams only, read
// their acknowledgements, and nothing else; an unknown user cannot connect.
func TestNATSAuthorization(t *testing.T) {
	dir := t.TempDir()
	auth := filepath.Join(dir, "nats-auth.json")
	if err := os.WriteFile(auth, []byte(`{"users": [
		{"user": "gw-a", "password": "secret-a", "produce": ["line.a"]},
		{"user": "ml", "password": "secret-ml", "consume": ["*"]}
	]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := Start(context.Background(), Config{DataDir: filepath.Join(dir, "data"), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Logger: testLogger(t), NATSAuth: auth})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	client := sdk.NewClient(srv.HTTPURL(), nil)
	for _, name := range []string{"line.a", "line.b"} {
		if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: name, DataRetentionInHours: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nats.Connect(srv.NATSURL(), nats.UserInfo("gw-a", "wrong")); err == nil {
		t.Fatal("a wrong password connected")
	}
	if _, err := nats.Connect(srv.NATSURL()); err == nil {
		t.Fatal("an anonymous client connected")
	}
	var mu sync.Mutex
	var denied []error // from the client's callback goroutine
	nc, err := nats.Connect(srv.NATSURL(), nats.UserInfo("gw-a", "secret-a"), nats.CustomInboxPrefix("_INBOX_gw-a"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			denied = append(denied, err)
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	produce := func(stream string) error {
		track, _ := sdk.ScalarTrack(1, "v", pumpDesc)
		p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: stream, Tracks: []sdk.Track{track}})
		if err != nil {
			return err
		}
		w, _ := sdk.NewSampleWriter(p, 1, pumpDesc, sdk.SampleWriterOptions{Origin: time.Now().Add(-time.Minute).UnixNano()})
		if err := w.WriteFloat32(ctx, make([]float32, 3*2000)); err != nil {
			return err
		}
		if err := w.Flush(ctx); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return p.Close(cctx)
	}
	if err := produce("line.a"); err != nil {
		t.Fatalf("producing into its own stream: %v", err)
	}
	if err := produce("line.b"); err == nil {
		t.Fatal("gw-a produced into line.b")
	}
	frags, _, err := client.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("line.b"), MaxResults: 10})
	if err != nil || len(frags) != 0 {
		t.Fatalf("line.b holds %d fragments (%v)", len(frags), err)
	}
	mu.Lock()
	if len(denied) == 0 || !strings.Contains(strings.ToLower(denied[0].Error()), "permissions violation") {
		t.Errorf("no permissions violation reported: %v", denied)
	}
	mu.Unlock()
	// The consumer may read live frames but not publish fragments.
	ml, err := nats.Connect(srv.NATSURL(), nats.UserInfo("ml", "secret-ml"))
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Close()
	if _, err := ml.SubscribeSync("sensorium.live.line~a"); err != nil {
		t.Fatal(err)
	}
	if err := ml.Publish("sensorium.frag.line~a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := ml.Flush(); err == nil {
		time.Sleep(100 * time.Millisecond)
		if ml.LastError() == nil || !strings.Contains(strings.ToLower(ml.LastError().Error()), "permissions violation") {
			t.Errorf("the consumer published a fragment without a violation: %v", ml.LastError())
		}
	}
}

// A world-readable authorization file is refused.
func TestNATSAuthFileMode(t *testing.T) {
	dir := t.TempDir()
	auth := filepath.Join(dir, "nats-auth.json")
	_ = os.WriteFile(auth, []byte(`{"users": []}`), 0o644)
	_, err := Start(context.Background(), Config{DataDir: filepath.Join(dir, "data"), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t), NATSAuth: auth})
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Start with a 0644 auth file: %v", err)
	}
}

// With --tls-cert/--tls-key, the HTTP API and NATS speak TLS only.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	srv, err := Start(context.Background(), Config{DataDir: filepath.Join(dir, "data"), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Logger: testLogger(t), TLSCert: certFile, TLSKey: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if !strings.HasPrefix(srv.HTTPURL(), "https://") {
		t.Fatalf("HTTP URL %s", srv.HTTPURL())
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	client := sdk.NewClient(srv.HTTPURL(), hc)
	if _, err := client.CreateStream(context.Background(), sdk.CreateStreamInput{StreamName: "secure", DataRetentionInHours: 1}); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	// Go's TLS server answers a plain request with 400 "client sent an HTTP
	// request to an HTTPS server", and serves nothing else.
	if resp, err := http.Post("http"+strings.TrimPrefix(srv.HTTPURL(), "https")+"/listStreams", "application/json", nil); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP was answered with %s", resp.Status)
		}
	}
	nc, err := nats.Connect(srv.NATSURL(), nats.Secure(&tls.Config{RootCAs: pool}))
	if err != nil {
		t.Fatalf("NATS over TLS: %v", err)
	}
	nc.Close()
	if _, err := nats.Connect(srv.NATSURL(), nats.Secure(&tls.Config{})); err == nil {
		t.Error("NATS accepted a client that does not trust its certificate… and the client did not check it")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns a
// pool that trusts it.
func selfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sensorium test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// A producer may subscribe to its own inboxes (_INBOX_<user>.>, where
// JetStream answers its publishes), not to another producer's nor to the
// server's — where its pull consumer receives every fragment of every
// stream: a producer of one stream must not read another stream's
// fragments, nor its publish acknowledgements.
func TestNATSProducerCannotReadOtherStreams(t *testing.T) {
	dir := t.TempDir()
	auth := filepath.Join(dir, "nats-auth.json")
	if err := os.WriteFile(auth, []byte(`{"users": [
		{"user": "gw-a", "password": "secret-a", "produce": ["line.a"]},
		{"user": "gw-b", "password": "secret-b", "produce": ["line.b"]}
	]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := Start(context.Background(), Config{DataDir: filepath.Join(dir, "data"), NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Logger: testLogger(t), NATSAuth: auth})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	client := sdk.NewClient(srv.HTTPURL(), nil)
	for _, name := range []string{"line.a", "line.b"} {
		if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: name, DataRetentionInHours: 1}); err != nil {
			t.Fatal(err)
		}
	}
	spy, err := nats.Connect(srv.NATSURL(), nats.UserInfo("gw-a", "secret-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	secret := []byte("LINE-B-CONFIDENTIAL")
	var mu sync.Mutex
	var leaked []string
	for _, subj := range []string{"_INBOX.>", "_INBOX_gw-b.>", ">"} {
		_, _ = spy.Subscribe(subj, func(m *nats.Msg) {
			if bytes.Contains(m.Data, secret) {
				mu.Lock()
				leaked = append(leaked, m.Subject)
				mu.Unlock()
			}
		})
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	gwB, err := nats.Connect(srv.NATSURL(), nats.UserInfo("gw-b", "secret-b"), nats.CustomInboxPrefix("_INBOX_gw-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer gwB.Close()
	js, err := jetstream.New(gwB)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		// Not a valid fragment: the store refuses it, but only after its
		// consumer has received it, which is what the spy would see.
		if _, err := js.Publish(ctx, "sensorium.frag.line~b", append([]byte(fmt.Sprint(i)), secret...)); err != nil {
			t.Fatalf("gw-b publishing into its own stream: %v", err)
		}
	}
	// The store has consumed them once it has refused each (not MKV).
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if n := srv.IngestStats().Errors[wire.ErrInvalidMKVData]; n >= 5 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = spy.Flush()
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) > 0 {
		t.Fatalf("gw-a read line.b's fragments on %v", leaked)
	}
}
