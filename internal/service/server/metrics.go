package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorium-io/sensorium/internal/service/throttle"
)

// collector exports the store's and the ingester's counters at scrape time,
// so that the hot paths only bump atomics and never call into Prometheus.
type collector struct {
	s *Server

	fsyncs, fsyncSeconds, expired                         *prometheus.Desc
	openSegments, segmentReopens                          *prometheus.Desc
	persisted, persistedBytes, duplicates, liveOnly       *prometheus.Desc
	storeFailures, refused, persistLatency                *prometheus.Desc
	diskFull, diskFullPauses, chunksAbandoned             *prometheus.Desc
	streamBytes, streamFragments, streamSegments, streams *prometheus.Desc
	rateLimited, rateLimitWait                            *prometheus.Desc
	streamIn, streamFragmentsIn, streamOut                *prometheus.Desc
	summarised, summaryFailures, fromSummaries            *prometheus.Desc
}

func newCollector(s *Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sensorium_"+name, help, labels, nil)
	}
	return &collector{
		s:                 s,
		fsyncs:            d("store_fsyncs_total", "Segment fsyncs (one per stream per ingest batch), or flushes of the whole file system (one per batch of many streams)."),
		fsyncSeconds:      d("store_fsync_seconds", "Segment fsync latency."),
		expired:           d("store_segments_expired_total", "Segments deleted by retention."),
		openSegments:      d("store_open_segment_files", "Active segment files open now (bounded by the open-segments cap)."),
		segmentReopens:    d("store_segment_reopens_total", "Active segment files reopened after being closed to stay under the open-segments cap."),
		persisted:         d("ingest_fragments_persisted_total", "Fragments stored and acknowledged PERSISTED."),
		persistedBytes:    d("ingest_bytes_persisted_total", "Bytes of fragments acknowledged PERSISTED."),
		duplicates:        d("ingest_duplicates_total", "Re-sent fragments recognised by the store's dedupe key."),
		liveOnly:          d("ingest_live_only_total", "Fragments of retention-0 streams passed to live readers only."),
		storeFailures:     d("ingest_store_failures_total", "Times the store failed a batch (full disk, failed fsync); the batch was retried."),
		refused:           d("ingest_fragments_refused_total", "Fragments refused, by error code.", "code"),
		persistLatency:    d("ingest_persist_latency_mean_seconds", "Mean time from the bus accepting a fragment to PERSISTED."),
		diskFull:          d("ingest_disk_full", "1 while the store's disk is nearly full and the bus takes no new fragments, else 0."),
		diskFullPauses:    d("ingest_disk_full_pauses_total", "Times the bus was closed to new fragments for a nearly full disk."),
		chunksAbandoned:   d("ingest_chunks_abandoned_total", "Chunks of fragments larger than a bus message dropped because the fragment's last chunk never came."),
		streamBytes:       d("stream_stored_bytes", "Bytes of segments a stream holds on disk.", "stream"),
		streamFragments:   d("stream_stored_fragments", "Fragments a stream holds.", "stream"),
		streamSegments:    d("stream_segments", "Segment files a stream holds.", "stream"),
		streams:           d("streams", "Streams in the catalog."),
		rateLimited:       d("rate_limited_total", "API calls refused with ClientLimitExceededException (connections, control plane), or reads and writes slowed (bytes), by rate limit.", "limit"),
		rateLimitWait:     d("rate_limited_wait_seconds_total", "Time PutMedia bodies and GetMedia responses waited for their byte rate limits.", "limit"),
		streamIn:          d("stream_ingest_bytes_total", "Bytes of a stream's fragments stored since the server started (GET /v1/usage keeps them across restarts).", "stream"),
		streamFragmentsIn: d("stream_ingest_fragments_total", "A stream's fragments stored since the server started.", "stream"),
		streamOut:         d("stream_read_bytes_total", "Bytes of a stream's data sent since the server started, by API (GET_MEDIA, QUERY, FLIGHT …).", "stream", "api"),
		summarised:        d("query_fragments_summarised_total", "Fragments whose per-second summaries the summariser wrote since the server started (query/SUMMARIES.md)."),
		summaryFailures:   d("query_summary_failures_total", "Fragments the summariser could not summarise (aggregate queries decode them)."),
		fromSummaries:     d("query_fragments_from_summaries_total", "Fragments aggregate queries read from summaries instead of decoding their samples."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.fsyncs, c.fsyncSeconds, c.expired, c.openSegments, c.segmentReopens, c.persisted, c.persistedBytes, c.duplicates,
		c.liveOnly, c.storeFailures, c.refused, c.persistLatency, c.diskFull, c.diskFullPauses, c.chunksAbandoned, c.streamBytes, c.streamFragments, c.streamSegments, c.streams,
		c.rateLimited, c.rateLimitWait, c.streamIn, c.streamFragmentsIn, c.streamOut, c.summarised, c.summaryFailures, c.fromSummaries} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.st.Stats()
	ch <- prometheus.MustNewConstMetric(c.fsyncs, prometheus.CounterValue, float64(st.Fsyncs))
	ch <- prometheus.MustNewConstMetric(c.expired, prometheus.CounterValue, float64(st.SegmentsExpired))
	ch <- prometheus.MustNewConstMetric(c.openSegments, prometheus.GaugeValue, float64(st.OpenSegmentFiles))
	ch <- prometheus.MustNewConstMetric(c.segmentReopens, prometheus.CounterValue, float64(st.SegmentReopens))
	buckets := map[float64]uint64{}
	var cum uint64
	for i, b := range st.FsyncBounds {
		cum += uint64(st.FsyncBuckets[i])
		buckets[b.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.fsyncSeconds, uint64(st.Fsyncs), st.FsyncTotal.Seconds(), buckets)

	in := c.s.IngestStats()
	ch <- prometheus.MustNewConstMetric(c.persisted, prometheus.CounterValue, float64(in.Persisted))
	ch <- prometheus.MustNewConstMetric(c.persistedBytes, prometheus.CounterValue, float64(in.PersistedBytes))
	ch <- prometheus.MustNewConstMetric(c.duplicates, prometheus.CounterValue, float64(in.Duplicates))
	ch <- prometheus.MustNewConstMetric(c.liveOnly, prometheus.CounterValue, float64(in.LiveOnly))
	ch <- prometheus.MustNewConstMetric(c.storeFailures, prometheus.CounterValue, float64(in.StoreFailures))
	ch <- prometheus.MustNewConstMetric(c.persistLatency, prometheus.GaugeValue, in.MeanPersistLatency.Seconds())
	full := 0.0
	if in.DiskFull {
		full = 1
	}
	ch <- prometheus.MustNewConstMetric(c.diskFull, prometheus.GaugeValue, full)
	ch <- prometheus.MustNewConstMetric(c.diskFullPauses, prometheus.CounterValue, float64(in.DiskFullPauses))
	ch <- prometheus.MustNewConstMetric(c.chunksAbandoned, prometheus.CounterValue, float64(in.ChunksAbandoned))
	for code, n := range in.Errors {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(n), code.String())
	}

	if c.s.limits != nil {
		for _, st := range c.s.limits.Stats() {
			ch <- prometheus.MustNewConstMetric(c.rateLimited, prometheus.CounterValue, float64(st.Hits), st.Limit.String())
			if st.Limit == throttle.PutMediaBytes || st.Limit == throttle.GetMediaBytes {
				ch <- prometheus.MustNewConstMetric(c.rateLimitWait, prometheus.CounterValue, st.Waited.Seconds(), st.Limit.String())
			}
		}
	}

	if z := c.s.sum; z != nil {
		done, failed := z.Summarised()
		ch <- prometheus.MustNewConstMetric(c.summarised, prometheus.CounterValue, float64(done))
		ch <- prometheus.MustNewConstMetric(c.summaryFailures, prometheus.CounterValue, float64(failed))
	}
	ch <- prometheus.MustNewConstMetric(c.fromSummaries, prometheus.CounterValue, float64(c.s.q.SummariesUsed()))

	if m := c.s.meter; m != nil {
		for stream, t := range m.Totals() {
			ch <- prometheus.MustNewConstMetric(c.streamIn, prometheus.CounterValue, float64(t.BytesIn), stream)
			ch <- prometheus.MustNewConstMetric(c.streamFragmentsIn, prometheus.CounterValue, float64(t.FragmentsIn), stream)
			for api, n := range t.BytesOut {
				ch <- prometheus.MustNewConstMetric(c.streamOut, prometheus.CounterValue, float64(n), stream, string(api))
			}
		}
	}

	infos, _, err := c.s.st.ListStreams("", 10000, "")
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.streams, prometheus.GaugeValue, float64(len(infos)))
	for _, i := range infos {
		u, err := c.s.st.Usage(i.Name)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.streamBytes, prometheus.GaugeValue, float64(u.Bytes), i.Name)
		ch <- prometheus.MustNewConstMetric(c.streamFragments, prometheus.GaugeValue, float64(u.Fragments), i.Name)
		ch <- prometheus.MustNewConstMetric(c.streamSegments, prometheus.GaugeValue, float64(u.Segments), i.Name)
	}
}
