package store

import (
	"encoding/base64"
	"slices"
	"strings"
	"time"
)

// NewStreamInfo checks a CreateStream request and returns the catalog entry
// of the stream it makes, created at now: ARN, version and defaults filled
// in (an empty KmsKeyId takes the keyring's default master key, which
// DescribeStream then shows). The cluster's catalog makes its entries with
// it too, so that both catalogs take and refuse the same requests.
func NewStreamInfo(in CreateStreamInput, now time.Time, region, account string, ring *Keyring) (StreamInfo, error) {
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
	if in.KMSKeyID == "" {
		in.KMSKeyID = ring.Default
	}
	if !ring.Has(in.KMSKeyID) {
		return StreamInfo{}, invalid("KmsKeyId %q is not a master key of this server's keyring (it has %s)",
			truncate(in.KMSKeyID, 128), strings.Join(ring.IDs(), ", "))
	}
	if in.RetentionHours < 0 || in.RetentionHours > MaxRetentionHours {
		return StreamInfo{}, invalid("DataRetentionInHours must be 0 to %d", MaxRetentionHours)
	}
	if err := validateTags(nil, in.Tags); err != nil {
		return StreamInfo{}, err
	}
	created := now.UTC().Truncate(time.Millisecond)
	info := StreamInfo{
		Name: in.Name, ARN: ARN(region, account, in.Name, created),
		DeviceName: in.DeviceName, MediaType: in.MediaType, KMSKeyID: in.KMSKeyID,
		Version: NewVersion(), Status: StatusActive, CreationTime: created,
		RetentionHours: in.RetentionHours, Tags: map[string]string{},
	}
	for k, v := range in.Tags {
		info.Tags[k] = v
	}
	return info, nil
}

// CreateStream adds a stream to the catalog and makes its folder.
func (s *Store) CreateStream(in CreateStreamInput) (StreamInfo, error) {
	info, err := NewStreamInfo(in, s.now(), s.opts.Region, s.opts.Account, s.opts.Keyring)
	if err != nil {
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
	if err := s.addStreamLocked(info); err != nil {
		return StreamInfo{}, err
	}
	s.log.Info("store: stream created", "stream", in.Name, "retention_hours", in.RetentionHours)
	return info.Clone(), nil
}

// addStreamLocked makes a stream's folder and records it in the catalog
// file. s.mu held.
func (s *Store) addStreamLocked(info StreamInfo) error {
	st, _, err := s.openStream(info, s.streamDir(streamDirName(info.Name, info.CreationTime)))
	if err != nil {
		return err
	}
	s.streams[info.Name] = st
	s.names.insert(info.Name)
	if err := s.putCatalogLocked(st); err != nil {
		delete(s.streams, info.Name)
		s.names.remove(info.Name)
		_ = st.close(false)
		_ = s.fs.RemoveAll(st.dir)
		return err
	}
	return nil
}

// StreamRef names a stream by name or by ARN (exactly one, as the seed service asks).
type StreamRef struct {
	Name string
	ARN  string
}

// ResolveName checks a reference and returns the stream name it names (for
// an ARN, the name inside it; the caller still checks that the ARN is the
// stream's own).
func ResolveName(ref StreamRef) (string, error) {
	switch {
	case ref.Name != "" && ref.ARN != "":
		return "", invalid("give StreamName or StreamARN, not both")
	case ref.ARN != "":
		return parseARN(ref.ARN)
	case ref.Name == "":
		return "", invalid("StreamName or StreamARN is required")
	}
	if err := ValidateStreamName(ref.Name); err != nil {
		return "", err
	}
	return ref.Name, nil
}

func (s *Store) resolve(ref StreamRef) (*stream, error) {
	name, err := ResolveName(ref)
	if err != nil {
		return nil, err
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
	return st.info.Clone(), nil
}

// ListStreams returns up to limit streams whose names begin with prefix, in
// name order, after the position of nextToken; the returned token continues
// the listing ("" at the end).
func (s *Store) ListStreams(prefix string, limit int, nextToken string) ([]StreamInfo, string, error) {
	after, err := ParseListToken(limit, nextToken)
	if err != nil {
		return nil, "", err
	}
	s.mu.RLock()
	var out []StreamInfo
	// One more than the page, to know whether the listing goes on.
	for _, n := range s.names.from(prefix, after) {
		if !strings.HasPrefix(n, prefix) || len(out) > limit {
			break
		}
		st := s.streams[n]
		st.mu.RLock()
		if st.info.Status != StatusDeleting {
			out = append(out, st.info.Clone())
		}
		st.mu.RUnlock()
	}
	s.mu.RUnlock()
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = ListToken(out[limit-1].Name)
	}
	return out, next, nil
}

// ListToken is the NextToken of a listing whose last stream is name.
func ListToken(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s:" + name))
}

// ParseListToken checks a listing's MaxResults and NextToken, and returns
// the name the listing continues after ("" from the start).
func ParseListToken(limit int, nextToken string) (string, error) {
	if limit <= 0 || limit > 10000 {
		return "", invalid("MaxResults must be 1 to 10000")
	}
	if nextToken == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(nextToken)
	if err != nil || !strings.HasPrefix(string(b), "s:") {
		return "", invalid("NextToken is not one this server issued")
	}
	return string(b[2:]), nil
}

// update applies fn to a stream's info under the catalog lock after checking
// currentVersion (when given), bumps the version and saves the catalog.
func (s *Store) update(ref StreamRef, currentVersion string, fn Edit) error {
	st, err := s.resolve(ref)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.mu.Lock()
	old := st.info.Clone()
	if currentVersion != "" && currentVersion != st.info.Version {
		st.mu.Unlock()
		return refuse(ErrVersionMismatch, "stream %s is at version %s, not %s", st.info.Name, st.info.Version, currentVersion)
	}
	next := st.info.Clone()
	if err := fn(&next); err != nil {
		st.mu.Unlock()
		return err
	}
	next.Version = NewVersion()
	st.info = next
	st.mu.Unlock()
	if err := s.putCatalogLocked(st); err != nil {
		st.mu.Lock()
		st.info = old
		st.mu.Unlock()
		return err
	}
	return nil
}

// Edit is a change to a stream's catalog entry, checked before it is made.
// The store and the cluster's catalog apply the same edits, each under its
// own compare-and-set.
type Edit func(*StreamInfo) error

// EditStream checks an UpdateStream request and returns its edit: the
// device name and media type (nil: unchanged).
func EditStream(currentVersion string, deviceName, mediaType *string) (Edit, error) {
	if currentVersion == "" {
		return nil, invalid("CurrentVersion is required")
	}
	if deviceName != nil {
		if err := validateDeviceName(*deviceName); err != nil {
			return nil, err
		}
	}
	if mediaType != nil {
		if err := validateMediaType(*mediaType); err != nil {
			return nil, err
		}
	}
	return func(in *StreamInfo) error {
		if deviceName != nil {
			in.DeviceName = *deviceName
		}
		if mediaType != nil {
			in.MediaType = *mediaType
		}
		return nil
	}, nil
}

// EditRetention checks an UpdateDataRetention request and returns its edit.
func EditRetention(currentVersion string, increase bool, changeHours int) (Edit, error) {
	if currentVersion == "" {
		return nil, invalid("CurrentVersion is required")
	}
	if changeHours < 1 {
		return nil, invalid("DataRetentionChangeInHours must be at least 1")
	}
	return func(in *StreamInfo) error {
		h := in.RetentionHours - changeHours
		if increase {
			h = in.RetentionHours + changeHours
		}
		if h < 0 || h > MaxRetentionHours {
			return invalid("retention would become %d hours; it must be 0 to %d", h, MaxRetentionHours)
		}
		in.RetentionHours = h
		return nil
	}, nil
}

// EditTags checks a TagStream request and returns its edit.
func EditTags(tags map[string]string) (Edit, error) {
	if len(tags) == 0 {
		return nil, invalid("Tags must hold at least one tag")
	}
	return func(in *StreamInfo) error {
		if err := validateTags(in.Tags, tags); err != nil {
			return err
		}
		for k, v := range tags {
			in.Tags[k] = v
		}
		return nil
	}, nil
}

// EditUntag checks an UntagStream request and returns its edit; absent keys
// are ignored.
func EditUntag(keys []string) (Edit, error) {
	if len(keys) == 0 {
		return nil, invalid("TagKeyList must hold at least one key")
	}
	return func(in *StreamInfo) error {
		for _, k := range keys {
			delete(in.Tags, k)
		}
		return nil
	}, nil
}

// UpdateStream changes a stream's device name and media type (nil: unchanged).
func (s *Store) UpdateStream(ref StreamRef, currentVersion string, deviceName, mediaType *string) error {
	edit, err := EditStream(currentVersion, deviceName, mediaType)
	if err != nil {
		return err
	}
	return s.update(ref, currentVersion, edit)
}

// UpdateDataRetention raises or lowers a stream's retention by changeHours.
func (s *Store) UpdateDataRetention(ref StreamRef, currentVersion string, increase bool, changeHours int) error {
	edit, err := EditRetention(currentVersion, increase, changeHours)
	if err != nil {
		return err
	}
	return s.update(ref, currentVersion, edit)
}

// TagStream adds or replaces tags.
func (s *Store) TagStream(ref StreamRef, tags map[string]string) error {
	edit, err := EditTags(tags)
	if err != nil {
		return err
	}
	return s.update(ref, "", edit)
}

// UntagStream removes tags by key; absent keys are ignored.
func (s *Store) UntagStream(ref StreamRef, keys []string) error {
	edit, err := EditUntag(keys)
	if err != nil {
		return err
	}
	return s.update(ref, "", edit)
}

// DeleteStream removes a stream and all its data. The deletion is recorded
// first, so a crash part-way is finished at the next start.
func (s *Store) DeleteStream(ref StreamRef, currentVersion string) error {
	st, err := s.resolve(ref)
	if err != nil {
		return err
	}
	return s.deleteStream(st, currentVersion)
}

func (s *Store) deleteStream(st *stream, currentVersion string) error {
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
	if err := s.putCatalogLocked(st); err != nil {
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
	if err := s.removeStreamDir(st.dir); err != nil {
		return refuse(ErrDataNotDeleted, "deleting the data of stream %s failed; it will be retried at the next start", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, name)
	s.names.remove(name)
	if err := s.deleteCatalogLocked(name); err != nil {
		return err
	}
	s.log.Info("store: stream deleted", "stream", name)
	return nil
}

// Materialize makes this store's copy of a stream whose catalog is kept
// elsewhere (the cluster's): it creates the copy with info's ARN, creation
// time and version when the store has none, or replaces the catalog entry of
// the copy it has (retention, tags, version …). created reports a new copy.
// A copy of another incarnation (another ARN) is refused: delete it first
// (DropLocal).
func (s *Store) Materialize(info StreamInfo) (created bool, err error) {
	if err := ValidateStreamName(info.Name); err != nil {
		return false, err
	}
	info = info.Clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.streams[info.Name]; ok {
		st.mu.Lock()
		if st.info.ARN != info.ARN || st.info.Status == StatusDeleting {
			st.mu.Unlock()
			return false, refuse(ErrStreamExists, "stream %s exists here as another incarnation (%s)", info.Name, st.info.ARN)
		}
		old := st.info
		st.info = info
		st.mu.Unlock()
		if old.Version == info.Version && old.RetentionHours == info.RetentionHours {
			return false, nil
		}
		if err := s.putCatalogLocked(st); err != nil {
			st.mu.Lock()
			st.info = old
			st.mu.Unlock()
			return false, err
		}
		return false, nil
	}
	if err := s.addStreamLocked(info); err != nil {
		return false, err
	}
	s.log.Info("store: local copy of a stream created", "stream", info.Name, "arn", info.ARN)
	return true, nil
}

// DropLocal deletes this store's copy of a stream (whatever its version):
// the cluster deleted the stream, or placed it on other nodes.
func (s *Store) DropLocal(name string) error {
	st, err := s.stream(name)
	if err != nil {
		return err
	}
	return s.deleteStream(st, "")
}

// AllStreams returns the catalog entry of every stream the store holds.
func (s *Store) AllStreams() ([]StreamInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]StreamInfo, 0, len(s.streams))
	for _, n := range s.names {
		st := s.streams[n]
		st.mu.RLock()
		if st.info.Status != StatusDeleting {
			out = append(out, st.info.Clone())
		}
		st.mu.RUnlock()
	}
	return out, nil
}

// streamNames is the names of the store's streams in order, kept as
// streams come and go, so that a page of ListStreams costs a binary search
// and the page rather than a sort of every name. An insertion or removal
// moves the slice's tail: a memmove of 16 bytes a stream, well below the
// fsync that records the change.
type streamNames []string

func (n *streamNames) insert(name string) {
	if i, found := slices.BinarySearch(*n, name); !found {
		*n = slices.Insert(*n, i, name)
	}
}

func (n *streamNames) remove(name string) {
	if i, found := slices.BinarySearch(*n, name); found {
		*n = slices.Delete(*n, i, i+1)
	}
}

// from returns the names from the first that is above after and not below
// prefix: those with the prefix come first, in order.
func (n streamNames) from(prefix, after string) []string {
	i, _ := slices.BinarySearch(n, prefix)
	j, found := slices.BinarySearch(n, after)
	if found {
		j++
	}
	return n[max(i, j):]
}
