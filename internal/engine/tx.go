package engine

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/text"
)

// Transactions: one record that commits several publishes, acks, nacks and
// returns atomically (chute.Tx).
//
// PrepareTx validates everything against the current state without
// changing it — every receipt's lease still held with the same delivery
// count, every publish as PreparePublish would take it, every name in one
// placement group — and builds ONE RecTx record whose parts are the
// publish, ack, nack and return records the separate calls would have
// made. The caller journals it and calls Apply, which applies the parts in
// order (publishes first, then acks, then nacks and returns) with the same
// effects the separate records have. A stale receipt fails the whole
// transaction before anything is built: no record, no effect.
//
// Part order matters for sequences: publishes take consecutive sequences
// from nextSeq (PrepareTx numbers a later publish after an earlier one's
// messages), and a nack that dead-letters takes the next sequence after
// them. A publish that would make room by dropping the oldest message
// (drop-oldest overflow) also takes sequences for the dead letters it
// makes, so only the last publish of a transaction may do that.
//
// Retries: the engine remembers each committed transaction's ID with its
// results (txMemo: for chute.TxWindow, at most chute.MaxTxIDs IDs and
// chute.MaxTxResults results, oldest forgotten first), changed only by
// applying RecTx records at their time, so a replay or a snapshot rebuilds
// it exactly. A transaction whose ID is remembered is answered with its
// results and builds no record.
//
// Encoding (record version 4):
//
//	tx      := id nresults (n (seq<<1 | dup)*)* nparts (len:uint32le part)*
//	part    := a whole record (version, type, time, body) of type
//	           publish, ack, nack or return
//
// A part is encoded in place inside the transaction's record, so the blob
// offsets of a publish part (BlobOff) are relative to the start of the
// transaction's record, as for a plain publish: the journal's read path
// finds blobs at record position + BlobOff whatever the nesting.

// Tx is a transaction as the engine takes it: the broker parses receipts,
// stamps times and checks sizes first.
type Tx struct {
	ID     string
	Pubs   []TxPub
	Settle []TxSettle // acks first, then nacks and returns
}

// TxPub is one publish of a transaction.
type TxPub struct {
	Target  string
	Session Session
	Msgs    []PubMsg
}

// TxSettle settles leases of one queue in a transaction: Type is RecAck,
// RecNack or RecReturn, Items as for Ack, Nack and Return.
type TxSettle struct {
	Queue string
	Type  RecordType
	Items []Item
}

// TxStale names a stale item of a transaction: Settle[Part].Items[Item].
type TxStale struct{ Part, Item int }

// StaleError is PrepareTx's error when leases named by the transaction are
// no longer held; it matches ErrStaleReceipt.
type StaleError struct{ Items []TxStale }

func (e *StaleError) Error() string {
	return fmt.Sprintf("%d stale receipt(s) in the transaction", len(e.Items))
}

// Is makes errors.Is(err, ErrStaleReceipt) true.
func (e *StaleError) Is(target error) bool { return target == ErrStaleReceipt }

// ErrCrossGroup: a transaction names more than one placement group.
var ErrCrossGroup = chute.ErrCrossGroup

// PrepareTx validates a transaction at time now and builds its record
// without changing any state (see above). The record is nil when the
// transaction's ID is remembered (res is then the original result), or
// when it has no ID and nothing to store (every message a duplicate, no
// receipt). The caller encodes the record, stores it, and then calls Apply
// with the storage location of its first byte, before any other engine
// call. The record and the results belong to the engine: the next
// PrepareTx reuses them, so the caller copies the results it keeps first.
func (e *Engine) PrepareTx(now int64, tx *Tx) (*Record, [][]PubResult, error) {
	e.advance(now)
	now = e.now
	if len(tx.ID) > chute.MaxTxIDLen {
		return nil, nil, fmt.Errorf("%w: transaction ID longer than %d bytes", ErrInvalidMessage, chute.MaxTxIDLen)
	}
	if tx.ID != "" {
		if res, ok := e.txs.lookup(tx.ID, now); ok {
			return nil, res, nil
		}
	}
	var g groupCheck
	for _, p := range tx.Pubs {
		if err := g.add(e, p.Target); err != nil {
			return nil, nil, err
		}
	}
	for _, s := range tx.Settle {
		if err := g.add(e, s.Queue); err != nil {
			return nil, nil, err
		}
	}
	// The transaction's record, its parts and its results are the
	// engine's own, reused by the next PrepareTx (the caller is done with
	// them once it has applied the record and copied the results), so that
	// a transaction allocates none of them once the scratch has grown.
	sc := &e.txs.scratch
	sc.rec = Record{Type: RecTx, Time: now, Name: tx.ID, Parts: sc.ptrs[:0], TxResults: sc.txRes[:0]}
	r := &sc.rec
	err := e.prepareTxPubs(now, tx.Pubs, r)
	if err == nil {
		err = e.prepareTxSettle(tx.Settle, r)
	}
	sc.ptrs, sc.txRes = r.Parts[:0], r.TxResults[:0]
	if err != nil {
		return nil, nil, err
	}
	if len(r.Parts) == 0 && tx.ID == "" {
		return nil, r.TxResults, nil
	}
	return r, r.TxResults, nil
}

// prepareTxPubs prepares the publishes of a transaction, numbering each
// after the messages of the ones before it.
func (e *Engine) prepareTxPubs(now int64, pubs []TxPub, r *Record) error {
	saved := e.nextSeq
	defer func() { e.nextSeq = saved }()
	sc := &e.txs.scratch
	n := 0
	for _, p := range pubs {
		n += len(p.Msgs)
	}
	// Sized once: each publish's results are a slice of this array.
	sc.pubRes = slices.Grow(sc.pubRes[:0], n)
	if len(pubs) > 0 {
		sc.pub(len(pubs) - 1) // grown before any part is taken
	}
	for i, p := range pubs {
		if slices.ContainsFunc(pubs[:i], func(q TxPub) bool { return q.Target == p.Target }) {
			return fmt.Errorf("%w: publish %d: the transaction publishes to %s twice (put the messages in one publish)", ErrInvalidMessage, i, text.Quote(p.Target))
		}
		start := len(sc.pubRes)
		sc.pubRes = sc.pubRes[:start+len(p.Msgs)]
		res := sc.pubRes[start:len(sc.pubRes):len(sc.pubRes)]
		clear(res)
		rec, res, err := e.preparePublish(now, p.Target, p.Session, p.Msgs, sc.pub(i), res)
		if err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
		r.TxResults = append(r.TxResults, res)
		if rec == nil {
			continue
		}
		if i < len(pubs)-1 && e.wouldDrop(p.Target, rec.Msgs) {
			return fmt.Errorf("%w: publish %d: %s is full and would drop its oldest messages: only the last publish of a transaction may",
				ErrQueueFull, i, text.Quote(p.Target))
		}
		r.Parts = append(r.Parts, rec)
		e.nextSeq += uint64(len(rec.Msgs))
	}
	return nil
}

// wouldDrop reports whether publishing msgs to target would drop the
// oldest messages of a full drop-oldest queue (making dead letters, which
// take sequences).
func (e *Engine) wouldDrop(target string, msgs []PubMsg) bool {
	full := func(q *queue, match func(m *PubMsg) bool) bool {
		if q.cfg.Overflow != OverflowDropOldest {
			return false
		}
		var n, b int64
		for i := range msgs {
			if match(&msgs[i]) {
				n++
				b += int64(BlobSize(msgs[i].ID, msgs[i].Key, msgs[i].Headers, msgs[i].Body))
			}
		}
		return n > 0 && !q.hasRoom(n, b)
	}
	all := func(*PubMsg) bool { return true }
	if q := e.queues[target]; q != nil {
		return full(q, all)
	}
	if t := e.topics[target]; t != nil {
		for _, s := range t.subs {
			if full(s, func(m *PubMsg) bool { return mapMatches(m.Headers, s.sub.filter) }) {
				return true
			}
		}
	}
	return false
}

// prepareTxSettle checks every item's lease and adds the settle parts to r.
func (e *Engine) prepareTxSettle(parts []TxSettle, r *Record) error {
	type key struct {
		q   *queue
		seq uint64
	}
	var seen map[key]bool // a receipt named twice; only for large transactions
	n := 0
	for _, p := range parts {
		n += len(p.Items)
	}
	if n > 1 {
		seen = make(map[key]bool, n)
	}
	if len(parts) > 0 {
		e.txs.scratch.part(len(parts) - 1) // grown before any part is taken
	}
	var stale []TxStale
	acked := e.txs.scratch.acked[:0]
	defer func() {
		clear(acked) // no lease kept past the call
		e.txs.scratch.acked = acked[:0]
	}()
	for pi, p := range parts {
		q := e.queues[p.Queue]
		if q == nil {
			return fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(p.Queue))
		}
		if p.Type != RecAck && p.Type != RecNack && p.Type != RecReturn {
			return fmt.Errorf("transaction part of type %v", p.Type)
		}
		pr := e.txs.scratch.part(pi)
		*pr = Record{Type: p.Type, Time: e.now, Name: p.Queue, Items: pr.Items[:0]}
		for ii, it := range p.Items {
			if seen != nil {
				if seen[key{q, it.Seq}] {
					return fmt.Errorf("%w: the transaction names message %d of %s twice", ErrInvalidReceipt, it.Seq, text.Quote(p.Queue))
				}
				seen[key{q, it.Seq}] = true
			}
			l := q.leases[it.Seq]
			if l == nil || l.e.deliv != it.Deliv {
				stale = append(stale, TxStale{Part: pi, Item: ii})
				continue
			}
			switch p.Type {
			case RecAck:
				acked = append(acked, ackedLease{q, l})
			case RecNack, RecReturn:
				settleValue(q, p.Type, &it, l.e.deliv)
			}
			pr.Items = append(pr.Items, it)
		}
		if len(pr.Items) > 0 {
			r.Parts = append(r.Parts, pr)
		}
	}
	if len(stale) > 0 {
		return &StaleError{Items: stale}
	}
	for _, a := range acked {
		e.observeAck(a.q, a.l) // statistics, live only (as Ack)
	}
	return nil
}

// groupOf returns the placement group of a queue or topic: its configured
// group; for a subscription's queue without one, its topic's; otherwise
// its own name.
func (e *Engine) groupOf(name string) (string, bool) {
	if q := e.queues[name]; q != nil {
		switch {
		case q.cfg.Group != "":
			return q.cfg.Group, true
		case q.sub != nil:
			return topicGroup(q.sub.topic), true
		}
		return name, true
	}
	if t := e.topics[name]; t != nil {
		return topicGroup(t), true
	}
	return "", false
}

func topicGroup(t *topic) string {
	if t.cfg.Group != "" {
		return t.cfg.Group
	}
	return t.name
}

// GroupOf returns the placement group of a queue or topic.
func (e *Engine) GroupOf(name string) (string, bool) { return e.groupOf(name) }

// groupCheck refuses names of more than one placement group (or one that
// does not exist), added one by one.
type groupCheck struct{ first, group string }

func (c *groupCheck) add(e *Engine, name string) error {
	g, ok := e.groupOf(name)
	switch {
	case !ok:
		return fmt.Errorf("%w: %s", ErrNotFound, text.Quote(name))
	case c.first == "":
		c.first, c.group = name, g
	case g != c.group:
		return fmt.Errorf("%w: %s is in group %s, %s in group %s", ErrCrossGroup, text.Quote(c.first), text.Quote(c.group), text.Quote(name), text.Quote(g))
	}
	return nil
}

// applyTx applies a transaction's parts in order and remembers its ID.
func (e *Engine) applyTx(r *Record, base uint64) error {
	var g groupCheck
	for _, p := range r.Parts {
		if err := g.add(e, p.Name); err != nil {
			return err
		}
	}
	for i, p := range r.Parts {
		p.Time = r.Time
		var err error
		switch p.Type {
		case RecPublish:
			err = e.applyPublish(p, base)
		case RecAck, RecNack, RecReturn:
			err = e.applyItems(p)
		default:
			err = fmt.Errorf("a part of type %v", p.Type)
		}
		if err != nil {
			return fmt.Errorf("part %d (%v %q): %w", i, p.Type, p.Name, err)
		}
	}
	if r.Name != "" {
		e.txs.remember(r.Name, r.Time, r.TxResults)
	}
	return nil
}

// appendTx encodes a transaction's body (see above); start is where the
// record began in buf.
func (r *Record) appendTx(buf []byte, start int) []byte {
	buf = appendString(buf, r.Name)
	buf = appendTxResults(buf, r.TxResults)
	buf = binary.AppendUvarint(buf, uint64(len(r.Parts)))
	for _, p := range r.Parts {
		at := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		p.Time = r.Time
		buf = p.Encode(buf)
		binary.LittleEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
		// Encode set the blob offsets relative to the part: make them
		// relative to the transaction's record.
		for i := range p.Msgs {
			p.Msgs[i].BlobOff += uint32(at + 4 - start)
		}
	}
	return buf
}

func appendTxResults(buf []byte, res [][]PubResult) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(res)))
	for _, rs := range res {
		buf = binary.AppendUvarint(buf, uint64(len(rs)))
		for _, x := range rs {
			v := x.Seq << 1
			if x.Duplicate {
				v |= 1
			}
			buf = binary.AppendUvarint(buf, v)
		}
	}
	return buf
}

func (d *decoder) txResults() [][]PubResult {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	res := make([][]PubResult, n)
	for i := 0; i < n && d.err == nil; i++ {
		m := d.count(1)
		res[i] = make([]PubResult, m)
		for j := 0; j < m && d.err == nil; j++ {
			v := d.uvarint()
			res[i][j] = PubResult{Seq: v >> 1, Duplicate: v&1 != 0}
		}
	}
	return res
}

// tx decodes a transaction's body; its parts are decoded in place.
func (d *decoder) tx(r *Record) {
	r.Name = d.string()
	r.TxResults = d.txResults()
	n := d.count(8)
	for i := 0; i < n && d.err == nil; i++ {
		if len(d.b)-d.off < 4 {
			d.fail("short transaction part")
			return
		}
		size := int(binary.LittleEndian.Uint32(d.b[d.off:]))
		d.off += 4
		if size > len(d.b)-d.off {
			d.fail("transaction part of %d bytes exceeds the %d left", size, len(d.b)-d.off)
			return
		}
		if size >= 2 && RecordType(d.b[d.off+1]) == RecTx {
			d.fail("a transaction inside a transaction") // before recursing: no nesting depth to exhaust
			return
		}
		sub := decoder{b: d.b[:d.off+size], off: d.off}
		p, err := sub.record()
		if err != nil {
			d.err = err
			return
		}
		switch p.Type {
		case RecPublish, RecAck, RecNack, RecReturn:
		default:
			d.fail("transaction part of type %v", p.Type)
			return
		}
		r.Parts = append(r.Parts, p)
		d.off += size
	}
}

// txMemo remembers committed transaction IDs with their results (see
// above). It holds no pointer per result beyond the results themselves.
type txMemo struct {
	m       map[string]txMemoEntry
	order   deque[txMemoOrder] // by commit time
	gen     uint64             // tells a re-remembered ID's old order entry from its new one
	results int                // results held in all

	scratch txScratch // PrepareTx's records, reused: not state
}

// txScratch holds the records and results PrepareTx builds, so that a
// transaction allocates none of them once the arrays have grown; the
// caller drops their messages with ReleaseTx after each transaction.
type txScratch struct {
	rec    Record
	parts  []Record // settle parts
	pubs   []Record // publish parts
	ptrs   []*Record
	txRes  [][]PubResult
	pubRes []PubResult // every publish's results, in one array
	acked  []ackedLease
}

// ackedLease is a lease a transaction acks, for its statistics.
type ackedLease struct {
	q *queue
	l *lease
}

// ReleaseTx drops the scratch's references to the last transaction's
// messages (up to chute.MaxTxBytes of bodies), keeping its arrays: call it
// once the record PrepareTx returned has been encoded and applied, or
// refused.
func (e *Engine) ReleaseTx() {
	sc := &e.txs.scratch
	for i := range sc.pubs {
		clear(sc.pubs[i].Msgs)
		sc.pubs[i].Msgs = sc.pubs[i].Msgs[:0]
	}
}

// pub returns publish part i's record (its Msgs kept for reuse), growing
// the publish parts to hold it (which moves them: grow first, then take).
func (sc *txScratch) pub(i int) *Record {
	for len(sc.pubs) <= i {
		sc.pubs = append(sc.pubs, Record{})
	}
	return &sc.pubs[i]
}

// part returns settle part i's record (its Items kept for reuse),
// growing the parts to hold it.
func (sc *txScratch) part(i int) *Record {
	for len(sc.parts) <= i {
		sc.parts = append(sc.parts, Record{})
	}
	return &sc.parts[i]
}

type txMemoEntry struct {
	at  int64
	gen uint64
	res [][]PubResult
}

type txMemoOrder struct {
	id  string
	gen uint64
}

func txResultCount(res [][]PubResult) int {
	n := 0
	for _, r := range res {
		n += len(r)
	}
	return n
}

// cloneTxResults copies res deeply (PrepareTx's results are reused), into
// one array.
func cloneTxResults(res [][]PubResult) [][]PubResult {
	if res == nil {
		return nil
	}
	all := make([]PubResult, 0, txResultCount(res))
	out := make([][]PubResult, len(res))
	for i, rs := range res {
		if rs == nil {
			continue
		}
		all = append(all, rs...)
		out[i] = all[len(all)-len(rs) : len(all) : len(all)]
	}
	return out
}

// lookup returns the results of transaction id if it is remembered at now.
func (t *txMemo) lookup(id string, now int64) ([][]PubResult, bool) {
	x, ok := t.m[id]
	if !ok || x.at+int64(chute.TxWindow) <= now {
		return nil, false
	}
	return x.res, true
}

// remember records a committed transaction and forgets the ones out of
// the window or beyond the caps.
func (t *txMemo) remember(id string, at int64, res [][]PubResult) {
	if t.m == nil {
		t.m = make(map[string]txMemoEntry)
	}
	if old, ok := t.m[id]; ok {
		t.results -= txResultCount(old.res)
	}
	t.gen++
	t.m[id] = txMemoEntry{at: at, gen: t.gen, res: cloneTxResults(res)}
	t.results += txResultCount(res)
	t.order.push(txMemoOrder{id: id, gen: t.gen})
	for t.order.len() > 0 {
		o := t.order.front()
		x, ok := t.m[o.id]
		live := ok && x.gen == o.gen
		if live && x.at+int64(chute.TxWindow) > at && len(t.m) <= chute.MaxTxIDs && t.results <= chute.MaxTxResults {
			break
		}
		if live {
			delete(t.m, o.id)
			t.results -= txResultCount(x.res)
		}
		t.order.pop()
	}
}

// snapshot writes the remembered transactions oldest first:
//
//	txs := n (id at results)*
func (t *txMemo) snapshot(buf []byte) []byte {
	var live []txMemoOrder
	t.order.each(func(o *txMemoOrder) bool {
		if x, ok := t.m[o.id]; ok && x.gen == o.gen {
			live = append(live, *o)
		}
		return true
	})
	buf = binary.AppendUvarint(buf, uint64(len(live)))
	for _, o := range live {
		x := t.m[o.id]
		buf = appendString(buf, o.id)
		buf = binary.AppendVarint(buf, x.at)
		buf = appendTxResults(buf, x.res)
	}
	return buf
}

func (d *decoder) txMemo(t *txMemo) {
	n := d.count(3)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.string()
		at := d.varint()
		res := d.txResults()
		if d.err == nil {
			t.remember(id, at, res)
		}
	}
}

// TxRemembered is the number of transaction IDs remembered (statistics
// and tests).
func (e *Engine) TxRemembered() int { return len(e.txs.m) }
