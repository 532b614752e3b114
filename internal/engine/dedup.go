package engine

import "crypto/sha256"

// dedup remembers the producer IDs published to one queue or topic within
// its window. IDs are kept in publish order, so forgetting the expired
// ones takes only the front: O(1) amortised per ID.
//
// An ID is kept as a fixed 32-byte key (the ID itself when shorter than 32
// bytes, else its SHA-256), so that neither the map nor the order list
// holds a pointer: a window of millions of IDs costs the garbage collector
// nothing to scan and no allocation per ID.
type dedup struct {
	seen  map[dedupKey]dedupEntry
	order deque[dedupOrder] // by at
}

// dedupKey is an ID in fixed form: byte 0 is the length (0..31) followed by
// the ID, or 0xff followed by the last 31 bytes of the ID's SHA-256.
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
// forgetting everything older than the window.
func (d *dedup) add(id string, seq uint64, now, window int64) {
	if window <= 0 {
		return
	}
	d.expire(now, window)
	d.insert(keyOf(id), seq, now)
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
