package mkv

import "io"

// Document and Segment levels of the Reader.

// nextDocument expects the EBML header of the next document, or the end of
// the stream. Void and CRC-32 elements, which EBML allows anywhere, are
// skipped.
func (r *Reader) nextDocument() (Item, error) {
	for {
		h, err := r.readHeader(0, UnknownSize)
		if err == io.EOF {
			return Item{}, io.EOF
		}
		if err != nil {
			return Item{}, err
		}
		switch h.id {
		case IDEBML:
			return r.readEBMLHeader(&h)
		case IDVoid, IDCRC32:
			if err := r.skip(&h); err != nil {
				return Item{}, err
			}
		default:
			return Item{}, syntaxErr(h.off, "expected an EBML header, found %s", elementName(h.id))
		}
	}
}

func (r *Reader) readEBMLHeader(h *elemHeader) (Item, error) {
	body, err := r.readBody(h)
	if err != nil {
		return Item{}, err
	}
	hdr, err := decodeEBMLHeader(body, h.bodyOff())
	if err != nil {
		return Item{}, err
	}
	// A new document starts afresh: its Info and Tracks replace the last.
	r.doc++
	r.info, r.tracks = Info{}, nil
	r.st = stHeader
	return Item{Kind: ItemEBMLHeader, Offset: h.off, Size: h.total(), Header: hdr}, nil
}

// nextSegment expects the Segment after an EBML header.
func (r *Reader) nextSegment() (Item, error) {
	for {
		h, err := r.readHeader(IDSegment, UnknownSize)
		if err != nil {
			return Item{}, r.truncated(err, "document without a Segment")
		}
		switch h.id {
		case IDSegment:
			r.segEnd = h.end()
			r.st = stSegment
			return Item{Kind: ItemSegmentStart, Offset: h.off, Size: h.total()}, nil
		case IDVoid, IDCRC32:
			if err := r.skip(&h); err != nil {
				return Item{}, err
			}
		default:
			return Item{}, syntaxErr(h.off, "expected a Segment, found %s", elementName(h.id))
		}
	}
}

// segmentEnded reports whether the Segment ends at the current offset:
// at its size when known; at the end of the stream or at the next EBML
// header when unknown.
func (r *Reader) segmentEnded() (bool, error) {
	if r.segEnd != UnknownSize {
		return r.off >= r.segEnd, nil
	}
	id, _, err := r.peekID()
	if err == io.EOF {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return id == IDEBML, nil
}

func (r *Reader) endSegment() Item {
	r.st = stTop
	return Item{Kind: ItemSegmentEnd, Offset: r.off}
}

// nextInSegment reads the Segment's children up to the next one it reports.
func (r *Reader) nextInSegment() (Item, error) {
	for {
		ended, err := r.segmentEnded()
		if err != nil {
			return Item{}, err
		}
		if ended {
			return r.endSegment(), nil
		}
		h, err := r.readHeader(IDCluster, r.segEnd)
		if err != nil {
			return Item{}, r.truncated(err, "Segment")
		}
		switch h.id {
		case IDInfo, IDTracks, IDTags:
			return r.readTopElement(&h)
		case IDCluster:
			return r.startCluster(&h)
		case IDEBML, IDSegment:
			return Item{}, syntaxErr(h.off, "%s inside a Segment", elementName(h.id))
		default:
			// SeekHead, Cues, Chapters, Attachments, Void, CRC-32 and
			// unknown elements: a chunk reader needs none of them.
			if err := r.skip(&h); err != nil {
				return Item{}, err
			}
		}
	}
}

// readTopElement reads and decodes Info, Tracks or Tags, keeping the
// element's complete bytes in Item.Raw.
func (r *Reader) readTopElement(h *elemHeader) (Item, error) {
	if h.size > r.maxSize {
		return Item{}, tooLarge(h.off, h.id, h.size, r.maxSize)
	}
	raw := make([]byte, 0, h.hdrLen+int(min(h.size, 64<<10)))
	raw = append(raw, h.raw[:h.hdrLen]...)
	raw, err := r.readAppend(raw, h.size, elementName(h.id))
	if err != nil {
		return Item{}, err
	}
	body, off := raw[h.hdrLen:], h.bodyOff()
	it := Item{Offset: h.off, Size: h.total(), Raw: raw}
	switch h.id {
	case IDInfo:
		info, err := decodeInfo(body, off)
		if err != nil {
			return Item{}, err
		}
		r.info = info
		it.Kind, it.Info = ItemInfo, &info
	case IDTracks:
		tracks, err := decodeTracks(body, off)
		if err != nil {
			return Item{}, err
		}
		r.tracks = tracks
		it.Kind, it.Tracks = ItemTracks, tracks
	default:
		tags, err := decodeTags(body, off)
		if err != nil {
			return Item{}, err
		}
		it.Kind, it.Tags = ItemTags, tags
	}
	return it, nil
}

// readBody reads the body of h into new memory, enforcing MaxElementSize.
func (r *Reader) readBody(h *elemHeader) ([]byte, error) {
	if h.size > r.maxSize {
		return nil, tooLarge(h.off, h.id, h.size, r.maxSize)
	}
	return r.readAppend(nil, h.size, elementName(h.id))
}
