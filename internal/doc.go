// Package internal holds what the sensorium binary is wired from and what no
// user imports, in three layers, each a folder:
//
//   - platform: contracts and seams at the bottom, which the public packages
//     (store, ingest, query, sdk) may import: the NATS bus contract shared by
//     the server and the SDK (platform/wire), the HTTP API's contract, its
//     request and response shapes and error names (platform/httpwire), the
//     store's file-system seam and its fault-injecting file system
//     (platform/vfs, platform/vfs/faultfs), and SigV4 signing and
//     verification (platform/awsauth).
//   - service: the server's wiring at the top: the process (service/server),
//     its HTTP API (service/api), the Arrow Flight service and its
//     authentication (service/flightsrv, service/flightauth), and the
//     embedded NATS server (service/natsembed).
//   - testkit: tools of tests and benchmarks: a fault-injecting TCP proxy
//     (testkit/faultproxy) and the codec benchmark (testkit/codecbench).
//
// The rule: platform imports nothing of service or testkit; service may import
// everything; no public package (store, ingest, query, sdk, mkv, signals,
// codecs, simulate) imports service. TestLayers checks it. This package holds
// nothing but this comment and that test.
package internal
