package sdk

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
)

// The SDK's StreamInfo carries every field of the API's, under the same JSON
// names, with the same values (times to the millisecond).
func TestStreamInfoMatchesWire(t *testing.T) {
	w := httpwire.StreamInfo{
		CreationTime: httpwire.At(time.Date(2026, 11, 24, 12, 0, 0, 250_000_000, time.UTC).UnixNano()), DataRetentionInHours: 24,
		DeviceName: "gw-1", KmsKeyID: "k1", MediaType: "application/x-sensorium", Status: "ACTIVE",
		StreamARN: "arn:aws:kinesisvideo:us-east-1:0:stream/pump-1/1", StreamName: "pump-1", Version: "v1",
	}
	fields := func(v any) map[string]any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	want, got := fields(w), fields(streamInfoOf(w))
	if !reflect.DeepEqual(want, got) {
		t.Errorf("the API sends %v, the SDK gives %v", want, got)
	}
	if reflect.TypeFor[StreamInfo]().NumField() != reflect.TypeFor[httpwire.StreamInfo]().NumField() {
		t.Error("StreamInfo and httpwire.StreamInfo have different fields")
	}
	if got := timeOf(httpwire.At(-1_500_000_000)); !got.Equal(time.Unix(-2, 500_000_000)) || timeOf(httpwire.Timestamp{}) != (Time{}) {
		t.Errorf("timeOf: %v", got)
	}
	if f := (Time{time.UnixMilli(1732449600123)}); wireTime(f.Time).NS != 1732449600123*int64(time.Millisecond) {
		t.Error("wireTime")
	}
}
