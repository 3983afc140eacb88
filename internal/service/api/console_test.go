package api

import "testing"

// The console's page and assets load before a browser holds a key; nothing
// else may: the entry for the page at / must never open the API's paths.
func TestConsoleOpensOnlyItsFiles(t *testing.T) {
	for _, tc := range []struct {
		path string
		open bool
	}{
		{"/console/", true},
		{"/console/app.js", true},
		{"/listStreams", false},
		{"/v1/query", false},
		{"/v1/overview", false},
		{"/v1/live", false},
		{"/v1/preview", false},
		{"/consolex", false},
	} {
		if got := selfAuthenticated(tc.path); got != tc.open {
			t.Errorf("selfAuthenticated(%q) = %v, want %v", tc.path, got, tc.open)
		}
	}
}
