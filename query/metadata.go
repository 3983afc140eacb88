package query

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/sensorium-io/sensorium/mkv"
	"github.com/sensorium-io/sensorium/store"
)

// FragmentMetadata returns the metadata tags each fragment was stored with,
// in the order of frags: the producer's own (PutFragmentMetadata, an MKV
// producer's Tags) and, for a fragment put back from an archive, the
// origin_ tags the ingest mapped from the old server's (origin_fragment_number,
// origin_server_timestamp, origin_producer_timestamp: docs/NATS.md,
// "Archive tags"). The server's own AWS_KINESISVIDEO_* tags are not among
// them: GetMedia writes those on read, and ListFragments already says
// what they would.
//
// The tags live inside each fragment's stored MKV, not in the index that a
// listing reads, so this reads (and decrypts) every fragment: it is what
// ListFragments does only when asked (IncludeFragmentMetadata). A fragment
// that has no tags, or that retention removed since it was listed, has nil.
func (s *Service) FragmentMetadata(name string, frags []store.FragmentInfo) ([]map[string]string, error) {
	r, err := s.st.NewReader(name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := make([]map[string]string, len(frags))
	for i, info := range frags {
		f, err := r.Read(info)
		if errors.Is(err, store.ErrFragmentGone) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("query: metadata of %s fragment %d: %w", name, info.Number, err)
		}
		if out[i], err = payloadTags(f); err != nil {
			return nil, fmt.Errorf("query: metadata of %s fragment %d: %w", name, info.Number, err)
		}
	}
	return out, nil
}

// payloadTags reads the Tags of a stored fragment. The ingest writes them
// before the Cluster, so only the bytes before ClusterOffset are parsed,
// not the frames.
func payloadTags(f store.StoredFragment) (map[string]string, error) {
	head := f.Payload
	if co := int(f.ClusterOffset); co > 0 && co <= len(head) {
		head = head[:co]
	}
	var tags map[string]string
	rd := mkv.NewReader(bytes.NewReader(head))
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return tags, nil
		}
		if err != nil {
			return nil, err
		}
		switch it.Kind {
		case mkv.ItemTags:
			for _, t := range it.Tags {
				if tags == nil {
					tags = map[string]string{}
				}
				tags[t.Name] = t.Value // a later one wins, as for GetMedia's readers
			}
		case mkv.ItemClusterStart:
			return tags, nil
		}
	}
}
