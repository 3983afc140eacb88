package store

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// Options configure a Store. Zero values take the documented defaults.
type Options struct {
	Dir    string       // required: the store's folder
	FS     vfs.FS       // default vfs.OS; tests inject faults here
	Logger *slog.Logger // default slog.Default()
	Now    func() time.Time

	Region  string // for ARNs; default "us-east-1"
	Account string // for ARNs; default "000000000000"

	SegmentMaxBytes     int64         // seal a segment past this size; default 128 MiB
	SegmentMaxAge       time.Duration // seal a segment whose first fragment is older; default 1 h, shortened per stream by up to a quarter (stream.go)
	SegmentMaxFragments int           // seal a segment with this many fragments; default 262144
	IndexCacheEntries   int           // sealed index entries kept in memory; default 1<<20 (64 MiB)
	RetentionInterval   time.Duration // how often retention runs; default 1 min; < 0 disables the timer
	DedupeHorizon       time.Duration // forget producers silent for longer; default 30 days
	MaxStreams          int           // default DefaultStreamsLimit
	// MaxOpenSegments bounds the active segment files kept open across all
	// streams; an idle stream's file is closed past it and reopened at its
	// next append (openfiles.go). Default DefaultMaxOpenSegments.
	MaxOpenSegments int
	// PerFileSync makes SyncStreams fsync each stream's segment file even
	// where one flush of the whole file system would do (groupsync.go).
	PerFileSync bool

	// Keyring holds the master keys that wrap the streams' data keys; default:
	// the keyring file keyring.json in Dir, created at first start.
	Keyring *Keyring
	// KeyRotation is how long a stream's data key seals new records before a
	// new one replaces it, shortened per stream by up to a quarter so that
	// streams do not all rotate at once (stream.go); default 45 minutes.
	KeyRotation time.Duration

	// Expand, when set, gives readers (Reader.Read) the fragment a stored
	// payload stands for, when the writer stored it in a form of its own —
	// the server's PCM audio is stored losslessly coded (package pcmpack):
	// it appends that fragment to dst and returns it with its cluster
	// offset, or returns expanded false for a payload to be read as it is.
	// The store does not interpret payloads; this is the caller's. Called
	// from readers' goroutines.
	Expand func(dst, payload []byte, clusterOffset uint32) (out []byte, offset uint32, expanded bool, err error)
}

func (o *Options) setDefaults() {
	if o.FS == nil {
		o.FS = vfs.OS
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Account == "" {
		o.Account = "000000000000"
	}
	if o.SegmentMaxBytes <= 0 {
		o.SegmentMaxBytes = 128 << 20
	}
	if o.SegmentMaxAge <= 0 {
		o.SegmentMaxAge = time.Hour
	}
	if o.SegmentMaxFragments <= 0 {
		o.SegmentMaxFragments = 1 << 18
	}
	if o.IndexCacheEntries <= 0 {
		o.IndexCacheEntries = 1 << 20
	}
	if o.RetentionInterval == 0 {
		o.RetentionInterval = time.Minute
	}
	if o.DedupeHorizon <= 0 {
		o.DedupeHorizon = 30 * 24 * time.Hour
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultStreamsLimit
	}
	if o.MaxOpenSegments <= 0 {
		o.MaxOpenSegments = DefaultMaxOpenSegments
	}
	if o.KeyRotation <= 0 {
		o.KeyRotation = 45 * time.Minute
	}
}

// Store is the durable home of every stream's catalog entry and fragments.
// It is safe for concurrent use; appends to one stream must come from one
// goroutine in bus order.
type Store struct {
	opts    Options
	dir     string
	fs      vfs.FS
	log     *slog.Logger
	cache   *indexCache
	metrics *metrics

	mu      sync.RWMutex       // guards streams, names and the catalog files
	streams map[string]*stream // by name, including streams being deleted
	names   streamNames        // the keys of streams, sorted, for ListStreams
	catalog *catalogJournal    // the catalog on disk (catalogfile.go)

	files   *openFiles     // the active segment files open, bounded (openfiles.go)
	fsSync  vfs.FileSystem // flushes the store's file system whole; nil: none (groupsync.go)
	closing chan struct{}
	wg      sync.WaitGroup
	Repairs []RepairReport // what start-up repair did, for the log and for tests
}

// Open opens (or creates) the store in opts.Dir: it reads the catalog, opens
// every stream, repairs torn segment tails and finishes interrupted deletions.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("store: Options.Dir is required")
	}
	opts.setDefaults()
	s := &Store{
		opts:    opts,
		dir:     opts.Dir,
		fs:      opts.FS,
		log:     opts.Logger,
		cache:   newIndexCache(opts.FS, opts.IndexCacheEntries),
		metrics: newMetrics(),
		files:   newOpenFiles(opts.MaxOpenSegments),
		streams: map[string]*stream{},
		closing: make(chan struct{}),
	}
	if err := mkdirDurable(s.fs, siteStoreFolders, filepath.Join(s.dir, "streams"), 0o750); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", s.dir, err)
	}
	if s.opts.Keyring == nil {
		k, err := LoadKeyring(s.fs, filepath.Join(s.dir, "keyring.json"))
		if err != nil {
			return nil, err
		}
		s.opts.Keyring = k
	}
	entries, catalog, err := openCatalog(s.fs, s.dir, s.log)
	if err != nil {
		return nil, err
	}
	s.catalog = catalog
	var unfinished []catalogStream
	for _, c := range entries {
		if c.Status == StatusDeleting {
			unfinished = append(unfinished, c)
			continue
		}
		info := StreamInfo{
			Name: c.Name, ARN: c.ARN, DeviceName: c.DeviceName, MediaType: c.MediaType, KMSKeyID: c.KMSKeyID,
			Version: c.Version, Status: c.Status, CreationTime: c.CreationTime, RetentionHours: c.RetentionHours, Tags: c.Tags,
		}
		if info.Tags == nil {
			info.Tags = map[string]string{}
		}
		st, reports, err := s.openStream(info, s.streamDir(c.Dir))
		if err != nil {
			s.closeStreams()
			return nil, err
		}
		s.Repairs = append(s.Repairs, reports...)
		s.streams[c.Name] = st
		s.names = append(s.names, c.Name) // entries come sorted by name
	}
	for _, c := range unfinished {
		if err := s.removeStreamDir(s.streamDir(c.Dir)); err != nil {
			s.closeStreams()
			return nil, fmt.Errorf("store: finish deleting stream %s: %w", c.Name, err)
		}
		s.log.Info("store: finished an interrupted stream deletion", "stream", c.Name)
	}
	if len(unfinished) > 0 {
		if err := s.saveCatalogLocked(); err != nil {
			s.closeStreams()
			return nil, err
		}
	}
	s.fsSync = openFileSystemSync(&s.opts)
	if opts.RetentionInterval > 0 {
		s.wg.Add(1)
		go s.retentionLoop()
	}
	return s, nil
}

// removeStreamDir removes a stream's folder, durably: the catalog entry
// goes only after the folder is gone for good, else a power cut could bring
// back a folder no entry names, which nothing would ever remove.
func (s *Store) removeStreamDir(dir string) error {
	if err := s.fs.RemoveAll(dir); err != nil {
		return err
	}
	return syncDirAt(s.fs, siteStreamDelete, filepath.Dir(dir))
}

func (s *Store) now() time.Time { return s.opts.Now() }

// Close makes everything appended durable and closes the files. Appends after
// Close fail.
func (s *Store) Close() error {
	select {
	case <-s.closing:
		return nil
	default:
	}
	close(s.closing)
	s.wg.Wait()
	err := s.closeStreams()
	if s.fsSync != nil {
		err = errors.Join(err, s.fsSync.Close())
	}
	return err
}

func (s *Store) closeStreams() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, st := range s.streams {
		errs = append(errs, st.close(true))
	}
	return errors.Join(errs...)
}

// close syncs and closes the active segment and refuses further work. With
// seal (a clean stop) it seals the active segment too: the next start finds
// a sound index for every segment, so a byte damaged while the store was
// down is an error for its one fragment when read, not a record that the
// start-up scan must skip. A deleted stream needs no index.
func (st *stream) close(seal bool) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	var err error
	if st.w != nil && seal {
		if err = st.sealLocked(); err != nil {
			st.log.Warn("store: cannot seal the active segment at close; the next start seals it", "err", err)
		}
	}
	if st.w != nil {
		if serr := st.syncLocked(); err == nil {
			err = serr
		}
		if st.w != nil {
			if cerr := st.w.closeFile(); err == nil {
				err = cerr
			}
			st.w = nil
		}
	}
	st.mu.Lock()
	st.deleted = true
	st.notifyLocked()
	st.mu.Unlock()
	return err
}

// stream returns the named stream, or an ErrStreamNotFound.
func (s *Store) stream(name string) (*stream, error) {
	s.mu.RLock()
	st := s.streams[name]
	s.mu.RUnlock()
	if st == nil {
		return nil, refuse(ErrStreamNotFound, "stream %s not found", name)
	}
	st.mu.RLock()
	deleting := st.info.Status == StatusDeleting || st.deleted
	st.mu.RUnlock()
	if deleting {
		return nil, refuse(ErrStreamNotFound, "stream %s not found (it is being deleted)", name)
	}
	return st, nil
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }
