package mkv

import (
	"bytes"
	"fmt"
	"math"
)

// Decoding of elements held in memory as a whole (EBML header, Info,
// Tracks, Tags, BlockGroup). Their bodies were read completely, so a child
// that does not fit is malformed, not truncated. Unknown children are
// skipped, as Matroska asks of readers.

// elemIter walks the children of a master element's body.
type elemIter struct {
	b    []byte
	pos  int
	base int64 // stream offset of b[0]
}

type child struct {
	id      uint32
	off     int64 // stream offset of the child's ID
	bodyOff int64
	body    []byte
}

func (it *elemIter) next() (child, bool, error) {
	if it.pos >= len(it.b) {
		return child{}, false, nil
	}
	b := it.b[it.pos:]
	off := it.base + int64(it.pos)
	id, n := parseID(b)
	if n == 0 {
		return child{}, false, syntaxErr(off, "invalid element ID %#x", b[:min(len(b), maxIDLen)])
	}
	if n > len(b) {
		return child{}, false, syntaxErr(off, "element ID runs past its parent")
	}
	size, m, unknown := parseSize(b[n:])
	if m == 0 {
		return child{}, false, syntaxErr(off+int64(n), "invalid size of %s", elementName(id))
	}
	if m > len(b)-n {
		return child{}, false, syntaxErr(off, "header of %s runs past its parent", elementName(id))
	}
	if unknown {
		return child{}, false, syntaxErr(off, "%s has an unknown size inside a known-size parent", elementName(id))
	}
	if size > uint64(len(b)-n-m) {
		return child{}, false, syntaxErr(off, "%s of %d bytes runs past its parent, which has %d bytes left",
			elementName(id), size, len(b)-n-m)
	}
	end := n + m + int(size)
	it.pos += end
	return child{id: id, off: off, bodyOff: off + int64(n+m), body: b[n+m : end]}, true, nil
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func decodeUint(c child) (uint64, error) {
	if len(c.body) > 8 {
		return 0, syntaxErr(c.off, "%s has %d bytes, more than an 8-byte integer", elementName(c.id), len(c.body))
	}
	return beUint(c.body), nil
}

// decodeFloat reads a float element. The float elements we read (Duration,
// SamplingFrequency) have finite ranges in the Matroska specification, so
// NaN and ±Inf are malformed data rather than values to pass on.
func decodeFloat(c child) (float64, error) {
	var v float64
	switch len(c.body) {
	case 0:
		return 0, nil
	case 4:
		v = float64(math.Float32frombits(uint32(beUint(c.body))))
	case 8:
		v = math.Float64frombits(beUint(c.body))
	default:
		return 0, syntaxErr(c.off, "float %s has %d bytes; EBML floats have 0, 4 or 8", elementName(c.id), len(c.body))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, syntaxErr(c.off, "float %s is %v; it must be finite", elementName(c.id), v)
	}
	return v, nil
}

// decodeString ends the string at its first zero byte: EBML lets writers
// pad strings with zeros.
func decodeString(c child) string {
	b := c.body
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// decodeEBMLHeader decodes the EBML header and refuses documents this
// reader could not parse (longer IDs or sizes, a newer EBML).
func decodeEBMLHeader(body []byte, base int64) (*EBMLHeader, error) {
	h := &EBMLHeader{}
	it := elemIter{b: body, base: base}
	for {
		c, ok, err := it.next()
		if err != nil || !ok {
			return h, err
		}
		var v uint64
		switch c.id {
		case IDDocType:
			h.DocType = decodeString(c)
			continue
		case IDEBMLReadVersion, IDEBMLMaxIDLength, IDEBMLMaxSizeLength, IDDocTypeVersion, IDDocTypeReadVersion:
			if v, err = decodeUint(c); err != nil {
				return nil, err
			}
		default:
			continue
		}
		if msg := checkHeaderField(c.id, v); msg != "" {
			return nil, syntaxErr(c.off, "%s", msg)
		}
		switch c.id {
		case IDDocTypeVersion:
			h.DocTypeVersion = v
		case IDDocTypeReadVersion:
			h.DocTypeReadVersion = v
		}
	}
}

func checkHeaderField(id uint32, v uint64) string {
	switch {
	case id == IDEBMLReadVersion && v > 1:
		return fmt.Sprintf("EBMLReadVersion %d is newer than this reader (1)", v)
	case id == IDEBMLMaxIDLength && v > maxIDLen:
		return fmt.Sprintf("EBMLMaxIDLength %d is more than %d", v, maxIDLen)
	case id == IDEBMLMaxSizeLength && v > maxSizeLen:
		return fmt.Sprintf("EBMLMaxSizeLength %d is more than %d", v, maxSizeLen)
	}
	return ""
}

func decodeInfo(body []byte, base int64) (Info, error) {
	var info Info
	it := elemIter{b: body, base: base}
	for {
		c, ok, err := it.next()
		if err != nil || !ok {
			return info, err
		}
		switch c.id {
		case IDTimecodeScale:
			info.TimecodeScale, err = decodeUint(c)
		case IDDuration:
			info.Duration, err = decodeFloat(c)
		case IDMuxingApp:
			info.MuxingApp = decodeString(c)
		case IDWritingApp:
			info.WritingApp = decodeString(c)
		case IDTitle:
			info.Title = decodeString(c)
		}
		if err != nil {
			return Info{}, err
		}
	}
}
