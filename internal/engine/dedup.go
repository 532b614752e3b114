package engine

import (
	"crypto/sha256"
	"unsafe"
)

// De-duplication: what makes a publish to one queue or topic a duplicate.
//
// Two mechanisms, for two purposes:
//
//   - Message IDs (PubMsg.ID) are business keys chosen by the application:
//     each is remembered for the target's de-dup window, so their cost
//     grows with the messages published in a window (about 100 bytes
//     each). MaxDedupIDs caps them: beyond it the oldest are forgotten
//     early, counted in DedupForgotten.
//   - Producer sessions (Kafka's idempotent producer) make retries safe at
//     a fixed cost: a producer numbers its messages 1, 2, 3, … in a
//     session of its own, and the engine keeps per session only the
//     highest number stored, the time of its last publish and the results
//     of its last SessionInFlight batches (to answer a retried batch with
//     its original sequences). A batch must start at most one past the
//     highest number (in-order rule): one that leaves a gap is refused
//     with ErrOutOfOrder, because accepting it would make the missing
//     batch, when its retry comes, look like a duplicate. Sessions are
//     forgotten after SessionWindow without a publish, and beyond
//     MaxSessions the least recently used one is forgotten early.
//
// Both are changed only by applying publish records, at the record's time,
// so a replay or a snapshot rebuilds them exactly.
type dedup struct {
	seen  map[dedupKey]dedupEntry
	order deque[dedupOrder] // by at
	sess  sessions
}

// dedupKey is an ID in fixed form: byte 0 is the length (0..31) followed by
// the ID, or 0xff followed by the last 31 bytes of the ID's SHA-256.
//
// An ID is kept as a fixed 32-byte key, so that neither the map nor the
// order list holds a pointer: a window of millions of IDs costs the garbage
// collector nothing to scan and no allocation per ID. IDs are kept in
// publish order, so forgetting the expired ones takes only the front: O(1)
// amortised per ID.
type dedupKey [32]byte

func keyOf(id string) dedupKey {
	var k dedupKey
	if len(id) < len(k) {
		k[0] = byte(len(id))
		copy(k[1:], id)
		return k
	}
	sum := sha256.Sum256([]byte(id))
	k = sum
	k[0] = 0xff
	return k
}

type dedupEntry struct {
	seq uint64
	at  int64
}

type dedupOrder struct {
	key dedupKey
	at  int64
	seq uint64
}

// lookup returns the sequence of the first copy of id, if it is still
// remembered at time now.
func (d *dedup) lookup(id string, now, window int64) (uint64, bool) {
	if window <= 0 || d.seen == nil {
		return 0, false
	}
	if x, ok := d.seen[keyOf(id)]; ok && x.at+window > now {
		return x.seq, true
	}
	return 0, false
}

// add remembers id as first published with sequence seq at time now, after
// forgetting everything older than the window; then, beyond limit IDs
// (≤ 0: no limit), it forgets the oldest. It returns how many it forgot
// early.
func (d *dedup) add(id string, seq uint64, now, window, limit int64) (forgotten int64) {
	if window <= 0 {
		return 0
	}
	d.expire(now, window)
	d.insert(keyOf(id), seq, now)
	for limit > 0 && int64(len(d.seen)) > limit && d.order.len() > 0 {
		o := d.order.pop()
		if x, ok := d.seen[o.key]; ok && x.seq == o.seq {
			delete(d.seen, o.key)
			forgotten++
		}
	}
	return forgotten
}

func (d *dedup) insert(k dedupKey, seq uint64, at int64) {
	if d.seen == nil {
		d.seen = make(map[dedupKey]dedupEntry)
	}
	d.seen[k] = dedupEntry{seq: seq, at: at}
	d.order.push(dedupOrder{key: k, at: at, seq: seq})
}

// expire forgets IDs whose window has passed at time now.
func (d *dedup) expire(now, window int64) {
	for d.order.len() > 0 && d.order.front().at+window <= now {
		o := d.order.pop()
		if x, ok := d.seen[o.key]; ok && x.seq == o.seq {
			delete(d.seen, o.key)
		}
	}
	if d.order.len() == 0 {
		d.seen = nil
	}
}

func (d *dedup) len() int { return len(d.seen) }

// Sizes for bytes(): a map slot costs its key and value plus about an
// eighth for control bytes and free slots (Go's maps fill groups of 8 to
// 7/8).
const (
	idBytes      = (int64(unsafe.Sizeof(dedupKey{}))+int64(unsafe.Sizeof(dedupEntry{})))*9/8 + int64(unsafe.Sizeof(dedupOrder{}))
	sessionBytes = int64(unsafe.Sizeof(session{})) + (16+8)*9/8 // the struct, and its map slot (string header, pointer)
	sessDupBytes = int64(unsafe.Sizeof(sessDup{}))
)

// bytes estimates the memory the de-dup structures hold: the figure that
// must stay small however many messages sessions publish.
func (d *dedup) bytes() int64 {
	n := int64(len(d.seen)) * idBytes
	for s := d.sess.head; s != nil; s = s.next {
		n += sessionBytes + int64(len(s.id))
		for i := range s.batches {
			n += int64(len(s.batches[i].dups)) * sessDupBytes
		}
	}
	return n
}

// sessions are a target's producer sessions by ID, and in a list by their
// last publish, least recent first (so expiry takes the front).
type sessions struct {
	m          map[string]*session
	head, tail *session
}

// session is one producer session of one target.
type session struct {
	id         string
	hw         uint64 // the highest session number stored
	last       int64  // time of its last publish (unix ns)
	prev, next *session
	batches    [SessionInFlight]sessBatch // ring: the latest at (nextB-1) mod len
	nextB      uint8
}

// sessBatch is what a stored batch was answered: its session numbers
// first..first+n-1 got broker sequences seq, seq+1, … in order, except the
// positions in dups, which were duplicates by message ID.
type sessBatch struct {
	first uint64 // 0: an empty slot
	n     uint32
	seq   uint64
	dups  []sessDup // by pos; nil in the common case
}

// sessDup is a position of a session batch that was a duplicate by message
// ID, and the sequence of the first copy.
type sessDup = SessionDup

// get returns the session id if it is remembered at time now.
func (ss *sessions) get(id string, now, window int64) *session {
	s := ss.m[id]
	if s == nil || s.last+window <= now {
		return nil
	}
	return s
}

// use returns session id for a publish at time now, creating it (or
// starting it afresh, if it expired), moving it to the back of the list,
// after forgetting the sessions that expired; beyond limit sessions the
// least recently used one is forgotten (counted in forgotten).
func (ss *sessions) use(id string, now, window int64, limit int) (s *session, forgotten int64) {
	for ss.head != nil && ss.head.last+window <= now {
		ss.remove(ss.head)
	}
	s = ss.m[id]
	if s != nil {
		ss.unlink(s)
	} else {
		if ss.m == nil {
			ss.m = make(map[string]*session)
		}
		s = &session{id: id}
		ss.m[id] = s
		for len(ss.m) > limit && ss.head != nil {
			ss.remove(ss.head)
			forgotten++
		}
	}
	s.last = now
	ss.pushBack(s)
	return s, forgotten
}

func (ss *sessions) pushBack(s *session) {
	s.prev, s.next = ss.tail, nil
	if ss.tail != nil {
		ss.tail.next = s
	} else {
		ss.head = s
	}
	ss.tail = s
}

func (ss *sessions) unlink(s *session) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		ss.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		ss.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

func (ss *sessions) remove(s *session) {
	ss.unlink(s)
	delete(ss.m, s.id)
	if len(ss.m) == 0 {
		ss.m = nil
	}
}

func (ss *sessions) len() int { return len(ss.m) }

// record remembers a stored batch (the oldest of the ring makes room).
func (s *session) record(b sessBatch) {
	s.batches[s.nextB] = b
	s.nextB = (s.nextB + 1) % SessionInFlight
	s.hw = b.first + uint64(b.n) - 1
}

// result is the broker sequence that session number num (≤ hw) got, or 0
// when the batch that held it is no longer remembered.
func (s *session) result(num uint64) uint64 {
	for i := range s.batches {
		b := &s.batches[i]
		if b.first == 0 || num < b.first || num-b.first >= uint64(b.n) {
			continue
		}
		pos := uint32(num - b.first)
		stored := uint64(pos)
		for _, d := range b.dups {
			switch {
			case d.Pos == pos:
				return d.Seq
			case d.Pos < pos:
				stored--
			}
		}
		return b.seq + stored
	}
	return 0
}
