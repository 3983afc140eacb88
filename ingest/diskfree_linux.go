package ingest

import "syscall"

// freeBytes is the space on path's file system that an unprivileged writer
// may still use.
func freeBytes(path string) (int64, bool) {
	var st syscall.Statfs_t
	if path == "" || syscall.Statfs(path, &st) != nil {
		return 0, false
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), true
}
