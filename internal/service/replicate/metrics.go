package replicate

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics: the replicator's figures for Prometheus, read from Status at
// each scrape, so that /metrics and `sensorium replicate status` can never
// disagree.

var (
	descLag = prometheus.NewDesc("sensorium_replicate_lag_seconds",
		"Age, by the edge's server time, of the oldest edge fragment the centre has not confirmed; 0 when caught up.", []string{"stream"}, nil)
	descBacklogFrags = prometheus.NewDesc("sensorium_replicate_backlog_fragments",
		"Edge fragments the centre has not confirmed.", []string{"stream"}, nil)
	descBacklogBytes = prometheus.NewDesc("sensorium_replicate_backlog_bytes",
		"Bytes of the edge fragments the centre has not confirmed.", []string{"stream"}, nil)
	descSentFrags = prometheus.NewDesc("sensorium_replicate_sent_fragments_total",
		"Fragments sent to the centre by this process, re-sends included.", []string{"stream"}, nil)
	descSentBytes = prometheus.NewDesc("sensorium_replicate_sent_bytes_total",
		"Bytes sent to the centre by this process, re-sends included.", []string{"stream"}, nil)
	descResent = prometheus.NewDesc("sensorium_replicate_resent_fragments_total",
		"Fragments sent again (a lost acknowledgement, a cut link, a restart); the centre stores each once.", []string{"stream"}, nil)
	descExpired = prometheus.NewDesc("sensorium_replicate_expired_fragments_total",
		"Fragments the edge deleted (retention) before they could be sent.", []string{"stream"}, nil)
	descErrors = prometheus.NewDesc("sensorium_replicate_errors_total",
		"Failures that made the stream's copy start over (the edge, the centre or the link).", []string{"stream"}, nil)
	descRefused = prometheus.NewDesc("sensorium_replicate_refused_fragments_total",
		"Edge fragments the centre refused (ERROR), each counted once; the stream's copy stops at such a fragment (state refused).", []string{"stream"}, nil)
	descStoredPast = prometheus.NewDesc("sensorium_replicate_stored_past_refusal_fragments",
		"While the copy is stopped at a fragment the centre refused: how many fragments after it the centre stored anyway (more than 0: its copy has a hole at the refused one); 0 otherwise.", []string{"stream"}, nil)
	descSkipped = prometheus.NewDesc("sensorium_replicate_skipped_fragments",
		"Refused fragments an operator let go (sensorium replicate skip) since the stream's journal began: the centre's copy lacks each.", []string{"stream"}, nil)
	descUp = prometheus.NewDesc("sensorium_replicate_stream_up",
		"1 while the stream is copied (live or catching up), 0 while it waits (schedule, retrying, stopped).", []string{"stream", "state"}, nil)
	descOpen = prometheus.NewDesc("sensorium_replicate_schedule_open",
		"1 inside the schedule's windows, 0 outside.", nil, nil)
	descMaxRate = prometheus.NewDesc("sensorium_replicate_max_rate_bytes",
		"The bandwidth cap in bytes per second; 0: none.", nil, nil)
)

// Collector is the replicator's metrics as a Prometheus collector.
func (r *Replicator) Collector() prometheus.Collector { return collector{r} }

type collector struct{ r *Replicator }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLag, descBacklogFrags, descBacklogBytes, descSentFrags, descSentBytes, descResent, descExpired, descErrors, descRefused, descStoredPast, descSkipped, descUp, descOpen, descMaxRate} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Status()
	open := 0.0
	if st.ScheduleOpen {
		open = 1
	}
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, open)
	ch <- prometheus.MustNewConstMetric(descMaxRate, prometheus.GaugeValue, float64(st.MaxRate))
	for _, s := range st.Streams {
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, s.LagSeconds, s.Edge)
		ch <- prometheus.MustNewConstMetric(descBacklogFrags, prometheus.GaugeValue, float64(s.BacklogFragments), s.Edge)
		ch <- prometheus.MustNewConstMetric(descBacklogBytes, prometheus.GaugeValue, float64(s.BacklogBytes), s.Edge)
		ch <- prometheus.MustNewConstMetric(descSentFrags, prometheus.CounterValue, float64(s.SentFragments), s.Edge)
		ch <- prometheus.MustNewConstMetric(descSentBytes, prometheus.CounterValue, float64(s.SentBytes), s.Edge)
		ch <- prometheus.MustNewConstMetric(descResent, prometheus.CounterValue, float64(s.ResentFragments), s.Edge)
		ch <- prometheus.MustNewConstMetric(descExpired, prometheus.CounterValue, float64(s.ExpiredFragments), s.Edge)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(s.Errors), s.Edge)
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(s.RefusedFragments), s.Edge)
		past := 0
		if s.Refused != nil {
			past = s.Refused.StoredAfter
		}
		ch <- prometheus.MustNewConstMetric(descStoredPast, prometheus.GaugeValue, float64(past), s.Edge)
		ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.GaugeValue, float64(s.SkippedFragments), s.Edge)
		up := 0.0
		if s.State == "live" || s.State == "catching up" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, s.Edge, s.State)
	}
}

// StatusPath is where Handler serves the status as JSON.
const StatusPath = "/status"

// Handler serves /metrics (Prometheus) and /status (Status as JSON, which
// `sensorium replicate status` reads).
func (r *Replicator) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collector())
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc(StatusPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Status())
	})
	return mux
}
