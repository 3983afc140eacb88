package store

import (
	"fmt"
	"os"
	"regexp"
	"testing"
)

// TestFormatDocMatchesCode keeps FORMAT.md honest: every constant its tables
// name must have the value the code uses.
func TestFormatDocMatchesCode(t *testing.T) {
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	code := map[string]string{
		"catalogFormat":      fmt.Sprint(catalogFormat),
		"catalogFormatV1":    fmt.Sprint(catalogFormatV1),
		"segmentMagic":       segmentMagic,
		"segmentHeaderSize":  fmt.Sprint(segmentHeaderSize),
		"segmentVersion":     fmt.Sprint(segmentVersion),
		"recordHeaderSize":   fmt.Sprint(recordHeaderSize),
		"recordTypeFragment": fmt.Sprint(recordTypeFragment),
		"recordVersion":      fmt.Sprint(recordVersion),
		"fragmentFixedSize":  fmt.Sprint(fragmentFixedSize),
		"maxProducerID":      fmt.Sprint(maxProducerID),
		"indexMagic":         indexMagic,
		"indexVersion":       fmt.Sprint(indexVersion),
		"indexHeaderSize":    fmt.Sprint(indexHeaderSize),
		"indexEntrySize":     fmt.Sprint(indexEntrySize),
		"dataKeysFormat":     fmt.Sprint(dataKeysFormat),
		"keyringFormat":      fmt.Sprint(keyringFormat),
	}
	rows := regexp.MustCompile(`(?m)^\| (\w+) \| (\S+) \|$`).FindAllSubmatch(doc, -1)
	seen := map[string]bool{}
	for _, r := range rows {
		name, val := string(r[1]), string(r[2])
		if name == "constant" {
			continue
		}
		want, ok := code[name]
		if !ok {
			t.Errorf("FORMAT.md names %s, which the test does not know", name)
			continue
		}
		if val != want {
			t.Errorf("FORMAT.md says %s = %s; the code has %s", name, val, want)
		}
		seen[name] = true
	}
	for name := range code {
		if !seen[name] {
			t.Errorf("FORMAT.md does not document %s", name)
		}
	}
}
