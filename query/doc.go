// Package query is the read path: ListFragments, GetMedia (with live follow),
// GetMediaForFragmentList, and Arrow range queries. It reads fragments from the
// store, rewrites them into chunks with the seed service's MKV tags, and decodes
// frames with package codecs into Arrow record batches.
//
// It never writes to the store.
package query
