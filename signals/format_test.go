package signals

import (
	"bytes"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

// These tests read FORMAT.md and hold its tables against the constants of the
// code, so the specification cannot drift from the implementation.

func readFormat(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docTable returns the rows (header first, separator dropped, cells trimmed and
// without backticks) of the first Markdown table after the line heading.
func docTable(t *testing.T, doc, heading string) [][]string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	at := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == heading {
			at = i
			break
		}
	}
	if at < 0 {
		t.Fatalf("FORMAT.md has no heading %q", heading)
	}
	var rows [][]string
	for _, l := range lines[at+1:] {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") {
			if len(rows) > 0 {
				break
			}
			if strings.HasPrefix(l, "#") {
				t.Fatalf("no table under %q", heading)
			}
			continue
		}
		if strings.HasPrefix(l, "|---") || strings.HasPrefix(l, "| ---") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		for i, c := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(c), "`")
		}
		rows = append(rows, cells)
	}
	return rows
}

// checkTable compares the first len(want[i]) cells of each data row.
func checkTable(t *testing.T, doc, heading string, want [][]string) {
	t.Helper()
	rows := docTable(t, doc, heading)[1:]
	if len(rows) != len(want) {
		t.Fatalf("%s: %d rows in FORMAT.md, %d in the code:\n%q", heading, len(rows), len(want), rows)
	}
	for i, w := range want {
		for j, cell := range w {
			if j >= len(rows[i]) || rows[i][j] != cell {
				t.Errorf("%s row %d: FORMAT.md says %q, the code %q", heading, i, rows[i], w)
				break
			}
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestFormatDocPreamble(t *testing.T) {
	checkTable(t, readFormat(t), "## Preamble", [][]string{
		{itoa(offMagic), itoa(len(descMagic)), "bytes", "magic", descMagic},
		{itoa(offVersion), "1", "u8", "version"},
		{itoa(offKind), "1", "u8", "kind"},
	})
	if descPreambleSz != offKind+1 {
		t.Errorf("preamble size %d", descPreambleSz)
	}
}

func TestFormatDocKinds(t *testing.T) {
	checkTable(t, readFormat(t), "## Kinds", [][]string{
		{itoa(int(KindScalar)), KindScalar.String(), CodecIDScalar, itoa(scalarVersion)},
		{itoa(int(KindIMU)), KindIMU.String(), CodecIDIMU, itoa(imuVersion)},
		{itoa(int(KindAudio)), KindAudio.String(), CodecIDPCMInt + ", " + CodecIDPCMFloat, itoa(audioVersion)},
		{itoa(int(KindPointCloud)), KindPointCloud.String(), CodecIDPointCloud, itoa(pointCloudVersion)},
		{itoa(int(KindDetections)), KindDetections.String(), CodecIDDetections, itoa(detectionsVersion)},
		{itoa(int(KindArray)), KindArray.String(), CodecIDArray, itoa(arrayVersion)},
		{itoa(int(KindVideo)), KindVideo.String(), CodecIDH264, "none"},
		{itoa(int(KindOpaque)), KindOpaque.String(), CodecIDOpaque, itoa(opaqueVersion)},
	})
	if len(kindNames) != 8 {
		t.Errorf("%d kinds in the code, 8 in the table: add the new kind's row", len(kindNames))
	}
}

func TestFormatDocScalar(t *testing.T) {
	doc := readFormat(t)
	checkTable(t, doc, "## Scalar description, version 1", [][]string{
		{itoa(offMagic), itoa(len(descMagic)), "bytes", "magic", descMagic},
		{itoa(offVersion), "1", "u8", "version", itoa(scalarVersion)},
		{itoa(offKind), "1", "u8", "kind", itoa(int(KindScalar))},
		{itoa(offSampleType), "1", "u8", "sample_type"},
		{itoa(offReserved), "1", "u8", "reserved", "0"},
		{itoa(offSampleRate), "8", "f64", "sample_rate"},
		{itoa(offChannelCount), "2", "u16", "channel_count"},
		{itoa(offChannels), "variable", "entries", "channels"},
	})
	checkTable(t, doc, "### Channel entry", [][]string{
		{"0", "1", "u8", "name_len"},
		{"1", "name_len", "UTF-8", "name"},
		{"1+name_len", "1", "u8", "unit_len"},
		{"2+name_len", "unit_len", "UTF-8", "unit"},
	})
	if minChannelSize != 2 {
		t.Errorf("an empty channel entry is two length bytes, not %d", minChannelSize)
	}
	var want [][]string
	for _, st := range SampleTypes() {
		want = append(want, []string{itoa(int(st)), st.String(), itoa(st.Size()), st.ArrowType().Name()})
	}
	checkTable(t, doc, "### Sample types", want)
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	checkTable(t, doc, "### Limits", [][]string{
		{"MaxChannels", itoa(MaxChannels)},
		{"MaxNameLen", itoa(MaxNameLen)},
		{"MaxUnitLen", itoa(MaxUnitLen)},
		{"MinSampleRate", f(MinSampleRate)},
		{"MaxSampleRate", f(MaxSampleRate)},
	})
}

// The example in FORMAT.md is what MarshalBinary writes.
func TestFormatDocExample(t *testing.T) {
	doc := readFormat(t)
	_, after, ok := strings.Cut(doc, "### Example")
	if !ok {
		t.Fatal("no example")
	}
	parts := strings.SplitN(after, "```", 3)
	if len(parts) < 3 {
		t.Fatal("no code block in the example")
	}
	doced, err := hex.DecodeString(strings.Join(strings.Fields(parts[1]), ""))
	if err != nil {
		t.Fatal(err)
	}
	got, err := formatExample().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, doced) {
		t.Errorf("FORMAT.md example:\n%x\nMarshalBinary:\n%x", doced, got)
	}
}

func formatExample() *Scalar {
	return &Scalar{SampleRate: 25600, SampleType: Float32, Channels: []Channel{{"x", "g"}, {"temp", "°C"}}}
}
