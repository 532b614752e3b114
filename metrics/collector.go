package metrics

import (
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/hist"
	"github.com/chutemq/chute/server"
)

// Options configure a Collector. The zero value works.
type Options struct {
	// QueueDetail lists the queues whose detailed series are exported:
	// bytes by state, de-duplicated and rejected counts, dead letters by
	// reason, and the latency histograms (26 series per histogram, three
	// histograms); "all" exports every queue's. A queue also opts in with
	// the attribute DetailAttribute=true. Default none: the all-queue
	// histograms only.
	QueueDetail []string
	// Sync is the journal's sync latency histogram, fed by
	// broker.Options.OnSync; nil: chute_journal_sync_seconds is absent.
	Sync *SyncHistogram
	// Server, if set, gives the server's counters (Handler sets it).
	Server func() server.Stats
}

// Collector is a prometheus.Collector that reads a broker's Stats on each
// scrape.
type Collector struct {
	b    *broker.Broker
	opts Options
	all  bool
	some map[string]bool
}

// DetailAttribute is the queue attribute that, set to "true", opts a
// queue into its detailed series (Options.QueueDetail).
const DetailAttribute = "metrics.detail"

// NewCollector returns a collector for b.
func NewCollector(b *broker.Broker, opts Options) *Collector {
	c := &Collector{b: b, opts: opts, all: slices.Contains(opts.QueueDetail, "all"), some: map[string]bool{}}
	for _, q := range opts.QueueDetail {
		c.some[q] = true
	}
	return c
}

// NewRegistry returns a registry with a Collector for b, and Go runtime
// and process collectors.
func NewRegistry(b *broker.Broker, opts Options) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(b, opts), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler is for server.Options.Metrics: given the server, it serves the
// broker's, the server's, and the Go runtime's and process's metrics.
func Handler(b *broker.Broker, opts Options) func(*server.Server) http.Handler {
	return func(s *server.Server) http.Handler {
		if opts.Server == nil {
			opts.Server = s.Stats
		}
		return promhttp.HandlerFor(NewRegistry(b, opts), promhttp.HandlerOpts{})
	}
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	qMessages     = desc("chute_queue_messages", "Messages in the queue, by state: ready (deliverable now), delayed (waiting for a delay or retry back-off), inflight (leased).", "queue", "state")
	qBytes        = desc("chute_queue_bytes", "Bytes of the messages in the queue (bodies, headers, IDs, keys), by state.", "queue", "state")
	qDeadLetters  = desc("chute_queue_dead_letters", "Dead letters held, when the queue is a dead-letter queue.", "queue")
	qOldest       = desc("chute_queue_oldest_ready_age_seconds", "How long the longest-waiting ready message has waited since it was published; 0 when none is ready.", "queue")
	qIsDead       = desc("chute_queue_is_dead_letter", "1 when another queue names this queue as its dead-letter queue, else 0.", "queue")
	qPublished    = desc("chute_queue_published_total", "Messages stored in the queue: published, routed from a topic, dead-lettered into it or redriven to it.", "queue")
	qDelivered    = desc("chute_queue_delivered_total", "Deliveries (a message delivered three times counts three).", "queue")
	qAcked        = desc("chute_queue_acked_total", "Deliveries acked by consumers.", "queue")
	qNacked       = desc("chute_queue_nacked_total", "Deliveries nacked by consumers.", "queue")
	qLeaseExpired = desc("chute_queue_lease_expired_total", "Leases that ended without an ack or nack (expired, or held across a crash).", "queue")
	qExpired      = desc("chute_queue_expired_total", "Messages whose TTL passed.", "queue")
	qDeadLettered = desc("chute_queue_dead_lettered_total", "Messages moved from the queue to its dead-letter queue, for any reason.", "queue")
	qRedelivered  = desc("chute_queue_redelivered_total", "Deliveries of messages delivered before (the second and later delivery of each).", "queue")
	qDeadReason   = desc("chute_queue_dead_lettered_by_reason_total", "Messages moved to the dead-letter queue, by reason: max_deliveries, expired, overflow, damaged (detail).", "queue", "reason")
	qCancelled    = desc("chute_queue_cancelled_total", "Ready or delayed messages cancelled (chute msg rm, CancelMessages) (detail).", "queue")
	qDedup        = desc("chute_queue_deduplicated_total", "Published messages answered as duplicates (by message ID or producer session) since the broker started (detail).", "queue")
	qRejected     = desc("chute_queue_rejected_total", "Published messages refused since the broker started, by reason: full (depth limit), invalid (bad fields, too large) (detail).", "queue", "reason")
	qWait         = desc("chute_queue_wait_seconds", "Time from a message's due time (publish, or deliver-at if delayed) to its first delivery.", "queue")
	qProcessing   = desc("chute_queue_processing_seconds", "Time from a delivery to its ack.", "queue")
	qCompletion   = desc("chute_queue_completion_seconds", "Time from a message's due time to its ack.", "queue")

	tPublished = desc("chute_topic_published_total", "Messages accepted by the topic (duplicates excluded).", "topic")
	tUnrouted  = desc("chute_topic_unrouted_total", "Accepted messages that matched no subscription.", "topic")
	tDedup     = desc("chute_topic_deduplicated_total", "Messages published to the topic answered as duplicates since the broker started.", "topic")
	tRejected  = desc("chute_topic_rejected_total", "Messages published to the topic refused since the broker started, by reason: full, invalid.", "topic", "reason")
	jDisk      = desc("chute_journal_disk_bytes", "Bytes the journal's segment files take on disk (segments × segment size: they are preallocated).")
	jReclaimed = desc("chute_journal_segments_reclaimed_total", "Journal segment files deleted since the broker opened (nothing live left in them).")

	confirm    = desc("chute_confirm_seconds", "Producer confirm latency: from a publish reaching the broker to its being durable per the sync policy.")
	wait       = desc("chute_wait_seconds", "Time from a message's due time to its first delivery, all queues.")
	processing = desc("chute_processing_seconds", "Time from a delivery to its ack, all queues.")
	completion = desc("chute_completion_seconds", "Time from a message's due time to its ack, all queues.")
	healthy    = desc("chute_healthy", "1 while the broker takes calls; 0 once closed or after a journal write error.")

	jRecords  = desc("chute_journal_records_total", "Records appended to the journal.")
	jBytes    = desc("chute_journal_bytes_total", "Bytes appended to the journal.")
	jWrites   = desc("chute_journal_writes_total", "Write calls to the journal (group commit: many records each).")
	jSyncs    = desc("chute_journal_syncs_total", "Journal syncs (fdatasync).")
	jDelays   = desc("chute_journal_sync_delays_total", "Times the journal's writer waited out --sync-delay before a sync, so that appends coming meanwhile shared it (a commit delay).")
	jZeros    = desc("chute_journal_zeros_ahead_bytes_total", "Bytes of zeros written and synced ahead of the journal's last record, so that an append's sync writes data only.")
	jSyncTime = desc("chute_journal_sync_time_seconds_total", "Time spent syncing the journal.")
	jSync     = desc("chute_journal_sync_seconds", "Journal sync (fdatasync) latency.")
	jSegments = desc("chute_journal_segments", "Journal segment files in use.")
	jSegSize  = desc("chute_journal_segment_size_bytes", "The size of one journal segment file.")
	jReads    = desc("chute_journal_body_reads_total", "Message bodies read, by source: cache (memory) or file (read back from a segment).", "source")

	ckCount    = desc("chute_checkpoints_total", "Checkpoints written since the broker opened.")
	ckBytes    = desc("chute_checkpoint_last_bytes", "Size of the last checkpoint.")
	ckDuration = desc("chute_checkpoint_last_duration_seconds", "How long the last checkpoint took.")
	rDuration  = desc("chute_recovery_duration_seconds", "Time the last Open spent recovering.")
	rRecords   = desc("chute_recovery_records", "Records replayed by the last Open after its checkpoint.")
	rBytes     = desc("chute_recovery_bytes", "Bytes of records replayed by the last Open after its checkpoint.")

	memBudget     = desc("chute_memory_budget_bytes", "The memory budget for message bodies (Options.MemoryBudget).")
	memCacheLimit = desc("chute_memory_cache_limit_bytes", "The part of the memory budget the body cache may use now.")
	memCache      = desc("chute_memory_cache_bytes", "Message bodies held in memory by the cache.")
	diskFree      = desc("chute_disk_free_bytes", "Free bytes on the data directory's volume at the last sample.")
	diskFull      = desc("chute_disk_full", "1 while a journal write found no space and none has come back, else 0.")
	diskRefused   = desc("chute_disk_refused_total", "Publishes and receives refused because the disk is full.")

	sConns        = desc("chute_server_connections", "Connections open now.")
	sConnsTotal   = desc("chute_server_connections_total", "Connections accepted.")
	sRequests     = desc("chute_server_requests_total", "Calls that reached a handler, by method and code.", "method", "code")
	sAuthFailures = desc("chute_server_auth_failures_total", "Calls refused for a missing or unknown token.")
	sRefused      = desc("chute_server_refused_total", "Calls refused before reaching the broker, by reason.", "reason")
	sInflight     = desc("chute_server_inflight_bytes", "Request bytes held in memory now.")
	sConsumers    = desc("chute_queue_consumers", "Active consumers of the queue: clients with a Consume stream open on it, or a unary receive or settlement in the last 60 s.", "queue")
	sProducers    = desc("chute_queue_producers", "Active producers of the queue: clients with a PublishStream open that published to it, or a unary publish to it in the last 60 s.", "queue")
	alertFiring   = desc("chute_alert_firing", "1 for every alert the server's evaluator has firing (chute serve --alerts).", "alertname", "queue", "severity")
	sInflightMax  = desc("chute_server_inflight_limit_bytes", "The request bytes the server may hold at once.")
)

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	describeBreakers(ch)  // breaker.go
	describeSchedules(ch) // schedule.go
	for _, d := range []*prometheus.Desc{qMessages, qBytes, qDeadLetters, qOldest, qIsDead, qPublished, qDelivered,
		qAcked, qNacked, qLeaseExpired, qExpired, qDeadLettered, qRedelivered, qDeadReason, qCancelled, qDedup, qRejected, qWait,
		qProcessing, qCompletion, tPublished, tUnrouted, tDedup, tRejected, jReclaimed, jDisk,
		confirm, wait, processing, completion, healthy, jRecords, jBytes, jWrites, jSyncs, jDelays, jZeros, jSyncTime, jSync, jSegments,
		jSegSize, jReads, ckCount, ckBytes, ckDuration, rDuration, rRecords, rBytes, memBudget, memCacheLimit, memCache,
		diskFree, diskFull, diskRefused, sConns, sConnsTotal, sRequests, sAuthFailures, sRefused, sInflight, sInflightMax,
		sConsumers, sProducers, alertFiring} {
		ch <- d
	}
}

// Collect reads one snapshot of the broker (and the server) and sends it.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Stats()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	count := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	histogram := func(d *prometheus.Desc, h hist.Snapshot, l ...string) {
		ch <- histogramMetric(d, h, l...)
	}
	for i := range s.Queues {
		q := &s.Queues[i]
		n := q.Name
		gauge(qMessages, float64(q.Ready), n, "ready")
		gauge(qMessages, float64(q.Delayed), n, "delayed")
		gauge(qMessages, float64(q.InFlight), n, "inflight")
		if q.DeadLetterQueue {
			gauge(qDeadLetters, float64(q.DeadLetters), n)
		}
		gauge(qOldest, q.OldestAge.Seconds(), n)
		gauge(qIsDead, bool01(q.DeadLetterQueue), n)
		t := &q.Totals
		count(qPublished, float64(t.Enqueued), n)
		count(qDelivered, float64(t.Delivered), n)
		count(qRedelivered, float64(t.Redelivered), n)
		count(qAcked, float64(t.Acked), n)
		count(qNacked, float64(t.Nacked), n)
		count(qLeaseExpired, float64(t.LeaseExpired), n)
		count(qExpired, float64(t.Expired), n)
		count(qDeadLettered, float64(t.DeadLettered), n)
		if c.all || c.some[n] || q.Config.Attributes[DetailAttribute] == "true" {
			gauge(qBytes, float64(q.ReadyBytes), n, "ready")
			gauge(qBytes, float64(q.DelayedBytes), n, "delayed")
			gauge(qBytes, float64(q.InFlightBytes), n, "inflight")
			r := &t.DeadByReason
			count(qDeadReason, float64(r.MaxDeliveries), n, "max_deliveries")
			count(qDeadReason, float64(r.Expired), n, "expired")
			count(qDeadReason, float64(r.Overflow), n, "overflow")
			count(qDeadReason, float64(r.Damaged), n, "damaged")
			count(qCancelled, float64(t.Cancelled), n)
			count(qDedup, float64(q.Deduplicated), n)
			count(qRejected, float64(q.RejectedFull), n, "full")
			count(qRejected, float64(q.RejectedInvalid), n, "invalid")
			histogram(qWait, q.Histograms.Wait, n)
			histogram(qProcessing, q.Histograms.Processing, n)
			histogram(qCompletion, q.Histograms.Completion, n)
		}
	}
	for _, t := range s.Topics {
		count(tPublished, float64(t.Published), t.Name)
		count(tUnrouted, float64(t.Unrouted), t.Name)
		count(tDedup, float64(t.Deduplicated), t.Name)
		count(tRejected, float64(t.RejectedFull), t.Name, "full")
		count(tRejected, float64(t.RejectedInvalid), t.Name, "invalid")
	}
	histogram(confirm, s.Confirm)
	histogram(wait, s.Latency.Wait)
	histogram(processing, s.Latency.Processing)
	histogram(completion, s.Latency.Completion)
	gauge(healthy, bool01(s.Healthy == nil))
	collectBreakers(&s, gauge, count)             // breaker.go
	collectSchedules(&s, gauge, count, histogram) // schedule.go

	j := &s.Journal
	count(jRecords, float64(j.Records))
	count(jBytes, float64(j.Bytes))
	count(jWrites, float64(j.Writes))
	count(jSyncs, float64(j.Syncs))
	count(jDelays, float64(j.SyncDelays))
	count(jZeros, float64(j.ZerosAhead))
	count(jSyncTime, j.SyncTime.Seconds())
	if c.opts.Sync != nil {
		histogram(jSync, c.opts.Sync.Snapshot())
	}
	gauge(jSegments, float64(j.Segments))
	count(jReclaimed, float64(j.Reclaimed))
	gauge(jDisk, float64(int64(j.Segments)*j.SegmentSize))
	gauge(jSegSize, float64(j.SegmentSize))
	count(jReads, float64(j.CacheHits), "cache")
	count(jReads, float64(j.FileReads), "file")

	count(ckCount, float64(s.Checkpoint.Count))
	gauge(ckBytes, float64(s.Checkpoint.Bytes))
	gauge(ckDuration, s.Checkpoint.Duration.Seconds())
	gauge(rDuration, s.Recovery.Duration.Seconds())
	gauge(rRecords, float64(s.Recovery.Records))
	gauge(rBytes, float64(s.Recovery.Bytes))
	gauge(memBudget, float64(s.Memory.Budget))
	gauge(memCacheLimit, float64(s.Memory.CacheLimit))
	gauge(memCache, float64(s.Memory.CacheBytes))
	if s.Disk.Measuring {
		gauge(diskFree, float64(s.Disk.Free))
	}
	gauge(diskFull, bool01(s.Disk.Full))
	count(diskRefused, float64(s.Disk.Refused))

	if c.opts.Server != nil {
		ss := c.opts.Server()
		collectServer(ss, gauge, count)
		c.collectClients(s, ss, gauge)
	}
}

func collectServer(s server.Stats, gauge, count func(*prometheus.Desc, float64, ...string)) {
	gauge(sConns, float64(s.Connections))
	count(sConnsTotal, float64(s.ConnectionsAccepted))
	// Methods are unique across chute's services; a procedure of two
	// services with one name would add up (the registry refuses duplicates).
	byMethod := map[[2]string]uint64{}
	for _, r := range s.Requests {
		byMethod[[2]string{r.Method, r.Code}] += r.Count
	}
	for k, v := range byMethod {
		count(sRequests, float64(v), k[0], k[1])
	}
	count(sAuthFailures, float64(s.AuthFailures))
	count(sRefused, float64(s.PermissionDenied), "permission_denied")
	count(sRefused, float64(s.QuotaRefusals), "quota")
	count(sRefused, float64(s.InflightRefusals), "inflight")
	count(sRefused, float64(s.TooLarge), "too_large")
	count(sRefused, float64(s.UnauthenticatedCloses), "auth_timeout")
	gauge(sInflight, float64(s.InflightBytes))
	gauge(sInflightMax, float64(s.InflightBytesLimit))
}

// collectClients exports the consumers and producers of every queue (0
// for a queue without any: the queue_no_consumers alert needs the zero),
// and the firing alerts.
func (c *Collector) collectClients(bs broker.Stats, ss server.Stats, gauge func(*prometheus.Desc, float64, ...string)) {
	active := make(map[string]server.QueueClients, len(ss.Queues))
	for _, q := range ss.Queues {
		active[q.Queue] = q
	}
	for _, q := range bs.Queues {
		a := active[q.Name]
		gauge(sConsumers, float64(a.Consumers), q.Name)
		gauge(sProducers, float64(a.Producers), q.Name)
	}
	for _, a := range ss.Alerts {
		gauge(alertFiring, 1, a.Rule, a.Queue, string(a.Severity))
	}
}

// bucketBounds are hist.Bounds in seconds, the histograms' le labels.
var bucketBounds = func() []float64 {
	out := make([]float64, len(hist.Bounds))
	for i, b := range hist.Bounds {
		out[i] = b.Seconds()
	}
	return out
}()

// histogramMetric is h as a Prometheus histogram.
func histogramMetric(d *prometheus.Desc, h hist.Snapshot, l ...string) prometheus.Metric {
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets(h), l...)
}

func buckets(h hist.Snapshot) map[float64]uint64 {
	cum := h.Cumulative()
	m := make(map[float64]uint64, len(cum))
	for i, n := range cum {
		m[bucketBounds[i]] = n
	}
	return m
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
