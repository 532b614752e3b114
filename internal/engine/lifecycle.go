package engine

import "math"

// The life of a message in a queue, as engine methods. Each moves one
// message between the places described on queue and keeps the counts, the
// storage references (live) and the timer heap right. t is the time of the
// event, which for a timer is its due time, never the time of the call.

// enqueue adds a new message to q: a publish, a dead-letter arrival or a
// redrive. Depth limits were checked (or deliberately bypassed) by the
// caller.
func (e *Engine) enqueue(q *queue, en entry, deliverAt, expire int64, key string, t int64) {
	e.ref(en.ref, en.size)
	q.total.Enqueued++
	var k *keyState
	en.flags &^= fKey | fTTL
	if key != "" {
		k = q.key(key)
		k.n++
		en.flags |= fKey
	}
	if deliverAt > t {
		q.setDue(en.seq, deliverAt) // for latency statistics (latency.go)
		q.pushDelayed(delayElem{due: deliverAt, expire: expire, e: en, key: k})
		e.reschedule(q)
		return
	}
	e.makeReady(q, en, expire, k, false, t)
}

func (q *queue) pushDelayed(d delayElem) {
	d.at = d.due
	if d.expire != 0 && d.expire < d.at {
		d.at = d.expire
	}
	q.delayed.push(d)
	q.putAside(&d.e, asideDelayed, d.due, d.key)
	q.n.delayed++
	q.n.delayedBytes += int64(d.e.size)
}

// makeReady makes a message deliverable at time t, unless it has expired.
// holdsKey is true when the message is already its key's current message
// (a retry); otherwise a message whose key is held waits behind it.
func (e *Engine) makeReady(q *queue, en entry, expire int64, k *keyState, holdsKey bool, t int64) {
	if expire != 0 && expire <= t {
		q.total.Expired++
		e.dispose(q, en, k, q.cfg.DeadLetterExpired, ReasonExpired, t)
		return
	}
	q.n.ready++
	q.n.readyBytes += int64(en.size)
	en.flags &^= fTTL
	if expire != 0 {
		en.flags |= fTTL
		if q.expIx == nil {
			q.expIx = make(expiryIndex)
		}
		q.expiry.push(q.expIx, expiryElem{expire: expire, e: en, key: k})
		e.reschedule(q)
	}
	if k != nil {
		if !holdsKey && k.current != 0 && k.current != en.seq {
			k.waiting.push(en)
			q.putAside(&en, asideWaiting, 0, k)
			return
		}
		k.current = en.seq
		q.setActive(en.seq, k)
	}
	q.insertReady(en)
	e.markWake(q)
}

// leaveReady accounts for an entry just taken out of the ready set (or a
// key's waiting line) and returns its key and expiry.
func (e *Engine) leaveReady(q *queue, en *entry) (k *keyState, expire int64) {
	q.n.ready--
	q.n.readyBytes -= int64(en.size)
	k = q.takeActive(en)
	if en.flags&fTTL != 0 {
		x := q.expiry.remove(q.expIx, q.expIx[en.seq])
		expire = x.expire
		if k == nil {
			k = x.key
		}
		en.flags &^= fTTL
		e.reschedule(q)
	}
	return k, expire
}

// leave forgets a message that is leaving q for good (acked, expired,
// dropped, dead-lettered, purged); it is already out of every structure.
func (e *Engine) leave(q *queue, en *entry, k *keyState) {
	e.unref(en.ref, en.size)
	q.dropAside(en.seq)
	if en.flags&fErr != 0 {
		delete(q.lastErr, en.seq)
	}
	if en.flags&fDead != 0 {
		delete(q.dead, en.seq)
	}
	if en.flags&fRet != 0 {
		delete(q.returned, en.seq)
	}
	if q.due != nil {
		delete(q.due, en.seq)
	}
	if k != nil {
		e.releaseKey(q, k, en.seq)
	}
}

// lease delivers en (just taken from the ready set) until deadline.
func (e *Engine) lease(q *queue, en entry, deadline int64) *lease {
	k, expire := e.leaveReady(q, &en)
	if en.deliv < math.MaxUint16 {
		en.deliv++
	}
	l := &lease{e: en, deadline: deadline, expire: expire, key: k, start: e.now}
	q.leases[en.seq] = l
	q.leaseQ.push(l)
	q.n.inflight++
	q.n.inflightBytes += int64(en.size)
	q.total.Delivered++
	if en.deliv > 1 {
		q.total.Redelivered++
	}
	e.reschedule(q)
	return l
}

// endLease removes a lease (ack, nack, expiry, release).
func (e *Engine) endLease(q *queue, l *lease) {
	delete(q.leases, l.e.seq)
	q.leaseQ.remove(l.idx)
	q.n.inflight--
	q.n.inflightBytes -= int64(l.e.size)
	e.reschedule(q)
}

// retry returns a message whose lease ended without an ack: to the
// dead-letter queue if it used its deliveries, else after delay (0: at
// once) to the ready set, still holding its ordering key.
func (e *Engine) retry(q *queue, l *lease, delay, t int64) {
	if q.cfg.MaxDeliveries > 0 && int(q.counted(&l.e)) >= q.cfg.MaxDeliveries {
		e.dispose(q, l.e, l.key, true, ReasonMaxDeliveries, t)
		return
	}
	if delay > 0 && (l.expire == 0 || l.expire > t) {
		q.pushDelayed(delayElem{due: t + delay, expire: l.expire, e: l.e, key: l.key, active: true})
		e.reschedule(q)
		return
	}
	e.makeReady(q, l.e, l.expire, l.key, true, t)
}

// giveBack returns a message whose lease ended without being used (handed
// back unstarted, or at a graceful shutdown): ready again at once, in its
// place and still holding its ordering key, and this delivery does not
// count towards max deliveries.
func (e *Engine) giveBack(q *queue, l *lease, t int64) {
	q.total.Returned++
	if l.e.deliv > q.returned[l.e.seq] { // (a saturated count stays put)
		if q.returned == nil {
			q.returned = make(map[uint64]uint16)
		}
		q.returned[l.e.seq]++
		l.e.flags |= fRet
	}
	e.makeReady(q, l.e, l.expire, l.key, true, t)
}

// delayDue handles a delayed message whose time has come: it expired, or
// it is due.
func (e *Engine) delayDue(q *queue, d delayElem) {
	q.dropAside(d.e.seq)
	q.n.delayed--
	q.n.delayedBytes -= int64(d.e.size)
	if d.expire != 0 && d.expire <= d.at {
		q.total.Expired++
		e.dispose(q, d.e, d.key, q.cfg.DeadLetterExpired, ReasonExpired, d.at)
		return
	}
	e.makeReady(q, d.e, d.expire, d.key, d.active, d.at)
}

// expireReady expires the ready message at the top of q's expiry heap. Its
// entry stays where it is, marked gone, until it reaches a front.
func (e *Engine) expireReady(q *queue) {
	x := q.expiry.remove(q.expIx, 0)
	en, k := x.e, x.key
	if q.gone == nil {
		q.gone = make(map[uint64]struct{})
	}
	q.gone[en.seq] = struct{}{}
	q.n.ready--
	q.n.readyBytes -= int64(en.size)
	if k == nil || k.current == en.seq { // in the ready set, not a key's line
		q.n.inSet--
		q.n.inSetBytes -= int64(en.size)
		delete(q.activeKey, en.seq)
		q.cleanFront(en.prio)
	}
	q.total.Expired++
	e.dispose(q, en, k, q.cfg.DeadLetterExpired, ReasonExpired, x.expire)
	e.reschedule(q)
}

// dispose removes a message from q for good, to q's dead-letter queue when
// deadLetter is set and q has one; otherwise it is discarded.
func (e *Engine) dispose(q *queue, en entry, k *keyState, deadLetter bool, reason Reason, t int64) {
	if !deadLetter || q.cfg.DeadLetterQueue == "" {
		st := stExpired
		if deadLetter {
			q.total.Discarded++
			st = stDiscarded
		}
		e.leave(q, &en, k)
		e.settle(q, en.seq, st, reason, nil, 0, t)
		return
	}
	e.deadLetter(q, en, k, reason, t)
}
