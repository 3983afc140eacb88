package codecs

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sensorium-io/sensorium/signals"
)

// These tests hold FORMAT.md against the constants and the registry, so the
// specification cannot drift from the code.

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
		if strings.HasPrefix(l, "|---") {
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

func TestFormatDocScalarFrame(t *testing.T) {
	itoa := strconv.Itoa
	want := [][]string{
		{itoa(offCodec), "1", "u8", "codec"},
		{itoa(offVersion), "1", "u8", "version", itoa(ScalarFrameVersion)},
		{itoa(offFlags), "2", "u16", "flags", "0"},
		{itoa(offN), "4", "u32", "n", "samples per channel, 0 to " + strconv.FormatUint(MaxScalarFrameSamples, 10)},
		{itoa(offStart), "8", "i64", "start"},
		{itoa(ScalarHeaderSize), "variable", "bytes", "body"},
	}
	rows := docTable(t, readFormat(t), "## Scalar frame")[1:]
	if len(rows) != len(want) {
		t.Fatalf("%d rows in FORMAT.md, %d in the code", len(rows), len(want))
	}
	for i, w := range want {
		for j, cell := range w {
			if rows[i][j] != cell {
				t.Errorf("row %d: FORMAT.md says %q, the code %q", i, rows[i], w)
				break
			}
		}
	}
	// The offsets tile the header exactly.
	if offVersion != offCodec+1 || offFlags != offVersion+1 || offN != offFlags+2 || offStart != offN+4 || ScalarHeaderSize != offStart+8 {
		t.Error("header fields overlap or leave gaps")
	}
}

// Every registered codec has its row, and every row a codec (except 0).
func TestFormatDocCodecs(t *testing.T) {
	rows := docTable(t, readFormat(t), "## Codecs")[1:]
	documented := map[int]string{}
	for _, r := range rows {
		id, err := strconv.Atoi(r[0])
		if err != nil {
			t.Fatalf("codec row %q: %v", r, err)
		}
		documented[id] = r[1]
	}
	if documented[0] != "(reserved)" {
		t.Errorf("id 0 must be documented as reserved, is %q", documented[0])
	}
	delete(documented, 0)
	if documented[int(Auto)] != "(auto)" {
		t.Errorf("id %d must be documented as (auto), is %q", Auto, documented[int(Auto)])
	}
	delete(documented, int(Auto))
	for _, c := range Registered() {
		if name, ok := documented[int(c.ID())]; !ok || name != c.Name() {
			t.Errorf("codec %d %q is documented as %q", c.ID(), c.Name(), name)
		}
		delete(documented, int(c.ID()))
	}
	for id, name := range documented {
		t.Errorf("FORMAT.md lists codec %d %q, which is not registered", id, name)
	}
}

// The example in FORMAT.md is the golden float32 frame.
func TestFormatDocExample(t *testing.T) {
	_, after, ok := strings.Cut(readFormat(t), "### Example")
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
	golden, err := readHex(filepath.Join("testdata", "golden", "plain_float32.hex"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doced, golden) {
		t.Errorf("FORMAT.md example:\n%x\ngolden:\n%x", doced, golden)
	}
}

// The numeric body's tables name the code's modes and block encodings.
func TestFormatDocNumeric(t *testing.T) {
	doc := readFormat(t)
	modes := map[string]int{"int": modeInt, "scale": modeScale, "decimal": modeDecimal, "xor": modeXor, "affine": modeAffine}
	_, numeric, ok := strings.Cut(doc, "## Numeric body")
	if !ok {
		t.Fatal("no numeric section")
	}
	rows := docTable(t, numeric, "| mode | name | for | value of sample i |")
	for _, r := range rows {
		if want, ok := modes[r[1]]; ok {
			if got, _ := strconv.Atoi(r[0]); got != want {
				t.Errorf("mode %s documented as %s, code has %d", r[1], r[0], want)
			}
			delete(modes, r[1])
		}
	}
	if len(modes) != 0 {
		t.Errorf("modes not documented: %v", modes)
	}
	encs := fmt.Sprintf("0 raw, 1 rle, 2 huff0 one stream, 3 huff0 four streams, %d packed", tokPacked)
	if tokRaw != 0 || tokRLE != 1 || tokHuff1 != 2 || tokHuff4 != 3 || !strings.Contains(numeric, encs) {
		t.Errorf("the residual block encodings differ from %q", encs)
	}
	if !strings.Contains(numeric, fmt.Sprintf("blocks of\n%d", residualBlock)) && !strings.Contains(numeric, fmt.Sprintf("blocks of %d", residualBlock)) {
		t.Errorf("FORMAT.md does not give the block length %d", residualBlock)
	}
}

// The columnar frame's header and format IDs are the code's.
func TestFormatDocColumnar(t *testing.T) {
	_, sec, ok := strings.Cut(readFormat(t), "## Columnar frame")
	if !ok {
		t.Fatal("no columnar section")
	}
	if !strings.Contains(sec, "a 16-byte header") || ColumnarHeaderSize != 16 {
		t.Error("the header size differs")
	}
	for _, want := range []string{fmt.Sprintf("LIDAR sweeps (format %d)", FormatPointCloud), fmt.Sprintf("(format %d)", FormatDetections), fmt.Sprintf("(format %d)", FormatArray)} {
		if !strings.Contains(sec, want) {
			t.Errorf("FORMAT.md lacks %q", want)
		}
	}
}

// The Compact2 section's tables and numbers are the code's: the header, the
// scale selectors, the degree's bits, the escapes and the width fields.
func TestFormatDocCompact2(t *testing.T) {
	_, sec, ok := strings.Cut(readFormat(t), "## Compact frame, version 2")
	if !ok {
		t.Fatal("no Compact2 section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	if rows := docTable(t, sec, "usual one is smaller."); len(rows) != 5 || rows[1][4] != strconv.Itoa(int(Compact2)) {
		t.Errorf("header table %q, codec %d", rows, Compact2)
	}
	sels := map[string]int{"an f32": scaleF32, "an f64": scaleF64, "m / 10^e": scaleDecimal,
		"the previous scaled channel's (column's)": scaleSame, "m / 2^e`, exact": scaleBinary}
	rows := docTable(t, sec, "- **Scale.** The selector is 3 bits:")
	if len(rows) != 7 {
		t.Fatalf("%d selector rows, want 6", len(rows)-1)
	}
	for _, r := range rows[1:] {
		want, ok := sels[r[1]]
		if strings.HasPrefix(r[1], "m / 10^e` degrees") {
			want, ok = scaleDegrees, true
		}
		if got, _ := strconv.Atoi(r[0]); !ok || got != want {
			t.Errorf("selector row %q: the code has %d", r, want)
		}
	}
	for _, want := range []string{
		fmt.Sprintf("`0x%x`", math.Float64bits(degreeRadians)),
		fmt.Sprintf("when `q ≥ %d`, sixteen ones", compactEscape),
		fmt.Sprintf("when `q ≥ %d` (or", egEscape),
		"5 for int16, 6 for int32",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("the Compact2 section lacks %q", want)
		}
	}
	if compactEscape != 16 || egEscape != 24 {
		t.Error("the escapes are documented as sixteen and twenty-four ones")
	}
	for _, c := range []struct {
		t     signals.SampleType
		xor   bool
		width uint
	}{{signals.Int16, false, 5}, {signals.Int32, false, 6}, {signals.Float32, false, 6}, {signals.Float64, false, 6}, {signals.Float64, true, 7}} {
		if got := newCompactCoding(true, c.t, c.xor).width; got != c.width {
			t.Errorf("%s (xor %v): width field of %d bits, documented %d", c.t, c.xor, got, c.width)
		}
	}
	_, col, _ := strings.Cut(readFormat(t), "## Compact columnar frame")
	if !strings.Contains(col, fmt.Sprintf("| version | u8 | %d or %d |", ColumnarCompactVersion, ColumnarCompact2Version)) {
		t.Error("the compact columnar versions differ")
	}
}
