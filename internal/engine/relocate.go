package engine

// Compaction. A segment that holds a few live messages among many dead ones
// pins the whole file. The broker copies those messages' blobs forward into
// a blobs record (which replay ignores), then, at its next checkpoint,
// calls Relocate to point every entry at the copies and writes the
// snapshot; from then on the old segment has no live entries and is
// released. Relocation changes where blobs live, never what the queues
// hold, so it needs no record of its own: the checkpoint carries it.

// Candidates returns the blob locations (and sizes) of every queued
// message whose blob is in one of units, at most limit bytes of them. Each
// location appears once, however many entries share it (fan-out).
func (e *Engine) Candidates(units map[uint32]bool, limit int64) map[uint64]uint32 {
	out := make(map[uint64]uint32)
	var total int64
	e.eachEntry(func(q *queue, en *entry, copyOnly bool) bool {
		if copyOnly || !units[unitOf(en.ref)] {
			return true
		}
		if _, ok := out[en.ref]; !ok {
			if total+int64(en.size) > limit && len(out) > 0 {
				return false
			}
			out[en.ref] = en.size
			total += int64(en.size)
		}
		return true
	})
	return out
}

// Relocate points every entry whose blob is at a key of moved to the
// location it maps to, and returns how many entries moved. The caller has
// stored identical blobs there.
func (e *Engine) Relocate(moved map[uint64]uint64) int {
	n := 0
	e.eachEntry(func(q *queue, en *entry, copyOnly bool) bool {
		to, ok := moved[en.ref]
		if !ok {
			return true
		}
		if !copyOnly {
			e.unref(en.ref, en.size)
			e.ref(to, en.size)
			n++
		}
		en.ref = to
		return true
	})
	return n
}

// eachEntry visits every live entry of every queue, and the copies kept by
// expiry elements (copyOnly), until fn returns false. It is O(n): only
// maintenance (checkpoints) calls it.
func (e *Engine) eachEntry(fn func(q *queue, en *entry, copyOnly bool) bool) {
	for _, q := range e.queues {
		live := func(en *entry) bool { return isGone(q, en) || fn(q, en, false) }
		for p := range q.ready {
			cont := true
			q.ready[p].each(func(en *entry) bool { cont = live(en); return cont })
			if !cont {
				return
			}
			for i := range q.retry[p] {
				if !live(&q.retry[p][i]) {
					return
				}
			}
		}
		for _, k := range q.keys {
			cont := true
			k.waiting.each(func(en *entry) bool { cont = live(en); return cont })
			if !cont {
				return
			}
		}
		for i := range q.delayed {
			if !fn(q, &q.delayed[i].e, false) {
				return
			}
		}
		for _, l := range q.leaseQ {
			if !fn(q, &l.e, false) {
				return
			}
		}
		for i := range q.expiry {
			if !fn(q, &q.expiry[i].e, true) {
				return
			}
		}
	}
}
