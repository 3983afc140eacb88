// Package compat holds Sensorium's compatibility tests: the real AWS SDKs for
// Go (v2 for the control plane, v1 for media and archived media) against a
// real sensorium serve process on loopback, with SigV4 verification on. It
// has no code of its own besides this comment; see README.md.
package compat
