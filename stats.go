package chute

import "time"

// QueueStats is a snapshot of a queue.
type QueueStats struct {
	Name string
	// Config is the effective configuration: every default filled in and
	// every "none" written as None (see QueueConfig).
	Config QueueConfig
	Topic  string            // the topic, when the queue is a subscription
	Filter map[string]string // the subscription's filter

	// Ready messages can be delivered now (including those waiting for
	// their ordering key); Delayed wait for a delay or a retry back-off;
	// InFlight are leased to consumers. The Bytes fields count bodies,
	// headers, IDs and keys.
	Ready, ReadyBytes       int64
	Delayed, DelayedBytes   int64
	InFlight, InFlightBytes int64
	// DeadLetters is the dead letters held, when this is a dead-letter
	// queue (they are also counted in Ready, Delayed or InFlight).
	DeadLetters int64
	// OrderingKeys is the ordering keys that have messages in the queue.
	OrderingKeys int64
	// DedupIDs is the message IDs remembered for de-duplication (producer
	// sessions, which cost a fixed amount each, are not counted here).
	DedupIDs int64
	// Sessions is the producer sessions remembered (about 350 bytes each,
	// however many messages they published).
	Sessions int64
	// DedupBytes estimates the memory the de-duplication state holds:
	// message IDs and sessions.
	DedupBytes int64
	// OldestAge is how long the longest-waiting ready message has waited
	// since it was published; 0 when nothing is ready.
	OldestAge time.Duration
	Totals    QueueTotals
	// Latency summarises the queue's latencies since the broker started
	// (statistics kept in memory: a restart begins them again).
	Latency QueueLatency
	// Consumers and Producers are the queue's active consumers and
	// producers, filled by the server, which sees every connection (see
	// server.QueueClients); always 0 from the embedded broker, which sees
	// none.
	Consumers, Producers int64
	// Publish outcomes counted since the broker started (not durable,
	// unlike Totals): messages answered as duplicates (by message ID or
	// producer session), and messages refused because the queue was full
	// or the message was invalid (bad fields, too large).
	Deduplicated, RejectedFull, RejectedInvalid int64
	// Paused is set while the queue is paused by hand (PauseQueue): no
	// deliveries until ResumeQueue.
	Paused bool
	// Breaker is the state of the queue's circuit breaker
	// (QueueConfig.Breaker); always BreakerClosed when it has none. An
	// open breaker withholds deliveries; a half-open one lets only its
	// probes through.
	Breaker BreakerState
}

// QueueLatency is a queue's latencies. A message's due time is when it
// was published, or its deliver-at time if it was delayed.
type QueueLatency struct {
	// Wait is from the due time to the first delivery.
	Wait LatencySummary
	// Processing is from a delivery to its ack (nacked and expired
	// deliveries are not counted).
	Processing LatencySummary
	// Completion is from the due time to the ack, over every delivery.
	Completion LatencySummary
}

// LatencySummary summarises a latency histogram. The quantiles are
// estimated from buckets that double in width (100 µs, 200 µs, …), so
// they are within a factor of two, interpolated inside their bucket.
type LatencySummary struct {
	Count    uint64        // observations
	Avg      time.Duration // mean; 0 when Count is 0
	P50, P99 time.Duration // estimated quantiles; 0 when Count is 0
}

// Depth is every message in the queue: ready, delayed and in flight.
func (s QueueStats) Depth() int64 { return s.Ready + s.Delayed + s.InFlight }

// Bytes is the size of every message in the queue.
func (s QueueStats) Bytes() int64 { return s.ReadyBytes + s.DelayedBytes + s.InFlightBytes }

// QueueTotals are a queue's cumulative counters since it was created. They
// survive restarts (they are part of the journal's state).
type QueueTotals struct {
	// Enqueued counts messages stored: published, routed from a topic,
	// dead-lettered into this queue or redriven back to it.
	Enqueued int64
	// Delivered counts deliveries (a message delivered three times counts
	// three).
	Delivered int64
	// Redelivered counts the deliveries of messages delivered before (the
	// second and later of each message: Delivered minus first deliveries).
	Redelivered int64
	// Acked and Nacked count settlements by consumers.
	Acked, Nacked int64
	// LeaseExpired counts leases that ended without an ack or nack: they
	// expired, or the broker restarted after a crash while they were held.
	LeaseExpired int64
	// Returned counts leases handed back without counting towards
	// MaxDeliveries: returned unstarted by a consumer (Nack.Unstarted), or
	// by a graceful shutdown of the broker.
	Returned int64
	// Expired counts messages whose TTL passed.
	Expired int64
	// DeadLettered and DeadLetteredBytes count messages moved to the
	// dead-letter queue, for any reason.
	DeadLettered, DeadLetteredBytes int64
	// DeadByReason splits DeadLettered by reason.
	DeadByReason DeadReasons
	// Discarded counts messages that should have been dead-lettered but
	// were dropped because the queue has NoDeadLetter.
	Discarded int64
	// Dropped counts the oldest messages pushed out by OverflowDropOldest.
	Dropped int64
	// Redriven counts dead letters moved back to this queue by Redrive.
	Redriven int64
	// DedupForgotten counts de-duplication entries forgotten before their
	// window ended: message IDs beyond QueueConfig.MaxDedupIDs, and
	// producer sessions beyond MaxSessions. A retry of a message whose
	// entry was forgotten is stored again.
	DedupForgotten int64
	// Cancelled counts ready and delayed messages removed by
	// CancelMessages (not counted as acked, nor as dead letters).
	Cancelled int64
}

// DeadReasons counts dead letters by reason (DeadLetterInfo.Reason).
type DeadReasons struct {
	// MaxDeliveries: the message used its deliveries ("max-deliveries").
	MaxDeliveries int64
	// Expired: its TTL passed and the queue has DeadLetterExpired.
	Expired int64
	// Overflow: pushed out by OverflowDropOldest.
	Overflow int64
	// Damaged: its stored body was found damaged (chute serve --salvage).
	Damaged int64
}

// TopicStats is a snapshot of a topic.
type TopicStats struct {
	Name string
	// Config is the effective configuration, defaults filled in.
	Config TopicConfig
	// Subscriptions are the subscription queues' names, in fan-out order.
	Subscriptions []string
	// DedupIDs is the message IDs remembered for de-duplication.
	DedupIDs int64
	// Sessions and DedupBytes: as in QueueStats.
	Sessions, DedupBytes int64
	// DedupForgotten counts de-dup entries forgotten early (message IDs
	// beyond MaxDedupIDs, sessions beyond MaxSessions).
	DedupForgotten int64
	// Published counts messages accepted (duplicates excluded).
	Published int64
	// Unrouted counts accepted messages that matched no subscription.
	Unrouted int64
	// Deduplicated, RejectedFull, RejectedInvalid: as in QueueStats, for
	// publishes to the topic.
	Deduplicated, RejectedFull, RejectedInvalid int64
}
