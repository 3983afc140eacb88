// Package ingest is the write path between producers and the store: it owns the
// bus layout in JetStream (the fragment stream and the store's durable consumer),
// validates every fragment that arrives on the bus, hands valid ones to the store
// with their bus-derived fragment number and server timestamp, and answers each
// with an acknowledgement event (PERSISTED after the store's fsync, or ERROR with
// the seed service's code).
//
// It does not own the files (package store does) or the read path (package query).
package ingest
