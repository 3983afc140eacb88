// Package httpwire is the contract of Sensorium's HTTP API, shared by the
// server (internal/service/api) and the SDK's client: the request and response
// bodies of the control-plane, media and archived-media operations with the
// seed service's JSON field names, the Timestamp they carry, and the API
// error with its names, statuses and body.
//
// It is the one place these shapes are spelled, so that the server and the
// SDK cannot drift apart. It owns shapes only: no handlers, no client, and
// nothing of the store or the query service (the server names their errors).
// Arrow queries (POST /v1/query) take the query JSON that package query
// parses, which Arrow Flight shares; their shape lives there.
package httpwire
