package store

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCreateStreamValidation(t *testing.T) {
	s := newTestStore(t, t.TempDir(), nil, nil)
	defer s.Close()
	tooManyTags := map[string]string{}
	for i := 0; i <= MaxTagsPerStream; i++ {
		tooManyTags[fmt.Sprint("k", i)] = "v"
	}
	cases := []struct {
		name string
		in   CreateStreamInput
		want error
	}{
		{"ok", CreateStreamInput{Name: "pump-1.vib_x", RetentionHours: 24, MediaType: "application/x-sensorium"}, nil},
		{"empty name", CreateStreamInput{}, ErrInvalidArgument},
		{"bad char", CreateStreamInput{Name: "pump/1"}, ErrInvalidArgument},
		{"space", CreateStreamInput{Name: "pump 1"}, ErrInvalidArgument},
		{"too long", CreateStreamInput{Name: strings.Repeat("a", 257)}, ErrInvalidArgument},
		{"longest", CreateStreamInput{Name: strings.Repeat("a", 256)}, nil},
		{"negative retention", CreateStreamInput{Name: "r1", RetentionHours: -1}, ErrInvalidArgument},
		{"huge retention", CreateStreamInput{Name: "r2", RetentionHours: MaxRetentionHours + 1}, ErrInvalidArgument},
		{"bad media type", CreateStreamInput{Name: "m1", MediaType: "nonsense"}, ErrInvalidArgument},
		{"too many tags", CreateStreamInput{Name: "t1", Tags: tooManyTags}, ErrTooManyTags},
		{"longest device name", CreateStreamInput{Name: "d1", DeviceName: strings.Repeat("d", MaxDeviceNameLen)}, nil},
		{"device name too long", CreateStreamInput{Name: "d2", DeviceName: strings.Repeat("d", MaxDeviceNameLen+1)}, ErrInvalidArgument},
		{"media type too long", CreateStreamInput{Name: "m2", MediaType: "application/" + strings.Repeat("x", MaxMediaTypeLen)}, ErrInvalidArgument},
		{"KmsKeyId too long", CreateStreamInput{Name: "k1", KMSKeyID: strings.Repeat("k", MaxKMSKeyIDLen+1)}, ErrInvalidArgument},
		{"longest tag key and value", CreateStreamInput{Name: "t2", Tags: map[string]string{strings.Repeat("k", MaxTagKeyLen): strings.Repeat("v", MaxTagValueLen)}}, nil},
		{"tag key too long", CreateStreamInput{Name: "t3", Tags: map[string]string{strings.Repeat("k", MaxTagKeyLen+1): "v"}}, ErrInvalidArgument},
		{"tag value too long", CreateStreamInput{Name: "t4", Tags: map[string]string{"k": strings.Repeat("v", MaxTagValueLen+1)}}, ErrInvalidArgument},
		{"exists", CreateStreamInput{Name: "pump-1.vib_x"}, ErrStreamExists},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateStream(tc.in)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCatalogOperationsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	clock := &testClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	s := newTestStore(t, dir, nil, func(o *Options) { o.Now = clock.Now })
	info, err := s.CreateStream(CreateStreamInput{Name: "pump-1", DeviceName: "gw-7", RetentionHours: 24, Tags: map[string]string{"site": "A"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:kinesisvideo:us-east-1:000000000000:stream/pump-1/" + fmt.Sprint(clock.t.UnixMilli()); info.ARN != want {
		t.Fatalf("ARN %s, want %s", info.ARN, want)
	}
	// Stale version.
	if err := s.UpdateDataRetention(StreamRef{Name: "pump-1"}, "stale", true, 1); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("stale version: %v", err)
	}
	if err := s.UpdateDataRetention(StreamRef{ARN: info.ARN}, info.Version, true, 6); err != nil {
		t.Fatal(err)
	}
	d, _ := s.DescribeStream(StreamRef{Name: "pump-1"})
	if d.RetentionHours != 30 || d.Version == info.Version {
		t.Fatalf("after increase: %+v", d)
	}
	if err := s.UpdateDataRetention(StreamRef{Name: "pump-1"}, d.Version, false, 31); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("decrease below 0: %v", err)
	}
	if err := s.UpdateDataRetention(StreamRef{Name: "pump-1"}, d.Version, false, 10); err != nil {
		t.Fatal(err)
	}
	d, _ = s.DescribeStream(StreamRef{Name: "pump-1"})
	mt := "audio/L16"
	if err := s.UpdateStream(StreamRef{Name: "pump-1"}, d.Version, nil, &mt); err != nil {
		t.Fatal(err)
	}
	if err := s.TagStream(StreamRef{Name: "pump-1"}, map[string]string{"line": "3"}); err != nil {
		t.Fatal(err)
	}
	if err := s.UntagStream(StreamRef{Name: "pump-1"}, []string{"site"}); err != nil {
		t.Fatal(err)
	}
	// ARN of another incarnation does not match.
	if _, err := s.DescribeStream(StreamRef{ARN: "arn:aws:kinesisvideo:us-east-1:000000000000:stream/pump-1/1"}); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("wrong ARN: %v", err)
	}
	if _, err := s.DescribeStream(StreamRef{Name: "pump-1", ARN: info.ARN}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("both name and ARN: %v", err)
	}
	before, _ := s.DescribeStream(StreamRef{Name: "pump-1"})
	s.Close()

	s = newTestStore(t, dir, nil, nil)
	defer s.Close()
	after, err := s.DescribeStream(StreamRef{Name: "pump-1"})
	if err != nil {
		t.Fatal(err)
	}
	if after.RetentionHours != 20 || after.MediaType != "audio/L16" || after.Tags["line"] != "3" || after.Tags["site"] != "" ||
		after.Version != before.Version || !after.CreationTime.Equal(before.CreationTime) || after.DeviceName != "gw-7" {
		t.Fatalf("after restart: %+v, before %+v", after, before)
	}
}

func TestListStreamsPagination(t *testing.T) {
	s := newTestStore(t, t.TempDir(), nil, nil)
	defer s.Close()
	for i := 0; i < 25; i++ {
		mustCreate(t, s, fmt.Sprintf("pump-%02d", i), 1)
	}
	mustCreate(t, s, "other", 1)
	var names []string
	token := ""
	for pages := 0; ; pages++ {
		got, next, err := s.ListStreams("pump-", 10, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			names = append(names, g.Name)
		}
		if next == "" {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
		token = next
	}
	if len(names) != 25 || names[0] != "pump-00" || names[24] != "pump-24" {
		t.Fatalf("listed %v", names)
	}
	if _, _, err := s.ListStreams("", 10, "garbage!"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad token: %v", err)
	}
	if _, _, err := s.ListStreams("", 0, ""); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("MaxResults 0: %v", err)
	}
}

func TestDeleteStreamRemovesData(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, nil)
	info := mustCreate(t, s, "a", 1)
	appendN(t, s, "a", 1, 5, 0)
	st, _ := s.stream("a")
	data := st.dir
	if err := s.DeleteStream(StreamRef{ARN: info.ARN}, "stale"); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("stale delete: %v", err)
	}
	if err := s.DeleteStream(StreamRef{ARN: info.ARN}, info.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("data folder still there: %v", err)
	}
	if _, err := s.Fragments("a", 0, 10); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("fragments of deleted stream: %v", err)
	}
	// The name can be used again, for a new, empty stream.
	mustCreate(t, s, "a", 1)
	if got, _ := s.Fragments("a", 0, 10); len(got) != 0 {
		t.Fatalf("new stream has old data: %v", got)
	}
	s.Close()
}

func TestInterruptedDeleteIsFinished(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir, nil, nil)
	mustCreate(t, s, "a", 1)
	mustCreate(t, s, "b", 1)
	appendN(t, s, "a", 1, 3, 0)
	st, _ := s.stream("a")
	data := st.dir
	// Record the deletion but stop before the data is gone, as a crash would.
	s.mu.Lock()
	st.info.Status = StatusDeleting
	if err := s.saveCatalogLocked(); err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()
	s.Close()
	s = newTestStore(t, dir, nil, nil)
	defer s.Close()
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("data folder still there: %v", err)
	}
	if _, err := s.DescribeStream(StreamRef{Name: "a"}); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("describe: %v", err)
	}
	if _, err := s.DescribeStream(StreamRef{Name: "b"}); err != nil {
		t.Fatalf("the other stream: %v", err)
	}
}

// The number of streams is bounded: one past the limit is
// AccountStreamLimitExceededException, and a deleted stream frees its place.
func TestStreamsLimit(t *testing.T) {
	s := newTestStore(t, t.TempDir(), nil, func(o *Options) { o.MaxStreams = 3 })
	defer s.Close()
	for i := range 3 {
		mustCreate(t, s, fmt.Sprint("s", i), 1)
	}
	if _, err := s.CreateStream(CreateStreamInput{Name: "s3", RetentionHours: 1}); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("a fourth stream with MaxStreams 3: %v", err)
	}
	if err := s.DeleteStream(StreamRef{Name: "s0"}, ""); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "s3", 1)
}
