package codecs

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// fakeCodec is a codec for registry tests; it never encodes anything.
type fakeCodec struct {
	id   ID
	name string
}

func (f fakeCodec) ID() ID       { return f.id }
func (f fakeCodec) Name() string { return f.name }
func (fakeCodec) AppendEncoded(dst []byte, _ *signals.Samples) ([]byte, error) {
	return dst, nil
}
func (fakeCodec) Decode([]byte, *signals.Scalar, int, *signals.Samples) error { return nil }

func TestBuiltinRegistry(t *testing.T) {
	c, err := Lookup(Plain)
	if err != nil || c.ID() != Plain || c.Name() != "plain" {
		t.Fatalf("Lookup(Plain) = %v, %v", c, err)
	}
	if c, err := LookupName("plain"); err != nil || c.ID() != Plain {
		t.Errorf("LookupName(plain) = %v, %v", c, err)
	}
	for _, id := range []ID{0, 200, Auto} {
		if _, err := Lookup(id); !errors.Is(err, ErrUnknownCodec) {
			t.Errorf("Lookup(%d) = %v", id, err)
		}
	}
	if _, err := LookupName("zstd-plain"); !errors.Is(err, ErrUnknownCodec) {
		t.Errorf("LookupName of an unknown codec: %v", err)
	}
	if Plain.String() != "plain" || ID(200).String() != "codec(200)" {
		t.Errorf("ID.String: %v %v", Plain, ID(200))
	}
	if err := Register(fakeCodec{Plain, "other"}); err == nil {
		t.Error("Register took a second codec with the plain codec's ID")
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = Lookup(Plain) }); allocs != 0 {
		t.Errorf("Lookup allocates %v times", allocs)
	}
}

func TestRegister(t *testing.T) {
	var r registry
	if err := r.register(fakeCodec{1, "one"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		c   Codec
		msg string
	}{
		{nil, "nil codec"},
		{fakeCodec{0, "zero"}, "id 0 is reserved"},
		{fakeCodec{Auto, "auto"}, "id 255 is not a scalar codec's"},
		{fakeCodec{16, "sweep"}, "id 16 is not a scalar codec's: scalar codecs take 1 to 15"},
		{fakeCodec{FormatPointCloud, "pointcloud"}, "id 16 is not"},
		{fakeCodec{FormatDetections, "detections"}, "id 24 is not"},
		{fakeCodec{FormatArray, "array"}, "id 25 is not"},
		{fakeCodec{254, "last"}, "id 254 is not"},
		{fakeCodec{2, ""}, "empty name"},
		{fakeCodec{1, "uno"}, `id 1 is taken by "one"`},
		{fakeCodec{2, "one"}, `name "one" is taken by id 1`},
	} {
		if err := r.register(tt.c); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("register(%v) = %v, want %q", tt.c, err, tt.msg)
		}
	}
	// 6 to 15 are kept for further scalar codecs: the last of them registers.
	if err := r.register(fakeCodec{15, "last"}); err != nil {
		t.Fatal(err)
	}
	all := r.all()
	if len(all) != 2 || all[0].ID() != 1 || all[1].ID() != 15 {
		t.Errorf("all() = %v", all)
	}
	// No ID above 15 registers, whatever its name.
	for id := 16; id <= 255; id++ {
		if err := r.register(fakeCodec{ID(id), fmt.Sprint("c", id)}); err == nil {
			t.Errorf("register took id %d", id)
		}
	}
}

// The package's own registry refuses the frame formats of other kinds too,
// and every built-in codec is a scalar codec's ID.
func TestRegisterFrameFormatIDs(t *testing.T) {
	for _, id := range []ID{FormatPointCloud, FormatDetections, FormatArray, Auto} {
		if err := Register(fakeCodec{id, fmt.Sprint("format", int(id))}); err == nil || !strings.Contains(err.Error(), "not a scalar codec's") {
			t.Errorf("Register(id %d) = %v", id, err)
		}
		if _, err := Lookup(id); !errors.Is(err, ErrUnknownCodec) {
			t.Errorf("Lookup(%d) = %v after a refused Register", id, err)
		}
	}
	for _, c := range Registered() {
		if c.ID() == 0 || c.ID() > 15 {
			t.Errorf("built-in codec %q has id %d", c.Name(), c.ID())
		}
	}
}

// Lookups run while codecs register; run with -race.
func TestRegistryConcurrent(t *testing.T) {
	var r registry
	var wg sync.WaitGroup
	for i := 1; i <= 15; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := r.register(fakeCodec{ID(i), fmt.Sprint("c", i)}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			_, _ = r.lookup(ID(i))
		}()
	}
	wg.Wait()
	if len(r.all()) != 15 {
		t.Errorf("%d codecs registered, want 15", len(r.all()))
	}
}
