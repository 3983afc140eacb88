package vfs

// FileSystemSyncer is an FS that can make everything written to the file
// system holding a folder durable with one call (syncfs(2) on Linux). After
// a batch that wrote to hundreds of files, one such flush costs about what
// one fsync does, where an fsync per file costs hundreds.
type FileSystemSyncer interface {
	// OpenFileSystem returns a handle on the file system holding dir, or an
	// error wrapping errors.ErrUnsupported where the flush cannot be
	// trusted (no syncfs, or a kernel whose syncfs does not report
	// write-back errors).
	OpenFileSystem(dir string) (FileSystem, error)
}

// FileSystem is a handle on one file system, from OpenFileSystem.
type FileSystem interface {
	// Sync makes every file written on the file system durable, and returns
	// an error if the write-back of any file on it failed since the handle
	// was opened or last synced. The error does not say which file: a caller
	// that needs to know fsyncs its files one by one, each of which reports
	// its own failure.
	Sync() error
	// Holds reports whether path is on this file system (not on another
	// one mounted below the folder).
	Holds(path string) bool
	Close() error
}
