package store

import (
	"io/fs"

	"github.com/sensorium-io/sensorium/internal/platform/vfs"
)

// Every directory fsync the store makes is named by a site, so that a test
// can skip one at a time and see a power cut lose something: each one is
// proven needed (TestEveryDirSyncIsNeeded), not hoped about.
const (
	siteStoreFolders = "store-folders"  // the store's folder and streams/, at Open
	siteStreamFolder = "stream-folder"  // a stream's folder, at creation
	siteSegment      = "segment-create" // a new segment file's entry
	siteCatalog      = "catalog"        // the catalog's atomic rewrite
	siteDataKeys     = "data-keys"      // keys.json and keys.backup.json rewrites
	siteIndex        = "index"          // a sealed segment's index
	siteRetention    = "retention"      // segments removed by retention
	siteRepairTail   = "repair-tail"    // the .broken copy of a torn tail
	siteStreamDelete = "stream-delete"  // a deleted stream's folder removed
	siteKeyring      = "keyring"        // the keyring created at first start
)

// dirSyncSkipped is the site whose directory fsyncs are skipped; "" (always,
// outside TestEveryDirSyncIsNeeded) skips none. A test hook, never set by
// the product: it is read without a lock, so a test sets it only while no
// store is running.
var dirSyncSkipped string

// fsAt returns fsys, or, for the skipped site, a view of it whose SyncDir
// does nothing: the durability helpers in vfs then run as they would
// without that fsync.
func fsAt(fsys vfs.FS, site string) vfs.FS {
	if dirSyncSkipped != "" && site == dirSyncSkipped {
		return noDirSync{fsys}
	}
	return fsys
}

// syncDirAt fsyncs dir on behalf of site.
func syncDirAt(fsys vfs.FS, site, dir string) error {
	return fsAt(fsys, site).SyncDir(dir)
}

// mkdirDurable makes dir and the folders above it that are missing, durably.
func mkdirDurable(fsys vfs.FS, site, dir string, perm fs.FileMode) error {
	return vfs.MkdirAllDurable(fsAt(fsys, site), dir, perm)
}

type noDirSync struct{ vfs.FS }

func (noDirSync) SyncDir(string) error { return nil }
