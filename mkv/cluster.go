package mkv

import "io"

// Cluster level of the Reader: clusters are never held in memory; their
// children are read one at a time and each block is decoded on its own.

// startCluster reads ahead to the Cluster Timecode, skipping the children
// that may precede it (Position, PrevSize, Void, CRC-32, ...), so that
// ItemClusterStart can carry it. A block before the Timecode is an error:
// its time would be unknown.
func (r *Reader) startCluster(h *elemHeader) (Item, error) {
	r.st = stCluster
	r.clEnd = h.end()
	for {
		c, ok, err := r.clusterChild()
		if err != nil {
			return Item{}, err
		}
		if !ok {
			if r.clEnd == UnknownSize && r.segEnd == UnknownSize && r.atEOF() {
				return Item{}, &TruncatedError{Offset: r.off, What: "Cluster before its Timecode"}
			}
			return Item{}, syntaxErr(h.off, "Cluster without a Timecode")
		}
		switch c.id {
		case IDTimecode:
			tc, err := r.readUintElem(&c)
			if err != nil {
				return Item{}, err
			}
			r.clTC = tc
			return Item{Kind: ItemClusterStart, Offset: h.off, Size: h.total(), Timecode: tc}, nil
		case IDSimpleBlock, IDBlockGroup:
			return Item{}, syntaxErr(c.off, "%s before the Cluster Timecode", elementName(c.id))
		default:
			if err := r.skip(&c); err != nil {
				return Item{}, err
			}
		}
	}
}

// atEOF reports whether the stream has ended at the current offset.
func (r *Reader) atEOF() bool {
	_, err := r.br.Peek(1)
	return err == io.EOF
}

// clusterChild consumes the header of the Cluster's next child. ok is false,
// and nothing is consumed, when the Cluster has ended: at its size when
// known; otherwise at the end of the Segment or stream, or at the first
// element that cannot be a Cluster child.
func (r *Reader) clusterChild() (h elemHeader, ok bool, err error) {
	limit := r.clEnd
	if limit == UnknownSize {
		limit = r.segEnd
	}
	if limit != UnknownSize && r.off >= limit {
		return h, false, nil
	}
	id, _, err := r.peekID()
	if err == io.EOF {
		if limit == UnknownSize {
			return h, false, nil
		}
		return h, false, &TruncatedError{Offset: r.off, What: "Cluster"}
	}
	if err != nil {
		return h, false, err
	}
	if r.clEnd == UnknownSize && !isClusterChild(id) {
		return h, false, nil
	}
	h, err = r.readHeader(0, limit)
	return h, err == nil, err
}

// nextInCluster reads the Cluster's children up to the next block, or
// reports the end of the Cluster.
func (r *Reader) nextInCluster() (Item, error) {
	for {
		h, ok, err := r.clusterChild()
		if err != nil {
			return Item{}, err
		}
		if !ok {
			r.st = stSegment
			return Item{Kind: ItemClusterEnd, Offset: r.off}, nil
		}
		switch h.id {
		case IDSimpleBlock:
			return r.readSimpleBlock(&h)
		case IDBlockGroup:
			return r.readBlockGroup(&h)
		case IDTimecode:
			return Item{}, syntaxErr(h.off, "second Timecode in a Cluster")
		default:
			if err := r.skip(&h); err != nil {
				return Item{}, err
			}
		}
	}
}

// readUintElem reads a small unsigned integer element without allocating.
func (r *Reader) readUintElem(h *elemHeader) (uint64, error) {
	if h.size > int64(len(r.scratch)) {
		return 0, syntaxErr(h.off, "%s has %d bytes, more than an 8-byte integer", elementName(h.id), h.size)
	}
	b, err := r.readAppend(r.scratch[:0], h.size, elementName(h.id))
	if err != nil {
		return 0, err
	}
	return beUint(b), nil
}

// blockBody returns the body of a SimpleBlock or BlockGroup. Of an input in
// memory (NewBytesReader) it is a slice of the input. Otherwise Block.Data
// only has to stay valid until the next call to Next, so a body that fits in
// the read buffer is used in place, saving a copy; a larger one is read into
// r.buf, which is reused.
func (r *Reader) blockBody(h *elemHeader) ([]byte, error) {
	if h.size > r.maxSize {
		return nil, tooLarge(h.off, h.id, h.size, r.maxSize)
	}
	if r.mem != nil {
		if r.off+h.size > int64(len(r.mem)) {
			// The input ends inside the body. Say so as NewReader does: it
			// peeks a body that fits its read buffer (consuming nothing) and
			// reads a larger one to the input's end.
			if h.size > bufferSize {
				r.off = int64(len(r.mem))
			}
			return nil, &TruncatedError{Offset: int64(len(r.mem)), What: elementName(h.id)}
		}
		return r.bodyInMemory(h.size), nil
	}
	if h.size <= bufferSize {
		b, err := r.peek(int(h.size), elementName(h.id))
		if err != nil {
			return nil, r.truncated(err, elementName(h.id))
		}
		_, _ = r.br.Discard(len(b)) // peeked, cannot fail
		r.off += int64(len(b))
		return b, nil
	}
	body, err := r.readAppend(r.buf[:0], h.size, elementName(h.id))
	r.buf = body
	return body, err
}

// bodyInMemory consumes the next n bytes of an input in memory
// (NewBytesReader), which holds them, and returns them as a slice of it:
// what the read buffer holds of them is discarded, and the source is moved
// past the rest without reading it.
func (r *Reader) bodyInMemory(n int64) []byte {
	body := r.mem[r.off : r.off+n : r.off+n]
	if buffered := int64(r.br.Buffered()); n <= buffered {
		_, _ = r.br.Discard(int(n)) // buffered: cannot fail
	} else {
		_, _ = r.br.Discard(int(buffered))
		// The buffer is empty now, and bufio goes on reading src where src
		// stands: after the body.
		_, _ = r.src.Seek(n-buffered, io.SeekCurrent)
	}
	r.off += n
	return body
}

func (r *Reader) readSimpleBlock(h *elemHeader) (Item, error) {
	body, err := r.blockBody(h)
	if err != nil {
		return Item{}, err
	}
	flags, err := r.parseBlock(body, h.bodyOff())
	if err != nil {
		return Item{}, err
	}
	r.blk.Keyframe = flags&flagKeyframe != 0
	r.blk.Discardable = flags&flagDiscardable != 0
	r.blk.Duration = 0
	return r.firstFrame(h), nil
}

// readBlockGroup decodes a BlockGroup held in memory as a whole: its Block,
// BlockDuration and ReferenceBlock (whose presence marks a non-key frame).
func (r *Reader) readBlockGroup(h *elemHeader) (Item, error) {
	body, err := r.blockBody(h)
	if err != nil {
		return Item{}, err
	}
	var block []byte
	var blockOff int64
	var duration uint64
	referenced := false
	it := elemIter{b: body, base: h.bodyOff()}
	for {
		c, ok, err := it.next()
		if err != nil {
			return Item{}, err
		}
		if !ok {
			break
		}
		switch c.id {
		case IDBlock:
			if block != nil {
				return Item{}, syntaxErr(c.off, "second Block in a BlockGroup")
			}
			block, blockOff = c.body, c.bodyOff
		case IDBlockDuration:
			if duration, err = decodeUint(c); err != nil {
				return Item{}, err
			}
		case IDReferenceBlock:
			referenced = true
		}
	}
	if block == nil {
		return Item{}, syntaxErr(h.off, "BlockGroup without a Block")
	}
	if _, err := r.parseBlock(block, blockOff); err != nil {
		return Item{}, err
	}
	r.blk.Keyframe = !referenced
	r.blk.Discardable = false
	r.blk.Duration = duration
	return r.firstFrame(h), nil
}

// parseBlock decodes the header and lacing of a (Simple)Block body into
// r.blk, r.payload and r.frames, and returns the flags byte.
func (r *Reader) parseBlock(body []byte, off int64) (byte, error) {
	track, tc, flags, n, msg := parseBlockHeader(body)
	if msg != "" {
		return 0, syntaxErr(off, "%s", msg)
	}
	frames, payload, msg := splitLaces(r.frames[:0], body[n:], flags&flagLacingMask)
	if msg != "" {
		return 0, syntaxErr(off+int64(n), "%s", msg)
	}
	r.frames, r.payload = frames, payload
	r.blk.Track, r.blk.Timecode = track, tc
	r.blkTime = (int64(r.clTC) + int64(tc)) * r.timecodeScale()
	return flags, nil
}

// firstFrame reports the first frame of the block just parsed; a laced
// block hands out the rest through stFrames.
func (r *Reader) firstFrame(h *elemHeader) Item {
	r.blkOff, r.blkSize = h.off, h.total()
	r.frameAt = 0
	return r.nextFrame()
}

func (r *Reader) nextFrame() Item {
	f := r.frames[r.frameAt]
	r.frameAt++
	// The capacity limit keeps an append by the caller from overwriting the
	// next frame.
	r.blk.Data = r.payload[f.start:f.end:f.end]
	if r.frameAt < len(r.frames) {
		r.st = stFrames
	} else {
		r.st = stCluster
	}
	return Item{Kind: ItemBlock, Offset: r.blkOff, Size: r.blkSize, Block: &r.blk, Time: r.blkTime}
}
