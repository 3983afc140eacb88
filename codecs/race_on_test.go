//go:build race

package codecs

// raceEnabled: the race detector makes the codecs' inner loops some 20×
// slower; the heaviest tests take smaller inputs under it. `make test` also
// runs this package without it, in full.
const raceEnabled = true
