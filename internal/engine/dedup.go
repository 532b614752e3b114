package engine

import "strings"

// dedup remembers the producer IDs published to one queue or topic within
// its window. IDs are kept in publish order in order, so forgetting the
// expired ones takes only the front: O(1) amortised per ID.
type dedup struct {
	seen  map[string]dedupEntry
	order []dedupOrder // by at; order[head:] is live
	head  int
}

type dedupEntry struct {
	seq uint64
	at  int64
}

type dedupOrder struct {
	id  string
	at  int64
	seq uint64
}

// lookup returns the sequence of the first copy of id, if it is still
// remembered at time now.
func (d *dedup) lookup(id string, now, window int64) (uint64, bool) {
	if window <= 0 || d.seen == nil {
		return 0, false
	}
	if x, ok := d.seen[id]; ok && x.at+window > now {
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
	if d.seen == nil {
		d.seen = make(map[string]dedupEntry)
	}
	id = strings.Clone(id) // the record's bytes may be reused
	d.seen[id] = dedupEntry{seq: seq, at: now}
	d.order = append(d.order, dedupOrder{id: id, at: now, seq: seq})
}

// expire forgets IDs whose window has passed at time now.
func (d *dedup) expire(now, window int64) {
	for d.head < len(d.order) && d.order[d.head].at+window <= now {
		o := d.order[d.head]
		if x, ok := d.seen[o.id]; ok && x.seq == o.seq {
			delete(d.seen, o.id)
		}
		d.order[d.head] = dedupOrder{}
		d.head++
	}
	if d.head > 0 && d.head*2 >= len(d.order) {
		n := copy(d.order, d.order[d.head:])
		clear(d.order[n:])
		d.order = d.order[:n]
		d.head = 0
	}
	if len(d.order) == 0 {
		d.order, d.seen = nil, nil
	}
}

func (d *dedup) len() int { return len(d.seen) }
