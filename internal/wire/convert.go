package wire

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
)

// DurPB writes an optional duration (0: nil).
func DurPB(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// Dur reads an optional duration (nil: 0).
func Dur(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tm(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// MessagesToPB converts messages for a publish.
func MessagesToPB(msgs []chute.Message) []*chutev1.Message {
	out := make([]*chutev1.Message, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		out[i] = &chutev1.Message{Body: m.Body, Headers: m.Headers, Priority: int32(m.Priority),
			Delay: DurPB(m.Delay), DeliverAt: ts(m.DeliverAt), Ttl: DurPB(m.TTL), Id: m.ID, Key: m.Key}
	}
	return out
}

// MessagesFromPB converts received messages for the broker.
func MessagesFromPB(msgs []*chutev1.Message) []chute.Message {
	out := make([]chute.Message, len(msgs))
	for i, m := range msgs {
		out[i] = chute.Message{Body: m.GetBody(), Headers: m.GetHeaders(), Priority: int(m.GetPriority()),
			Delay: Dur(m.GetDelay()), DeliverAt: tm(m.GetDeliverAt()), TTL: Dur(m.GetTtl()), ID: m.GetId(), Key: m.GetKey()}
	}
	return out
}

// SessionOf reads the producer session of a batch to publish (on the wire
// a request carries it once: the session and its first number): "" and 0
// for none. The messages must name one session (or none) with consecutive
// numbers, as the broker requires.
func SessionOf(msgs []chute.Message) (session string, first uint64, err error) {
	if len(msgs) == 0 {
		return "", 0, nil
	}
	session, first = msgs[0].Session, msgs[0].SessionSeq
	for i := range msgs {
		m := &msgs[i]
		if m.Session != session || (session == "" && m.SessionSeq != 0) || (session != "" && m.SessionSeq != first+uint64(i)) {
			return "", 0, fmt.Errorf("%w: message %d: the messages of a publish name one producer session with consecutive numbers, or none", chute.ErrInvalidMessage, i)
		}
	}
	return session, first, nil
}

// PublishRequest builds the request of a publish: the messages, and their
// producer session once.
func PublishRequest(target string, msgs []chute.Message) (*chutev1.PublishRequest, error) {
	session, first, err := SessionOf(msgs)
	if err != nil {
		return nil, err
	}
	return &chutev1.PublishRequest{Target: target, Messages: MessagesToPB(msgs), Session: session, FirstSeq: first}, nil
}

// PublishStreamRequest builds one request of a PublishStream, as
// PublishRequest.
func PublishStreamRequest(id uint64, target string, msgs []chute.Message) (*chutev1.PublishStreamRequest, error) {
	session, first, err := SessionOf(msgs)
	if err != nil {
		return nil, err
	}
	return &chutev1.PublishStreamRequest{Id: id, Target: target, Messages: MessagesToPB(msgs), Session: session, FirstSeq: first}, nil
}

// WithSession puts a request's producer session on its messages: message
// i gets number first+i.
func WithSession(msgs []chute.Message, session string, first uint64) []chute.Message {
	if session == "" && first == 0 {
		return msgs
	}
	for i := range msgs {
		msgs[i].Session, msgs[i].SessionSeq = session, first+uint64(i)
	}
	return msgs
}

// ResultsToPB converts publish results.
func ResultsToPB(rs []chute.PublishResult) []*chutev1.PublishResult {
	out := make([]*chutev1.PublishResult, len(rs))
	for i, r := range rs {
		out[i] = &chutev1.PublishResult{Seq: r.Seq, Duplicate: r.Duplicate}
	}
	return out
}

// ResultsFromPB converts publish results back.
func ResultsFromPB(rs []*chutev1.PublishResult) []chute.PublishResult {
	out := make([]chute.PublishResult, len(rs))
	for i, r := range rs {
		out[i] = chute.PublishResult{Seq: r.GetSeq(), Duplicate: r.GetDuplicate()}
	}
	return out
}

// DeliveriesToPB converts deliveries.
func DeliveriesToPB(ds []chute.Delivery) []*chutev1.Delivery {
	out := make([]*chutev1.Delivery, len(ds))
	for i := range ds {
		d := &ds[i]
		pd := &chutev1.Delivery{Queue: d.Queue, Seq: d.Seq, Receipt: d.Receipt, Body: d.Body, Headers: d.Headers,
			Priority: int32(d.Priority), Id: d.ID, Key: d.Key, Published: ts(d.Published),
			Deliveries: int32(d.Deliveries), LeaseDeadline: ts(d.LeaseDeadline), LastError: d.LastError}
		if dl := d.DeadLetter; dl != nil {
			pd.DeadLetter = &chutev1.DeadLetter{Source: dl.Source, Reason: dl.Reason, Deliveries: int32(dl.Deliveries),
				LastError: dl.LastError, Died: ts(dl.Died), SourceSeq: dl.SourceSeq}
		}
		out[i] = pd
	}
	return out
}

// DeliveriesFromPB converts deliveries back.
func DeliveriesFromPB(ds []*chutev1.Delivery) []chute.Delivery {
	out := make([]chute.Delivery, len(ds))
	for i, d := range ds {
		out[i] = chute.Delivery{Queue: d.GetQueue(), Seq: d.GetSeq(), Receipt: d.GetReceipt(), Body: d.GetBody(),
			Headers: d.GetHeaders(), Priority: int(d.GetPriority()), ID: d.GetId(), Key: d.GetKey(),
			Published: tm(d.GetPublished()), Deliveries: int(d.GetDeliveries()),
			LeaseDeadline: tm(d.GetLeaseDeadline()), LastError: d.GetLastError()}
		if dl := d.GetDeadLetter(); dl != nil {
			out[i].DeadLetter = &chute.DeadLetterInfo{Source: dl.GetSource(), Reason: dl.GetReason(),
				Deliveries: int(dl.GetDeliveries()), LastError: dl.GetLastError(), Died: tm(dl.GetDied()), SourceSeq: dl.GetSourceSeq()}
		}
	}
	return out
}

// NacksToPB converts nacks.
func NacksToPB(ns []chute.Nack) []*chutev1.NackItem {
	out := make([]*chutev1.NackItem, len(ns))
	for i, n := range ns {
		out[i] = &chutev1.NackItem{Receipt: n.Receipt, Delay: DurPB(n.Delay), Error: n.Error, Unstarted: n.Unstarted}
	}
	return out
}

// NacksFromPB converts nacks back.
func NacksFromPB(ns []*chutev1.NackItem) []chute.Nack {
	out := make([]chute.Nack, len(ns))
	for i, n := range ns {
		out[i] = chute.Nack{Receipt: n.GetReceipt(), Delay: Dur(n.GetDelay()), Error: n.GetError(), Unstarted: n.GetUnstarted()}
	}
	return out
}

// QueueConfigToPB converts a queue config.
func QueueConfigToPB(c chute.QueueConfig) *chutev1.QueueConfig {
	return &chutev1.QueueConfig{
		VisibilityTimeout: DurPB(c.VisibilityTimeout), MaxDeliveries: int32(c.MaxDeliveries),
		Backoff: &chutev1.Backoff{Kind: chutev1.BackoffKind(c.Backoff.Kind + 1), Delay: DurPB(c.Backoff.Delay),
			Max: DurPB(c.Backoff.Max), Jitter: c.Backoff.Jitter},
		DeadLetterQueue: c.DeadLetterQueue, NoDeadLetter: c.NoDeadLetter,
		MaxMessages: c.MaxMessages, MaxBytes: c.MaxBytes, Overflow: chutev1.Overflow(c.Overflow + 1),
		MessageTtl: DurPB(c.MessageTTL), DeadLetterExpired: c.DeadLetterExpired, DedupWindow: DurPB(c.DedupWindow),
		MaxDedupIds: c.MaxDedupIDs, SessionWindow: DurPB(c.SessionWindow),
		Group: c.Group, Breaker: breakerToPB(c.Breaker), Attributes: c.Attributes,
		SettledWindow: DurPB(c.SettledWindow), MaxSettled: c.MaxSettled,
		Compression: chutev1.Compression(c.Compression + 1), CompressMin: c.CompressMin,
	}
}

func breakerToPB(b chute.Breaker) *chutev1.Breaker {
	if !b.Enabled {
		return nil
	}
	return &chutev1.Breaker{Enabled: true, Threshold: b.Threshold, Window: DurPB(b.Window),
		MinDeliveries: int32(b.MinDeliveries), Cooldown: DurPB(b.Cooldown), Probes: int32(b.Probes)}
}

func breakerFromPB(b *chutev1.Breaker) chute.Breaker {
	return chute.Breaker{Enabled: b.GetEnabled(), Threshold: b.GetThreshold(), Window: Dur(b.GetWindow()),
		MinDeliveries: int(b.GetMinDeliveries()), Cooldown: Dur(b.GetCooldown()), Probes: int(b.GetProbes())}
}

// QueueConfigFromPB converts a queue config back (nil: all defaults).
func QueueConfigFromPB(c *chutev1.QueueConfig) chute.QueueConfig {
	if c == nil {
		return chute.QueueConfig{}
	}
	cfg := chute.QueueConfig{
		VisibilityTimeout: Dur(c.GetVisibilityTimeout()), MaxDeliveries: int(c.GetMaxDeliveries()),
		DeadLetterQueue: c.GetDeadLetterQueue(), NoDeadLetter: c.GetNoDeadLetter(),
		MaxMessages: c.GetMaxMessages(), MaxBytes: c.GetMaxBytes(),
		MessageTTL: Dur(c.GetMessageTtl()), DeadLetterExpired: c.GetDeadLetterExpired(), DedupWindow: Dur(c.GetDedupWindow()),
		MaxDedupIDs: c.GetMaxDedupIds(), SessionWindow: Dur(c.GetSessionWindow()),
		Group: c.GetGroup(), Breaker: breakerFromPB(c.GetBreaker()), Attributes: c.GetAttributes(),
		SettledWindow: Dur(c.GetSettledWindow()), MaxSettled: c.GetMaxSettled(),
		CompressMin: c.GetCompressMin(),
	}
	if z := c.GetCompression(); z > chutev1.Compression_COMPRESSION_UNSPECIFIED {
		cfg.Compression = chute.Compression(z - 1)
	}
	if k := c.GetBackoff().GetKind(); k > chutev1.BackoffKind_BACKOFF_KIND_UNSPECIFIED {
		cfg.Backoff.Kind = chute.BackoffKind(k - 1)
	}
	cfg.Backoff.Delay = Dur(c.GetBackoff().GetDelay())
	cfg.Backoff.Max = Dur(c.GetBackoff().GetMax())
	cfg.Backoff.Jitter = c.GetBackoff().GetJitter()
	if o := c.GetOverflow(); o > chutev1.Overflow_OVERFLOW_UNSPECIFIED {
		cfg.Overflow = chute.Overflow(o - 1)
	}
	return cfg
}

// QueueStatsToPB converts queue stats.
func QueueStatsToPB(s chute.QueueStats) *chutev1.QueueStats {
	t := s.Totals
	return &chutev1.QueueStats{
		Name: s.Name, Config: QueueConfigToPB(s.Config), Topic: s.Topic, Filter: s.Filter,
		Ready: s.Ready, ReadyBytes: s.ReadyBytes, Delayed: s.Delayed, DelayedBytes: s.DelayedBytes,
		InFlight: s.InFlight, InFlightBytes: s.InFlightBytes, DeadLetters: s.DeadLetters,
		OrderingKeys: s.OrderingKeys, DedupIds: s.DedupIDs, OldestAge: DurPB(s.OldestAge),
		Sessions: s.Sessions, DedupBytes: s.DedupBytes, Latency: QueueLatencyToPB(s.Latency),
		Consumers: s.Consumers, Producers: s.Producers,
		Paused: s.Paused, Breaker: BreakerStateToPB(s.Breaker),
		Totals: &chutev1.QueueTotals{Enqueued: t.Enqueued, Delivered: t.Delivered, Acked: t.Acked, Nacked: t.Nacked,
			LeaseExpired: t.LeaseExpired, Expired: t.Expired, DeadLettered: t.DeadLettered,
			DeadLetteredBytes: t.DeadLetteredBytes, Discarded: t.Discarded, Dropped: t.Dropped, Redriven: t.Redriven,
			Returned: t.Returned, DedupForgotten: t.DedupForgotten, Redelivered: t.Redelivered,
			DeadByReason: &chutev1.DeadReasons{MaxDeliveries: t.DeadByReason.MaxDeliveries,
				Expired: t.DeadByReason.Expired, Overflow: t.DeadByReason.Overflow, Damaged: t.DeadByReason.Damaged},
			Cancelled: t.Cancelled},
		Deduplicated: s.Deduplicated, RejectedFull: s.RejectedFull, RejectedInvalid: s.RejectedInvalid,
	}
}

// QueueStatsFromPB converts queue stats back.
func QueueStatsFromPB(s *chutev1.QueueStats) chute.QueueStats {
	t := s.GetTotals()
	return chute.QueueStats{
		Name: s.GetName(), Config: QueueConfigFromPB(s.GetConfig()), Topic: s.GetTopic(), Filter: s.GetFilter(),
		Ready: s.GetReady(), ReadyBytes: s.GetReadyBytes(), Delayed: s.GetDelayed(), DelayedBytes: s.GetDelayedBytes(),
		InFlight: s.GetInFlight(), InFlightBytes: s.GetInFlightBytes(), DeadLetters: s.GetDeadLetters(),
		OrderingKeys: s.GetOrderingKeys(), DedupIDs: s.GetDedupIds(), OldestAge: Dur(s.GetOldestAge()),
		Sessions: s.GetSessions(), DedupBytes: s.GetDedupBytes(), Latency: QueueLatencyFromPB(s.GetLatency()),
		Consumers: s.GetConsumers(), Producers: s.GetProducers(),
		Paused: s.GetPaused(), Breaker: BreakerStateFromPB(s.GetBreaker()),
		Totals: chute.QueueTotals{Enqueued: t.GetEnqueued(), Delivered: t.GetDelivered(), Acked: t.GetAcked(),
			Nacked: t.GetNacked(), LeaseExpired: t.GetLeaseExpired(), Expired: t.GetExpired(),
			DeadLettered: t.GetDeadLettered(), DeadLetteredBytes: t.GetDeadLetteredBytes(),
			Discarded: t.GetDiscarded(), Dropped: t.GetDropped(), Redriven: t.GetRedriven(),
			Returned: t.GetReturned(), DedupForgotten: t.GetDedupForgotten(), Redelivered: t.GetRedelivered(),
			DeadByReason: chute.DeadReasons{MaxDeliveries: t.GetDeadByReason().GetMaxDeliveries(),
				Expired: t.GetDeadByReason().GetExpired(), Overflow: t.GetDeadByReason().GetOverflow(),
				Damaged: t.GetDeadByReason().GetDamaged()},
			Cancelled: t.GetCancelled()},
		Deduplicated: s.GetDeduplicated(), RejectedFull: s.GetRejectedFull(), RejectedInvalid: s.GetRejectedInvalid(),
	}
}

// BreakerStateToPB converts a breaker state (the enum is the Go value
// plus one: 0 is UNSPECIFIED).
func BreakerStateToPB(st chute.BreakerState) chutev1.BreakerState {
	return chutev1.BreakerState(st) + 1
}

// BreakerStateFromPB converts a breaker state back; UNSPECIFIED (an older
// server) and unknown values read as closed.
func BreakerStateFromPB(st chutev1.BreakerState) chute.BreakerState {
	if st <= chutev1.BreakerState_BREAKER_STATE_UNSPECIFIED || st > chutev1.BreakerState_BREAKER_STATE_HALF_OPEN {
		return chute.BreakerClosed
	}
	return chute.BreakerState(st - 1)
}

// QueueLatencyToPB converts a queue's latency summaries.
func QueueLatencyToPB(l chute.QueueLatency) *chutev1.QueueLatency {
	return &chutev1.QueueLatency{Wait: LatencySummaryToPB(l.Wait), Processing: LatencySummaryToPB(l.Processing),
		Completion: LatencySummaryToPB(l.Completion)}
}

// QueueLatencyFromPB converts them back (nil: all zero).
func QueueLatencyFromPB(l *chutev1.QueueLatency) chute.QueueLatency {
	return chute.QueueLatency{Wait: LatencySummaryFromPB(l.GetWait()), Processing: LatencySummaryFromPB(l.GetProcessing()),
		Completion: LatencySummaryFromPB(l.GetCompletion())}
}

// LatencySummaryToPB converts one latency summary.
func LatencySummaryToPB(s chute.LatencySummary) *chutev1.LatencySummary {
	return &chutev1.LatencySummary{Count: s.Count, Avg: DurPB(s.Avg), P50: DurPB(s.P50), P99: DurPB(s.P99)}
}

// LatencySummaryFromPB converts one back (nil: zero).
func LatencySummaryFromPB(s *chutev1.LatencySummary) chute.LatencySummary {
	return chute.LatencySummary{Count: s.GetCount(), Avg: Dur(s.GetAvg()), P50: Dur(s.GetP50()), P99: Dur(s.GetP99())}
}

// TopicConfigToPB converts a topic config.
func TopicConfigToPB(c chute.TopicConfig) *chutev1.TopicConfig {
	return &chutev1.TopicConfig{DedupWindow: DurPB(c.DedupWindow), MaxDedupIds: c.MaxDedupIDs, SessionWindow: DurPB(c.SessionWindow), Group: c.Group}
}

// TopicConfigFromPB converts a topic config back (nil: all defaults).
func TopicConfigFromPB(c *chutev1.TopicConfig) chute.TopicConfig {
	return chute.TopicConfig{DedupWindow: Dur(c.GetDedupWindow()), MaxDedupIDs: c.GetMaxDedupIds(), SessionWindow: Dur(c.GetSessionWindow()), Group: c.GetGroup()}
}

// TopicStatsToPB converts topic stats.
func TopicStatsToPB(s chute.TopicStats) *chutev1.TopicStats {
	return &chutev1.TopicStats{Name: s.Name, Config: TopicConfigToPB(s.Config),
		Subscriptions: s.Subscriptions, DedupIds: s.DedupIDs, Published: s.Published, Unrouted: s.Unrouted,
		Sessions: s.Sessions, DedupBytes: s.DedupBytes, DedupForgotten: s.DedupForgotten,
		Deduplicated: s.Deduplicated, RejectedFull: s.RejectedFull, RejectedInvalid: s.RejectedInvalid}
}

// TopicStatsFromPB converts topic stats back.
func TopicStatsFromPB(s *chutev1.TopicStats) chute.TopicStats {
	return chute.TopicStats{Name: s.GetName(), Config: TopicConfigFromPB(s.GetConfig()),
		Subscriptions: s.GetSubscriptions(), DedupIDs: s.GetDedupIds(), Published: s.GetPublished(), Unrouted: s.GetUnrouted(),
		Sessions: s.GetSessions(), DedupBytes: s.GetDedupBytes(), DedupForgotten: s.GetDedupForgotten(),
		Deduplicated: s.GetDeduplicated(), RejectedFull: s.GetRejectedFull(), RejectedInvalid: s.GetRejectedInvalid()}
}

// FailuresToPB converts the failed receipts of a settlement.
func FailuresToPB(err error, offset int) ([]*chutev1.ReceiptFailure, error) {
	re, ok := err.(*chute.ReceiptErrors)
	if !ok {
		return nil, err
	}
	out := make([]*chutev1.ReceiptFailure, len(re.Failed))
	for i, f := range re.Failed {
		out[i] = &chutev1.ReceiptFailure{Index: int32(f.Index + offset), Receipt: f.Receipt, Status: ToStatus(f.Err)}
	}
	return out, nil
}

// FailuresFromPB rebuilds *chute.ReceiptErrors (nil when none failed).
func FailuresFromPB(fs []*chutev1.ReceiptFailure) error {
	if len(fs) == 0 {
		return nil
	}
	re := &chute.ReceiptErrors{}
	for _, f := range fs {
		re.Failed = append(re.Failed, chute.ReceiptError{Index: int(f.GetIndex()), Receipt: f.GetReceipt(), Err: FromStatus(f.GetStatus())})
	}
	return re
}
