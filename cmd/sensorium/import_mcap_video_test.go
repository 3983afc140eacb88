package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sensorium-io/sensorium/sdk"
)

// The picture size comes from the SPS (ffprobe says 64×48 for both
// streams: Constrained Baseline, and High 4:4:4 Predictive with B-frames),
// and each Annex B access unit converts to the AVC form SplitAnnexB makes.
func TestMCAPVideoHelpers(t *testing.T) {
	for _, name := range []string{"h264-baseline.h264", "h264-bframes.h264"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "sdk", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		aus, avcC, err := sdk.SplitAnnexB(raw)
		if err != nil {
			t.Fatal(err)
		}
		if w, h := spsSize(avcC); w != 64 || h != 48 {
			t.Errorf("%s: %d×%d, want 64×48", name, w, h)
		}
		for i, au := range aus {
			annex, err := annexB(nil, au.Data, 4)
			if err != nil {
				t.Fatal(err)
			}
			avc, key := avcOf(nil, annex)
			if !bytes.Equal(avc, au.Data) || key != au.Key {
				t.Fatalf("%s access unit %d: AVC form differs (key %v, want %v)", name, i, key, au.Key)
			}
		}
	}
	if w, h := spsSize([]byte{1, 2, 3}); w != 0 || h != 0 {
		t.Errorf("a short avcC: %d×%d", w, h)
	}
}
