package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorium-io/sensorium/internal/service/cluster"
)

// clusterCollector exports a cluster node's view at scrape time.
type clusterCollector struct {
	n *cluster.Node

	nodes, unready, lag, quorumLosses, resyncs, replacements, freed, fillFragments, fillBytes, pendingVerdicts *prometheus.Desc
}

func newClusterCollector(n *cluster.Node) *clusterCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sensorium_cluster_"+name, help, labels, nil)
	}
	return &clusterCollector{
		n:               n,
		nodes:           d("nodes", "Nodes in the registry, by state (alive: heartbeats coming; down: silent).", "state"),
		unready:         d("unready_streams", "Streams placed on this node whose copy here is not live (filling or joining)."),
		lag:             d("replica_lag_messages", "Bus messages of a shard that this node has not yet applied (its consumer's pending count).", "shard"),
		quorumLosses:    d("quorum_losses_total", "Fragments this node stored that no quorum of their replicas confirmed in time (the producer re-sends them)."),
		resyncs:         d("replica_resyncs_total", "Times a live copy here missed a fragment that a quorum of the other replicas stored, and was topped up from one of them."),
		replacements:    d("replacements_total", "Replicas this node, as coordinator, placed anew: moved off a node gone past --replace-after, or added to a stream with fewer replicas than the cluster keeps."),
		freed:           d("consumers_removed_total", "Bus consumers of gone nodes this node removed, as coordinator."),
		fillFragments:   d("fill_fragments_total", "Fragments this node copied from other replicas (fills and top-ups)."),
		fillBytes:       d("fill_bytes_total", "Bytes of fragments this node copied from other replicas."),
		pendingVerdicts: d("pending_verdicts", "Bus messages whose replicas' verdicts this node is still counting."),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.nodes, c.unready, c.lag, c.quorumLosses, c.resyncs, c.replacements, c.freed, c.fillFragments, c.fillBytes, c.pendingVerdicts} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.n.Metrics()
	ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(m.Alive), "alive")
	ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(m.Down), "down")
	ch <- prometheus.MustNewConstMetric(c.unready, prometheus.GaugeValue, float64(m.Unready))
	for shard, pending := range m.Pending {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(pending), shard)
	}
	ch <- prometheus.MustNewConstMetric(c.quorumLosses, prometheus.CounterValue, float64(m.QuorumLosses))
	ch <- prometheus.MustNewConstMetric(c.resyncs, prometheus.CounterValue, float64(m.Resyncs))
	ch <- prometheus.MustNewConstMetric(c.replacements, prometheus.CounterValue, float64(m.Replacements))
	ch <- prometheus.MustNewConstMetric(c.freed, prometheus.CounterValue, float64(m.ConsumersRemoved))
	ch <- prometheus.MustNewConstMetric(c.fillFragments, prometheus.CounterValue, float64(m.FillFragments))
	ch <- prometheus.MustNewConstMetric(c.fillBytes, prometheus.CounterValue, float64(m.FillBytes))
	ch <- prometheus.MustNewConstMetric(c.pendingVerdicts, prometheus.GaugeValue, float64(m.PendingVerdicts))
}
