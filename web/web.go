// Package web holds the console's assets — its one HTML page, its style sheet
// and its JavaScript modules — embedded in the binary, so that the console
// works where nothing can be fetched from the Internet (docs/CONSOLE.md).
// internal/service/api serves them at /console/ and the page at /.
//
// Nothing here is generated or bundled: the modules are written for the
// browser as they are, plot with the 2-D canvas, read Arrow IPC streams with
// a reader of the few types the API returns (static/arrow.js) and sign
// requests with SigV4 through WebCrypto (static/sigv4.js).
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Assets are the console's files, at their paths under /console/.
var Assets fs.FS = mustSub(static, "static")

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // a constant folder of an embedded file system
	}
	return s
}
