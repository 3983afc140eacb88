package spool

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestFormatConstants checks the constants table of sdk/SPOOL.md against
// the code, so that the document cannot drift from the format.
func TestFormatConstants(t *testing.T) {
	want := map[string]string{
		"SegmentMagic":     SegmentMagic,
		"DoneMagic":        DoneMagic,
		"RecordHeaderSize": strconv.Itoa(RecordHeaderSize),
		"RecordFixedSize":  strconv.Itoa(RecordFixedSize),
		"DoneEntrySize":    strconv.Itoa(DoneEntrySize),
		"MaxRecordBody":    strconv.Itoa(MaxRecordBody),
		"Persisted":        strconv.Itoa(int(Persisted)),
		"Refused":          strconv.Itoa(int(Refused)),
		"Dropped":          strconv.Itoa(int(Dropped)),
	}
	f, err := os.Open("../../SPOOL.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) != 4 {
			continue
		}
		name, value := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])
		if _, ok := want[name]; ok {
			got[name] = value
		}
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("SPOOL.md says %s is %q; the code, %q", name, got[name], v)
		}
	}
	// The record's fixed part, field by field as the document draws it.
	if RecordFixedSize != 1+8+8+8+4 {
		t.Errorf("RecordFixedSize %d is not type+seq+start+end+frames", RecordFixedSize)
	}
	if len(appendDone(nil, Persisted, 1)) != DoneEntrySize {
		t.Error("a done entry is not DoneEntrySize bytes")
	}
	if r := (&Record{Seq: 1, Data: make([]byte, 10)}); int64(len(appendRecord(nil, r))) != r.Size() {
		t.Error("a record is not Size() bytes")
	}
}
