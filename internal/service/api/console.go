package api

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/web"
)

// The console (docs/CONSOLE.md): its page at / and its assets at
// /console/, from the files package web embeds. They hold no stream data,
// so a browser loads them before it holds a key (selfAuthenticatedPaths);
// every request the page then makes for data is signed like any client's
// (console_data.go, live.go, preview.go and the API's own operations).

func init() {
	// "/" is the root alone; "/console/" covers the paths under it.
	selfAuthenticatedPaths = append(selfAuthenticatedPaths, "/console/", "/")
	mount(func(a *api, mux *http.ServeMux) {
		c := newConsoleFiles(web.Assets)
		mux.HandleFunc("GET /{$}", c.serve("index.html"))
		mux.HandleFunc("GET /console/{$}", c.serve("index.html"))
		mux.HandleFunc("GET /console/config.json", a.consoleConfig)
		mux.HandleFunc("GET /console/{file...}", func(w http.ResponseWriter, r *http.Request) {
			c.serve(r.PathValue("file"))(w, r)
		})
	})
}

// consoleCSP lets the page load and connect to its own origin only: no
// CDN, no inline script, nothing framed or framing it. blob: is for the
// downloads the page saves and the media it plays from memory.
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"media-src 'self' blob:; connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

// consoleFile is one asset, read once: the embedded files never change
// while the binary runs, so their ETag is their hash.
type consoleFile struct {
	body        []byte
	etag        string
	contentType string
}

type consoleFiles map[string]consoleFile

func newConsoleFiles(assets fs.FS) consoleFiles {
	c := consoleFiles{}
	_ = fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if strings.HasSuffix(p, ".js") { // some systems' mime tables say application/x-javascript
			ct = "text/javascript; charset=utf-8"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		c[p] = consoleFile{body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, contentType: ct}
		return nil
	})
	return c
}

// serve answers one asset. Browsers revalidate every time (no-cache) and
// get 304 while the binary is the same, so an upgraded server is never
// shown with the page of the previous one.
func (c consoleFiles) serve(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, ok := c[name]
		if !ok {
			http.Error(w, "no such console file", http.StatusNotFound)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, f.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", f.contentType)
		_, _ = w.Write(f.body)
	}
}

// consoleConfig tells the page how to sign: whether the API wants
// signatures, and the region and signing name they must be scoped to.
// None of it is secret.
func (a *api) consoleConfig(w http.ResponseWriter, _ *http.Request) {
	cfg := struct {
		Auth    bool   `json:"auth"`
		Region  string `json:"region"`
		Service string `json:"service"`
	}{Service: awsauth.Service}
	if v := a.opts.Auth; v != nil {
		cfg.Auth, cfg.Region = true, v.Region
		if v.Service != "" {
			cfg.Service = v.Service
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, cfg)
}
