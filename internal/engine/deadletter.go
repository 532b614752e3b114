package engine

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/text"
)

// Reason says why a message was dead-lettered.
type Reason uint8

const (
	ReasonMaxDeliveries Reason = iota + 1 // used its deliveries
	ReasonExpired                         // its TTL passed
	ReasonOverflow                        // dropped by drop-oldest
)

func (r Reason) String() string {
	switch r {
	case ReasonMaxDeliveries:
		return "max-deliveries"
	case ReasonExpired:
		return "expired"
	case ReasonOverflow:
		return "overflow"
	case ReasonDamaged:
		return "damaged"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// DeadInfo is what a dead letter carries about its death. It is immutable
// once made, so deliveries share it.
type DeadInfo struct {
	Source     string // queue it died in
	Reason     Reason
	Deliveries int    // deliveries it had there
	LastError  string // the last nack's error text, if any
	At         int64  // when it died (unix ns)
	OrigSeq    uint64 // its sequence in the source queue
	Key        string // its ordering key, restored by redrive
}

// Describe is a dead letter's info as a delivery shows it, and headers
// (a new map if nil) with the same in chute's dead-letter headers.
func (d *DeadInfo) Describe(headers map[string]string) (*chute.DeadLetterInfo, map[string]string) {
	info := &chute.DeadLetterInfo{Source: d.Source, Reason: d.Reason.String(), Deliveries: d.Deliveries,
		LastError: d.LastError, Died: time.Unix(0, d.At), SourceSeq: d.OrigSeq}
	if headers == nil {
		headers = make(map[string]string, 6)
	}
	headers[chute.HeaderDeadSource] = d.Source
	headers[chute.HeaderDeadReason] = info.Reason
	headers[chute.HeaderDeadDeliveries] = strconv.Itoa(d.Deliveries)
	headers[chute.HeaderDeadAt] = info.Died.UTC().Format(time.RFC3339Nano)
	headers[chute.HeaderDeadSeq] = strconv.FormatUint(d.OrigSeq, 10)
	if d.LastError != "" {
		headers[chute.HeaderDeadError] = d.LastError
	}
	return info, headers
}

// deadLetter moves en from q to q's dead-letter queue (creating it if need
// be). The dead letter is a new message there, with a new sequence, the
// same blob, and DeadInfo; it has no TTL but the dead-letter queue's own
// and its depth limits do not apply, so nothing accepted disappears.
func (e *Engine) deadLetter(q *queue, en entry, k *keyState, reason Reason, t int64) {
	info := &DeadInfo{Source: q.name, Reason: reason, Deliveries: int(q.counted(&en)), At: t, OrigSeq: en.seq}
	if k != nil {
		info.Key = k.name
	}
	if en.flags&fErr != 0 {
		info.LastError = q.lastErr[en.seq]
	}
	e.leave(q, &en, k)
	q.total.DeadLettered++
	q.total.DeadLetteredBytes += int64(en.size)
	switch reason {
	case ReasonMaxDeliveries:
		q.total.DeadByReason.MaxDeliveries++
	case ReasonExpired:
		q.total.DeadByReason.Expired++
	case ReasonOverflow:
		q.total.DeadByReason.Overflow++
	case ReasonDamaged:
		q.total.DeadByReason.Damaged++
	}
	dlq := e.ensureDeadLetterQueue(q.cfg.DeadLetterQueue)
	ne := entry{seq: e.nextSeq, ref: en.ref, pub: en.pub, size: en.size, prio: en.prio, flags: fDead}
	e.nextSeq++
	e.settle(q, en.seq, stDeadLettered, reason, dlq, ne.seq, t)
	e.enqueueDead(dlq, ne, info, t)
}

// enqueueDead puts dead letter en (its sequence taken, fDead set) on
// dlq at time t with its death: no key (info keeps it, for a redrive),
// dlq's TTL (carry.go too).
func (e *Engine) enqueueDead(dlq *queue, en entry, info *DeadInfo, t int64) {
	if dlq.dead == nil {
		dlq.dead = make(map[uint64]*DeadInfo)
	}
	dlq.dead[en.seq] = info
	e.enqueue(dlq, en, 0, dlq.ttlFrom(t), "", t)
}

// enqueueRedriven puts redriven message en (its sequence taken) on its
// source src at time t, under its ordering key, with src's TTL
// (carry.go too).
func (e *Engine) enqueueRedriven(src *queue, en entry, key string, t int64) {
	src.total.Redriven++
	e.enqueue(src, en, 0, src.ttlFrom(t), key, t)
}

// ttlFrom is when a message q takes in at time t expires by q's TTL (0:
// never).
func (q *queue) ttlFrom(t int64) int64 {
	if q.cfg.MessageTTL > 0 {
		return t + int64(q.cfg.MessageTTL)
	}
	return 0
}

// ensureDeadLetterQueue returns the named queue, creating it when missing
// with the dead-letter defaults: no dead-letter queue of its own and no
// delivery limit, so nothing leaves it except by ack, redrive or purge.
// If the name belongs to a topic the dead letters go nowhere (validation
// refuses such configs, but a topic created later can take the name).
func (e *Engine) ensureDeadLetterQueue(name string) *queue {
	if q := e.queues[name]; q != nil {
		return q
	}
	if e.topics[name] != nil {
		name = name + DeadLetterSuffix
		if q := e.queues[name]; q != nil {
			return q
		}
	}
	return e.newQueue(name, DeadLetterQueueConfig().WithDefaults(name))
}

// DeadLetterQueueConfig is the configuration given to a dead-letter queue
// that the engine creates.
func DeadLetterQueueConfig() QueueConfig {
	return QueueConfig{MaxDeliveries: -1, NoDeadLetter: true}
}

// Redrive moves up to n (all when n ≤ 0) ready dead letters of queue name
// back to their source queues, in delivery order. It returns how many moved
// and the record to journal (nil when nothing moved).
func (e *Engine) Redrive(now int64, name string, n int64) (*Record, int64, error) {
	e.advance(now)
	q := e.queues[name]
	if q == nil {
		return nil, 0, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(name))
	}
	if len(q.dead) == 0 && len(e.deadLetterUsers(name)) == 0 {
		return nil, 0, fmt.Errorf("%w: %q is not a dead-letter queue (no queue dead-letters into it and it holds no dead letters)", ErrInvalidConfig, name)
	}
	r := &Record{Type: RecRedrive, Time: e.now, Name: name, N: n}
	moved, err := e.applyRedrive(r)
	if moved == 0 {
		r = nil
	}
	return r, moved, err
}

// applyRedrive moves dead letters in order; one whose source queue is gone
// or full stays where it is.
func (e *Engine) applyRedrive(r *Record) (int64, error) {
	dlq := e.queues[r.Name]
	if dlq == nil {
		return 0, ErrQueueNotFound
	}
	var moved int64
	var kept []entry
	for r.N <= 0 || moved < r.N {
		p, fromRetry, ok := dlq.best()
		if !ok {
			break
		}
		en := dlq.take(p, fromRetry)
		info := dlq.dead[en.seq]
		var src *queue
		if info != nil {
			src = e.queues[info.Source]
		}
		if src == nil || !src.hasRoom(1, int64(en.size)) {
			kept = append(kept, en)
			continue
		}
		k, _ := e.leaveReady(dlq, &en)
		e.redriveEntry(dlq, src, en, k, info, r.Time)
		moved++
	}
	for _, en := range kept {
		dlq.insertReady(en)
	}
	return moved, nil
}

// redriveEntry moves dead letter en, already out of every structure of
// dlq (k is its key there), back to its source src at time t as a new
// message with a new sequence, which it returns. The dead letter is
// settled in dlq as redriven, with where it went.
func (e *Engine) redriveEntry(dlq, src *queue, en entry, k *keyState, info *DeadInfo, t int64) uint64 {
	e.leave(dlq, &en, k)
	ne := entry{seq: e.nextSeq, ref: en.ref, pub: en.pub, size: en.size, prio: en.prio}
	e.nextSeq++
	e.settle(dlq, en.seq, stRedriven, 0, src, ne.seq, t)
	e.enqueueRedriven(src, ne, info.Key, t)
	return ne.seq
}

// RedriveOutcome is what RedriveSeqs did with one sequence.
type RedriveOutcome struct {
	// State is the message's state in the dead-letter queue before: ready
	// or delayed when it moved (or could have but for its source), else
	// in flight, a settled state or unknown.
	State  chute.MessageState
	Moved  bool
	Source string // the queue it died in ("" when not a dead letter)
	NewSeq uint64 // its sequence in Source, when moved
	// Err is nil when moved, else chute.ErrMessageLeased,
	// chute.ErrMessageNotFound (settled, unknown, not a dead letter),
	// ErrQueueNotFound (Source is gone) or ErrQueueFull (Source has no
	// room).
	Err error
}

// RedriveSeqs moves the ready and delayed dead letters among seqs of
// dead-letter queue name back to their source queues, in the order given
// (so that an earlier one can take the last room in its source). It
// returns the record to journal (nil when none moved; it names only those
// that moved) and an outcome per seq; a sequence named again gets the
// outcome of its first naming.
func (e *Engine) RedriveSeqs(now int64, name string, seqs []uint64) (*Record, []RedriveOutcome, error) {
	e.advance(now)
	dlq := e.queues[name]
	if dlq == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(name))
	}
	out := make([]RedriveOutcome, len(seqs))
	first := make(map[uint64]int, len(seqs))
	var moved []uint64
	for i, s := range seqs {
		if j, ok := first[s]; ok {
			out[i] = out[j]
			continue
		}
		first[s] = i
		out[i] = e.redriveSeq(dlq, s, e.now)
		if out[i].Moved {
			moved = append(moved, s)
		}
	}
	if len(moved) == 0 {
		return nil, out, nil
	}
	return &Record{Type: RecRedriveSeqs, Time: e.now, Name: name, Seqs: moved}, out, nil
}

// applyRedriveSeqs replays RedriveSeqs: every seq it names moves, as it
// did when the record was made.
func (e *Engine) applyRedriveSeqs(r *Record) error {
	dlq := e.queues[r.Name]
	if dlq == nil {
		return ErrQueueNotFound
	}
	for _, s := range r.Seqs {
		if o := e.redriveSeq(dlq, s, r.Time); !o.Moved {
			return fmt.Errorf("dead letter %d (state %v): %w", s, o.State, o.Err)
		}
	}
	return nil
}

// redriveSeq moves dead letter seq of dlq back to its source at time t
// when it is ready or delayed and its source has room, and says what
// happened.
func (e *Engine) redriveSeq(dlq *queue, seq uint64, t int64) (o RedriveOutcome) {
	at, queued := dlq.findQueued(seq)
	if !queued {
		o.State = dlq.state(seq)
		if o.State == chute.MessageUnknown {
			o.State = e.settledState(dlq, seq)
		}
		o.Err = chute.CancelError(o.State)
		if o.Err == nil { // queued, yet not found: cannot happen
			o.Err = chute.ErrMessageNotFound
		}
		return o
	}
	o.State = chute.MessageReady
	if at.delayed >= 0 {
		o.State = chute.MessageDelayed
	}
	info := dlq.dead[seq]
	if info == nil || at.en.flags&fDead == 0 {
		o.Err = chute.ErrMessageNotFound
		return o
	}
	o.Source = info.Source
	src := e.queues[info.Source]
	switch {
	case src == nil:
		o.Err = ErrQueueNotFound
	case !src.hasRoom(1, int64(at.en.size)):
		o.Err = ErrQueueFull
	default:
		en, k := e.takeQueuedAt(dlq, at)
		o.NewSeq = e.redriveEntry(dlq, src, en, k, info, t)
		o.Moved = true
	}
	return o
}

// DeadLetterSeqOfID returns the sequence in dead-letter queue dlq of the
// message with ID id: as dlq remembers the ID (a message published to it
// directly), else as a queue that dead-letters into dlq remembers it,
// while that queue's settled log says the message died into dlq (a dead
// letter keeps its ID, but dlq does not remember it). Unknown IDs are
// chute.ErrMessageNotFound.
func (e *Engine) DeadLetterSeqOfID(dlq, id string) (uint64, error) {
	seq, err := e.SeqOfID(dlq, id)
	if err == nil || !errors.Is(err, chute.ErrMessageNotFound) {
		return seq, err
	}
	for _, src := range e.deadLetterUsers(dlq) {
		s, err := e.SeqOfID(src, id)
		if err != nil {
			continue
		}
		if info, err := e.Lookup(src, s); err == nil && info.State == chute.MessageDeadLettered && info.MovedTo == dlq {
			return info.MovedSeq, nil
		}
	}
	return 0, fmt.Errorf("%w: id %s in %s or the queues that dead-letter into it (not remembered)", chute.ErrMessageNotFound, text.Quote(id), text.Quote(dlq))
}

// hasRoom reports whether n more messages of b bytes fit under q's limits
// without dropping anything.
func (q *queue) hasRoom(n, b int64) bool {
	return (q.cfg.MaxMessages <= 0 || q.n.depth()+n <= q.cfg.MaxMessages) &&
		(q.cfg.MaxBytes <= 0 || q.n.bytes()+b <= q.cfg.MaxBytes)
}
