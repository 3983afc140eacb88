package internal

import (
	"errors"
	"go/build"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sensorium-io/sensorium"

// TestLayers checks the rule of doc.go against what the module's packages
// import, directly or not (test files aside: a test may start a real
// server): no platform package imports service or testkit, no public
// package imports service, and the simulators import nothing of ours but
// signals and codecs. It also keeps net/http out of the store and the
// query service, which say what went wrong and leave HTTP to the edge (as
// far as our packages go: it does not follow other modules' imports). It
// reads the sources with go/build, so that the test cache knows the files it
// depends on.
func TestLayers(t *testing.T) {
	imports, std := moduleImports(t, "..")
	public := []string{"store", "ingest", "query", "sdk", "mkv", "signals", "codecs", "simulate"}
	checked := 0
	for pkg := range imports {
		var forbidden []string
		switch {
		case under(pkg, "internal/platform"):
			forbidden = []string{"internal/service", "internal/testkit"}
		case underAny(pkg, public):
			forbidden = []string{"internal/service"}
		default:
			continue
		}
		checked++
		for _, d := range deps(imports, pkg) {
			if underAny(d, forbidden) {
				t.Errorf("%s imports %s (see internal/doc.go)", pkg, d)
			}
		}
	}
	if checked < len(public)+4 {
		t.Fatalf("checked %d packages; the walk looks incomplete", checked)
	}
	for pkg := range imports {
		if !under(pkg, "simulate") {
			continue
		}
		for _, d := range deps(imports, pkg) {
			if !underAny(d, []string{"signals", "codecs"}) {
				t.Errorf("%s imports %s; a simulator may import signals and codecs only (see simulate/doc.go)", pkg, d)
			}
		}
	}
	for _, pkg := range []string{"store", "query"} {
		for _, p := range append(deps(imports, pkg), pkg) {
			if slices.Contains(std[p], "net/http") {
				t.Errorf("%s links net/http through %s", pkg, p)
			}
		}
	}
}

// moduleImports returns, for each package of the module below root, the
// packages of the module its non-test files import, as paths relative to the
// module ("store", "internal/platform/wire"), and the other packages they
// import.
func moduleImports(t *testing.T, root string) (ours, others map[string][]string) {
	t.Helper()
	ours, others = map[string][]string{}, map[string][]string{}
	err := filepath.WalkDir(root, func(dir string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		name := d.Name()
		if dir != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules" || name == "compat") {
			return filepath.SkipDir // hidden, test data, or another module
		}
		p, err := build.ImportDir(dir, 0)
		if _, none := errors.AsType[*build.NoGoError](err); none {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			return err
		}
		pkg := path.Clean(filepath.ToSlash(rel))
		ours[pkg] = nil // listed even when it imports nothing of ours
		for _, imp := range p.Imports {
			if r, ok := strings.CutPrefix(imp, module+"/"); ok {
				ours[pkg] = append(ours[pkg], r)
			} else {
				others[pkg] = append(others[pkg], imp)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ours, others
}

// deps returns every package of the module that pkg imports, directly or not.
func deps(imports map[string][]string, pkg string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for _, d := range imports[p] {
			if !seen[d] {
				seen[d] = true
				walk(d)
			}
		}
	}
	walk(pkg)
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// under reports whether pkg is dir or below it.
func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

func underAny(pkg string, dirs []string) bool {
	return slices.ContainsFunc(dirs, func(d string) bool { return under(pkg, d) })
}
