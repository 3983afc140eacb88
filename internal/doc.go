// Package internal holds what the sensorium binary is wired from and what no
// user imports: the server (server), its HTTP API (api), the embedded NATS
// server (natsembed), the bus contract shared by server and SDK (wire), the
// Arrow Flight service (flightsrv), the store's file-system seam (vfs), a
// fault-injecting TCP proxy for tests (faultproxy) and the codec benchmark
// (codecbench). Each is its own package below this folder; this one holds
// nothing but this comment.
package internal
