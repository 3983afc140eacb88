package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs"
	"github.com/sensorium-io/sensorium/internal/platform/vfs/faultfs"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/sdk"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/store"
)

// Samples of a known pattern, sent uncompressed through the bus into the
// store, appear in no file of the data folder once the server has them: not
// in segments or indexes (sealed by the store), not in JetStream's files
// (encrypted by nats-server with a key derived from the master key). And
// they read back after a restart.
func TestNoPlaintextInDataFolder(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	ctx := context.Background()
	client, nc := newStream(t, srv, "secret", 1)
	desc := &signals.Scalar{SampleRate: 1000, SampleType: signals.Int32, Channels: []signals.Channel{{Name: "v"}}}
	track, _ := sdk.ScalarTrack(1, "v", desc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "secret", Tracks: []sdk.Track{track}, MinFragmentDuration: time.Second, MaxFragmentDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: time.Now().Add(-time.Minute).UnixNano(), Codec: codecs.Plain})
	if err != nil {
		t.Fatal(err)
	}
	// "SENSITIVE-PLANT!" as four little-endian int32 values, over and over.
	pattern := []byte("SENSITIVE-PLANT!")
	words := make([]int32, 4)
	for i := range words {
		words[i] = int32(binary.LittleEndian.Uint32(pattern[4*i:]))
	}
	values := make([]int32, 0, 4000)
	for len(values) < cap(values) {
		values = append(values, words...)
	}
	if err := w.WriteInt32(ctx, values); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	found := 0
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, pattern[:8]) {
			t.Errorf("%s holds plaintext sample bytes", path)
		}
		found++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 3 {
		t.Fatalf("only %d files in the data folder: the test looked at nothing", found)
	}
	// The bus deletes what the store acknowledged, so the walk above cannot
	// prove JetStream encrypts what it holds meanwhile; its key files can
	// (nats-server writes one per encrypted stream and message block).
	if keys, _ := filepath.Glob(filepath.Join(dir, "nats", "jetstream", "*", "streams", "*", "meta.key")); len(keys) == 0 {
		t.Error("JetStream's stream folder has no meta.key: the bus is not encrypted at rest")
	}

	// Restarted on the same folder and keyring, the samples read back.
	srv = startServer(t, dir)
	client = sdk.NewClient(srv.HTTPURL(), nil)
	body, err := client.GetMedia(ctx, sdk.ByName("secret"), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	mr := sdk.NewMediaReader(body)
	var s signals.Samples
	got := 0
	for {
		f, err := mr.Next()
		if err != nil {
			break
		}
		if err := codecs.DecodeScalarFrameAt(f.Data, f.Timestamp, desc, &s); err != nil {
			t.Fatal(err)
		}
		for i, v := range s.I32 {
			if v != values[got+i] {
				t.Fatalf("sample %d = %#x, want %#x", got+i, v, values[got+i])
			}
		}
		got += len(s.I32)
	}
	if got != len(values) {
		t.Fatalf("read back %d samples, sent %d", got, len(values))
	}
}

// While the store cannot take fragments (its disk fails), they wait in the
// bus: JetStream's files hold them then, and must hold them as ciphertext.
func TestBusHoldsNoPlaintext(t *testing.T) {
	dir := t.TempDir()
	ffs := faultfs.New(vfs.OS)
	ffs.SetFault(func(op faultfs.Op, name string) error {
		if op == faultfs.OpWrite && filepath.Ext(name) == ".seg" {
			return syscall.ENOSPC
		}
		return nil
	})
	srv, err := Start(context.Background(), Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t),
		StoreOptions: func(o *store.Options) { o.FS = ffs }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	_, nc := newStream(t, srv, "held", 1)
	desc := &signals.Scalar{SampleRate: 1000, SampleType: signals.Int32, Channels: []signals.Channel{{Name: "v"}}}
	track, _ := sdk.ScalarTrack(1, "v", desc)
	p, err := sdk.NewProducer(ctx, nc, sdk.ProducerConfig{Stream: "held", Tracks: []sdk.Track{track}, MinFragmentDuration: time.Second, MaxFragmentDuration: time.Second,
		NoLive: true})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sdk.NewSampleWriter(p, 1, desc, sdk.SampleWriterOptions{Origin: time.Now().Add(-time.Minute).UnixNano(), Codec: codecs.Plain})
	if err != nil {
		t.Fatal(err)
	}
	pattern := []byte("SENSITIVE-PLANT!")
	values := make([]int32, 0, 8000)
	for len(values) < cap(values) {
		values = append(values, int32(binary.LittleEndian.Uint32(pattern[len(values)%4*4:])))
	}
	if err := w.WriteInt32(ctx, values); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_ = w.Flush(fctx) // nothing becomes PERSISTED while the store fails
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for srv.IngestStats().StoreFailures == 0 || p.Stats().Published < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("the fragments did not reach the bus: %+v", p.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	busFiles := 0
	err = filepath.WalkDir(filepath.Join(dir, "nats"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, pattern[:8]) {
			t.Errorf("%s holds plaintext sample bytes", path)
		}
		if strings.HasSuffix(path, ".blk") && len(b) > 8000 {
			busFiles++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if busFiles == 0 {
		t.Fatal("no JetStream message block holds the fragments: the test looked at nothing")
	}
	ffs.SetFault(nil)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatalf("after the store recovered: %v", err)
	}
}

// A byte flipped on disk in one stored fragment, seen through the API after
// a restart: GetMedia serves every other fragment and, in place of the
// damaged one, an error chunk (AWS_KINESISVIDEO_ERROR_CODE) — never its
// garbled frames — and ListFragments still lists them all.
func TestFlippedByteThroughTheAPI(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	client, nc := newStream(t, srv, "rot", 24)
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	const fragments, frames = 9, 10
	for f := range fragments {
		if ev := publish(t, nc, "rot", scalarFragment(t, origin, int64(f)*frames*100, frames), "test", uint64(f+1)); ev.EventType != wire.EventPersisted {
			t.Fatalf("fragment %d: %+v", f, ev)
		}
	}
	nc.Close()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "store", "streams", "*", "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x04 // inside the fifth fragment's sealed payload
	if err := os.WriteFile(segs[0], b, 0o640); err != nil {
		t.Fatal(err)
	}

	srv = startServer(t, dir)
	client = sdk.NewClient(srv.HTTPURL(), nil)
	ctx := context.Background()
	list, _, err := client.ListFragments(ctx, sdk.ListFragmentsInput{Stream: sdk.ByName("rot")})
	if err != nil || len(list) != fragments {
		t.Fatalf("ListFragments: %d fragments, %v", len(list), err)
	}
	body, err := client.GetMedia(ctx, sdk.ByName("rot"), sdk.StartEarliest(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	mr := sdk.NewMediaReader(body)
	got, chunkErrors := 0, 0
	var s signals.Samples
	for {
		f, err := mr.Next()
		var ce *sdk.ChunkError
		if errors.As(err, &ce) {
			chunkErrors++
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d frames: %v", got, err)
		}
		if err := codecs.DecodeScalarFrameAt(f.Data, f.Timestamp, pumpDesc, &s); err != nil {
			t.Fatalf("frame %d served garbled: %v", got, err)
		}
		got++
	}
	if chunkErrors != 1 || got != (fragments-1)*frames {
		t.Fatalf("GetMedia: %d frames and %d error chunks, want %d frames and 1", got, chunkErrors, (fragments-1)*frames)
	}
}

// Master keys from outside the data folder — the environment here, as a
// secret manager would supply them — and a stream that names its own
// (KmsKeyId): it is stored under that key, DescribeStream says so, the data
// reads back after a restart with the same keys, and a restart without that
// key refuses to start, naming it, rather than serve what it cannot open.
// The data folder never holds a keyring.
func TestMasterKeysFromTheEnvironment(t *testing.T) {
	key := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	t.Setenv(store.KeyringEnv, "site-a="+key(1)+",site-b="+key(2))
	dir := t.TempDir()
	srv := startServer(t, dir)
	ctx := context.Background()
	client := sdk.NewClient(srv.HTTPURL(), nil)
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "own-key", KmsKeyID: "site-b", DataRetentionInHours: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateStream(ctx, sdk.CreateStreamInput{StreamName: "bad-key", KmsKeyID: "site-z", DataRetentionInHours: 1}); err == nil {
		t.Fatal("a stream was created under a master key the keyring does not have")
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	origin := time.Now().Add(-time.Minute).Truncate(time.Second).UnixNano()
	for f := range 3 {
		if ev := publish(t, nc, "own-key", scalarFragment(t, origin, int64(f)*1000, 10), "test", uint64(f+1)); ev.EventType != wire.EventPersisted {
			t.Fatalf("fragment %d: %+v", f, ev)
		}
	}
	nc.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keyring.json")); err == nil {
		t.Error("a keyring was written into the data folder although the keys came from the environment")
	}

	srv = startServer(t, dir)
	client = sdk.NewClient(srv.HTTPURL(), nil)
	if info, err := client.DescribeStream(ctx, sdk.ByName("own-key")); err != nil || info.KmsKeyID != "site-b" {
		t.Fatalf("DescribeStream: %+v, %v", info, err)
	}
	checkServedByGetMedia(t, srv.HTTPURL(), "own-key")
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	t.Setenv(store.KeyringEnv, "site-a="+key(1))
	if srv, err := Start(ctx, Config{DataDir: dir, NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Logger: testLogger(t)}); err == nil {
		_ = srv.Shutdown(ctx)
		t.Fatal("started without the master key of a stream")
	} else if !strings.Contains(err.Error(), "site-b") {
		t.Fatalf("start without site-b: %v, want it named", err)
	}
}
