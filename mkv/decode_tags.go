package mkv

import "fmt"

// decodeTags flattens the SimpleTags of every Tag, in document order, a
// nested SimpleTag right after its parent. Targets are ignored: a chunk's
// tags all describe the chunk.
func decodeTags(body []byte, base int64) ([]SimpleTag, error) {
	var tags []SimpleTag
	it := elemIter{b: body, base: base}
	for {
		c, ok, err := it.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return tags, nil
		}
		if c.id != IDTag {
			continue
		}
		inner := elemIter{b: c.body, base: c.bodyOff}
		for {
			s, ok, err := inner.next()
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			if s.id == IDSimpleTag {
				if tags, err = decodeSimpleTag(tags, s, 0); err != nil {
					return nil, err
				}
			}
		}
	}
}

// decodeSimpleTag appends the SimpleTag e and its nested SimpleTags to tags.
// Nesting is bounded so that a crafted element cannot recurse deeply.
func decodeSimpleTag(tags []SimpleTag, e child, depth int) ([]SimpleTag, error) {
	if depth >= maxTagDepth {
		return nil, syntaxErr(e.off, "SimpleTags nested more than %d deep", maxTagDepth)
	}
	if len(tags) >= maxSimpleTags {
		return nil, fmt.Errorf("mkv: SimpleTag at offset %d: more than %d tags: %w", e.off, maxSimpleTags, ErrTooLarge)
	}
	at := len(tags)
	tags = append(tags, SimpleTag{})
	it := elemIter{b: e.body, base: e.bodyOff}
	for {
		c, ok, err := it.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return tags, nil
		}
		switch c.id {
		case IDTagName:
			tags[at].Name = decodeString(c)
		case IDTagString:
			tags[at].Value = decodeString(c)
		case IDSimpleTag:
			if tags, err = decodeSimpleTag(tags, c, depth+1); err != nil {
				return nil, err
			}
		}
	}
}
