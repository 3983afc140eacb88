// Package examples holds runnable programs a user can copy; each lives in its own
// folder and imports only the SDK and the public packages.
package examples
