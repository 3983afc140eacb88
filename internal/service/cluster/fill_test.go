package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/sensorium-io/sensorium/store"
)

// TestFillRecordsRoundTrip writes records and reads them back, and checks
// that a body cut anywhere, or with a flipped byte, is an error and never a
// fragment that differs from what was sent.
func TestFillRecordsRoundTrip(t *testing.T) {
	var sent []store.StoredFragment
	body := []byte(fillMagic)
	for i := 0; i < 5; i++ {
		f := store.StoredFragment{
			FragmentInfo:  store.FragmentInfo{Number: uint64(100 + i*3), ServerTime: int64(i) * 1e9, ProducerTime: int64(i)*1e9 - 5, Duration: 2e9},
			ClusterOffset: uint32(40 + i), ProducerID: fmt.Sprintf("p-%d", i), ProducerSeq: uint64(i + 1),
			Payload: bytes.Repeat([]byte{byte(i)}, 100*i),
		}
		sent = append(sent, f)
		body = appendFillRecord(body, &f)
	}
	whole := append(bytes.Clone(body), 0, 0, 0, 0)
	var got []store.Fragment
	collect := func(f *store.Fragment) error {
		c := *f
		c.Payload = bytes.Clone(f.Payload)
		got = append(got, c)
		return nil
	}
	n, err := readFill(bytes.NewReader(whole), maxFillRecord, collect)
	if err != nil || n != len(sent) {
		t.Fatalf("read %d records, err %v; want %d", n, err, len(sent))
	}
	for i, f := range got {
		s := sent[i]
		if f.Number != s.Number || f.ServerTime != s.ServerTime || f.ProducerTime != s.ProducerTime || f.Duration != s.Duration ||
			f.ProducerID != s.ProducerID || f.ProducerSeq != s.ProducerSeq || f.ClusterOffset != s.ClusterOffset || !bytes.Equal(f.Payload, s.Payload) {
			t.Fatalf("record %d: got %+v, sent %+v", i, f, s)
		}
	}
	for cut := 0; cut < len(whole); cut++ {
		got = nil
		if _, err := readFill(bytes.NewReader(whole[:cut]), maxFillRecord, collect); err == nil {
			t.Fatalf("a body cut at %d of %d bytes read without error", cut, len(whole))
		}
	}
	for at := len(fillMagic); at < len(whole)-4; at += 7 {
		bad := bytes.Clone(whole)
		bad[at] ^= 0x40
		got = nil
		n, err := readFill(bytes.NewReader(bad), maxFillRecord, collect)
		if err == nil {
			t.Fatalf("a flipped byte at %d read without error", at)
		}
		for i := 0; i < n; i++ {
			if got[i].Number != sent[i].Number || !bytes.Equal(got[i].Payload, sent[i].Payload) {
				t.Fatalf("flipped byte at %d: record %d came back different", at, i)
			}
		}
		if errors.Is(err, errFillTruncated) && at < len(whole)-8 {
			continue
		}
	}
}
