package engine

// keyState is one ordering key of a queue. At most one message of the key is
// "current" (ready, leased, or waiting out a retry back-off); the others wait
// in waiting, in the order they became ready, and do not count as
// deliverable. When the current message leaves the queue (ack, dead letter,
// expiry, drop) the next waiting one becomes current.
type keyState struct {
	name    string
	current uint64 // seq of the current message; 0 when none
	waiting fifo
	n       int // messages of this key anywhere in the queue
}

func (q *queue) key(name string) *keyState {
	if q.keys == nil {
		q.keys = make(map[string]*keyState)
	}
	k := q.keys[name]
	if k == nil {
		k = &keyState{name: name}
		q.keys[name] = k
	}
	return k
}

// releaseKey is called when a message of k leaves the queue. If it was the
// current one, the next waiting message is promoted into the ready set.
func (e *Engine) releaseKey(q *queue, k *keyState, seq uint64) {
	k.n--
	if k.current == seq {
		k.current = 0
		for k.waiting.len() > 0 {
			w := k.waiting.pop()
			if q.isGone(&w) {
				continue
			}
			q.dropAside(w.seq)
			k.current = w.seq
			q.setActive(w.seq, k)
			q.insertReady(w)
			e.markWake(q)
			break
		}
	}
	if k.n == 0 {
		for k.waiting.len() > 0 { // only gone entries can be left
			w := k.waiting.pop()
			q.isGone(&w)
		}
		delete(q.keys, k.name)
	}
}

func (q *queue) setActive(seq uint64, k *keyState) {
	if q.activeKey == nil {
		q.activeKey = make(map[uint64]*keyState)
	}
	q.activeKey[seq] = k
}

// takeActive returns and forgets the key a ready entry holds.
func (q *queue) takeActive(en *entry) *keyState {
	if en.flags&fKey == 0 {
		return nil
	}
	k := q.activeKey[en.seq]
	delete(q.activeKey, en.seq)
	return k
}
