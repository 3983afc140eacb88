package store

import (
	"encoding/base64"
	"sort"
	"strings"
	"time"
)

// CreateStream adds a stream to the catalog and makes its folder.
func (s *Store) CreateStream(in CreateStreamInput) (StreamInfo, error) {
	if err := ValidateStreamName(in.Name); err != nil {
		return StreamInfo{}, err
	}
	if err := validateDeviceName(in.DeviceName); err != nil {
		return StreamInfo{}, err
	}
	if err := validateMediaType(in.MediaType); err != nil {
		return StreamInfo{}, err
	}
	if len(in.KMSKeyID) > MaxKMSKeyIDLen {
		return StreamInfo{}, invalid("KmsKeyId is longer than %d characters", MaxKMSKeyIDLen)
	}
	// The master key is fixed at creation: an empty KmsKeyId takes the
	// keyring's default, which DescribeStream then shows.
	if in.KMSKeyID == "" {
		in.KMSKeyID = s.opts.Keyring.Default
	}
	if !s.opts.Keyring.Has(in.KMSKeyID) {
		return StreamInfo{}, invalid("KmsKeyId %q is not a master key of this server's keyring (it has %s)",
			truncate(in.KMSKeyID, 128), strings.Join(s.opts.Keyring.IDs(), ", "))
	}
	if in.RetentionHours < 0 || in.RetentionHours > MaxRetentionHours {
		return StreamInfo{}, invalid("DataRetentionInHours must be 0 to %d", MaxRetentionHours)
	}
	if err := validateTags(nil, in.Tags); err != nil {
		return StreamInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.streams[in.Name]; ok {
		return StreamInfo{}, refuse(ErrStreamExists, "stream %s already exists", in.Name)
	}
	if len(s.streams) >= s.opts.MaxStreams {
		return StreamInfo{}, refuse(ErrTooManyStreams, "this server holds at most %d streams", s.opts.MaxStreams)
	}
	created := s.now().UTC().Truncate(time.Millisecond)
	info := StreamInfo{
		Name: in.Name, ARN: ARN(s.opts.Region, s.opts.Account, in.Name, created),
		DeviceName: in.DeviceName, MediaType: in.MediaType, KMSKeyID: in.KMSKeyID,
		Version: newVersion(), Status: StatusActive, CreationTime: created,
		RetentionHours: in.RetentionHours, Tags: map[string]string{},
	}
	for k, v := range in.Tags {
		info.Tags[k] = v
	}
	st, _, err := s.openStream(info, s.streamDir(streamDirName(in.Name, created)))
	if err != nil {
		return StreamInfo{}, err
	}
	s.streams[in.Name] = st
	if err := s.saveCatalogLocked(); err != nil {
		delete(s.streams, in.Name)
		_ = s.fs.RemoveAll(st.dir)
		return StreamInfo{}, err
	}
	s.log.Info("store: stream created", "stream", in.Name, "retention_hours", in.RetentionHours)
	return info.clone(), nil
}

// StreamRef names a stream by name or by ARN (exactly one, as the seed service asks).
type StreamRef struct {
	Name string
	ARN  string
}

func (s *Store) resolve(ref StreamRef) (*stream, error) {
	name := ref.Name
	switch {
	case ref.Name != "" && ref.ARN != "":
		return nil, invalid("give StreamName or StreamARN, not both")
	case ref.ARN != "":
		n, err := parseARN(ref.ARN)
		if err != nil {
			return nil, err
		}
		name = n
	case ref.Name == "":
		return nil, invalid("StreamName or StreamARN is required")
	default:
		if err := ValidateStreamName(ref.Name); err != nil {
			return nil, err
		}
	}
	st, err := s.stream(name)
	if err != nil {
		return nil, err
	}
	if ref.ARN != "" {
		st.mu.RLock()
		arn := st.info.ARN
		st.mu.RUnlock()
		if arn != ref.ARN {
			return nil, refuse(ErrStreamNotFound, "stream %s not found", ref.ARN)
		}
	}
	return st, nil
}

// DescribeStream returns a stream's catalog entry.
func (s *Store) DescribeStream(ref StreamRef) (StreamInfo, error) {
	st, err := s.resolve(ref)
	if err != nil {
		return StreamInfo{}, err
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.info.clone(), nil
}

// ListStreams returns up to limit streams whose names begin with prefix, in
// name order, after the position of nextToken; the returned token continues
// the listing ("" at the end).
func (s *Store) ListStreams(prefix string, limit int, nextToken string) ([]StreamInfo, string, error) {
	if limit <= 0 || limit > 10000 {
		return nil, "", invalid("MaxResults must be 1 to 10000")
	}
	after := ""
	if nextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(nextToken)
		if err != nil || !strings.HasPrefix(string(b), "s:") {
			return nil, "", invalid("NextToken is not one this server issued")
		}
		after = string(b[2:])
	}
	s.mu.RLock()
	names := make([]string, 0, len(s.streams))
	for n := range s.streams {
		if strings.HasPrefix(n, prefix) && n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []StreamInfo
	for _, n := range names {
		st := s.streams[n]
		st.mu.RLock()
		if st.info.Status != StatusDeleting {
			out = append(out, st.info.clone())
		}
		st.mu.RUnlock()
	}
	s.mu.RUnlock()
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte("s:" + out[limit-1].Name))
	}
	return out, next, nil
}

// update applies fn to a stream's info under the catalog lock after checking
// currentVersion (when given), bumps the version and saves the catalog.
func (s *Store) update(ref StreamRef, currentVersion string, fn func(*StreamInfo) error) error {
	st, err := s.resolve(ref)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.mu.Lock()
	old := st.info.clone()
	if currentVersion != "" && currentVersion != st.info.Version {
		st.mu.Unlock()
		return refuse(ErrVersionMismatch, "stream %s is at version %s, not %s", st.info.Name, st.info.Version, currentVersion)
	}
	next := st.info.clone()
	if err := fn(&next); err != nil {
		st.mu.Unlock()
		return err
	}
	next.Version = newVersion()
	st.info = next
	st.mu.Unlock()
	if err := s.saveCatalogLocked(); err != nil {
		st.mu.Lock()
		st.info = old
		st.mu.Unlock()
		return err
	}
	return nil
}

// UpdateStream changes a stream's device name and media type (nil: unchanged).
func (s *Store) UpdateStream(ref StreamRef, currentVersion string, deviceName, mediaType *string) error {
	if currentVersion == "" {
		return invalid("CurrentVersion is required")
	}
	if deviceName != nil {
		if err := validateDeviceName(*deviceName); err != nil {
			return err
		}
	}
	if mediaType != nil {
		if err := validateMediaType(*mediaType); err != nil {
			return err
		}
	}
	return s.update(ref, currentVersion, func(in *StreamInfo) error {
		if deviceName != nil {
			in.DeviceName = *deviceName
		}
		if mediaType != nil {
			in.MediaType = *mediaType
		}
		return nil
	})
}

// UpdateDataRetention raises or lowers a stream's retention by changeHours.
func (s *Store) UpdateDataRetention(ref StreamRef, currentVersion string, increase bool, changeHours int) error {
	if currentVersion == "" {
		return invalid("CurrentVersion is required")
	}
	if changeHours < 1 {
		return invalid("DataRetentionChangeInHours must be at least 1")
	}
	return s.update(ref, currentVersion, func(in *StreamInfo) error {
		h := in.RetentionHours - changeHours
		if increase {
			h = in.RetentionHours + changeHours
		}
		if h < 0 || h > MaxRetentionHours {
			return invalid("retention would become %d hours; it must be 0 to %d", h, MaxRetentionHours)
		}
		in.RetentionHours = h
		return nil
	})
}

// TagStream adds or replaces tags.
func (s *Store) TagStream(ref StreamRef, tags map[string]string) error {
	if len(tags) == 0 {
		return invalid("Tags must hold at least one tag")
	}
	return s.update(ref, "", func(in *StreamInfo) error {
		if err := validateTags(in.Tags, tags); err != nil {
			return err
		}
		for k, v := range tags {
			in.Tags[k] = v
		}
		return nil
	})
}

// UntagStream removes tags by key; absent keys are ignored.
func (s *Store) UntagStream(ref StreamRef, keys []string) error {
	if len(keys) == 0 {
		return invalid("TagKeyList must hold at least one key")
	}
	return s.update(ref, "", func(in *StreamInfo) error {
		for _, k := range keys {
			delete(in.Tags, k)
		}
		return nil
	})
}

// DeleteStream removes a stream and all its data. The deletion is recorded
// first, so a crash part-way is finished at the next start.
func (s *Store) DeleteStream(ref StreamRef, currentVersion string) error {
	st, err := s.resolve(ref)
	if err != nil {
		return err
	}
	s.mu.Lock()
	st.mu.Lock()
	if currentVersion != "" && currentVersion != st.info.Version {
		st.mu.Unlock()
		s.mu.Unlock()
		return refuse(ErrVersionMismatch, "stream %s is at version %s, not %s", st.info.Name, st.info.Version, currentVersion)
	}
	name := st.info.Name
	st.info.Status = StatusDeleting
	st.mu.Unlock()
	if err := s.saveCatalogLocked(); err != nil {
		st.mu.Lock()
		st.info.Status = StatusActive
		st.mu.Unlock()
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()

	cerr := st.close(false) // waits for an append in progress; wakes every reader
	if cerr != nil {
		s.log.Warn("store: closing a deleted stream", "stream", name, "err", cerr)
	}
	st.mu.RLock()
	for _, seg := range st.segments {
		s.cache.drop(seg.idxPath)
	}
	st.mu.RUnlock()
	if err := s.fs.RemoveAll(st.dir); err != nil {
		return refuse(ErrDataNotDeleted, "deleting the data of stream %s failed; it will be retried at the next start", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, name)
	if err := s.saveCatalogLocked(); err != nil {
		return err
	}
	s.log.Info("store: stream deleted", "stream", name)
	return nil
}
