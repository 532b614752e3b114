package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/chutemq/chute"
)

// RecordType names what a record does. Zero is invalid, so that a zeroed
// buffer never decodes as a record.
type RecordType uint8

const (
	RecCreateQueue   RecordType = 1            // Name, Queue
	RecUpdateQueue   RecordType = 2            // Name, Queue
	RecDeleteQueue   RecordType = 3            // Name
	RecPurgeQueue    RecordType = 4            // Name
	RecCreateTopic   RecordType = 5            // Name, Topic
	RecDeleteTopic   RecordType = 6            // Name
	RecSubscribe     RecordType = 7            // Name (topic), Sub (queue), Queue, Filter
	RecUnsubscribe   RecordType = 8            // Name (topic), Sub (queue)
	RecPublish       RecordType = 9            // Name (queue or topic), FirstSeq, Session…, Msgs
	RecDeliver       RecordType = 10           // Name, Deadline, Seqs
	RecAck           RecordType = 11           // Name, Items{Seq, Deliv}
	RecNack          RecordType = 12           // Name, Items{Seq, Deliv, Value = delay ns (<0: none), Err}
	RecExtend        RecordType = 13           // Name, Items{Seq, Deliv, Value = new deadline}
	RecRedrive       RecordType = 14           // Name (dead-letter queue), N
	RecReleaseLeases RecordType = 15           // (none): every lease ends, as on restart
	RecTopicConfig   RecordType = 16           // Name, Topic
	RecBlobs         RecordType = 17           // Msgs (Blob only): copies of live blobs carried forward by compaction
	RecDamaged       RecordType = 18           // Name, Seqs, Msgs (Blob only): dead-letter damaged messages (salvage.go)
	RecReturn        RecordType = 19           // Name, Items{Seq, Deliv}: leases handed back unstarted, not counted
	RecReturnLeases  RecordType = 20           // (none): every lease ends, not counted (graceful shutdown)
	RecBreaker       RecordType = 21           // Name, N = circuit-breaker state (BreakerClosed, BreakerOpen, BreakerHalfOpen)
	RecPause         RecordType = 22           // Name, N = 1 paused by hand, 0 resumed
	RecCancel        RecordType = 23           // Name, Seqs: ready or delayed messages cancelled
	RecTx            RecordType = 24           // a transaction: its ID and the records it commits (tx.go)
	RecSchedule      RecordType = 25           // create or replace a schedule (schedule.go)
	RecScheduleDel   RecordType = 26           // Name: delete a schedule
	RecSchedulePause RecordType = 27           // Name, N = 1 paused, 0 resumed
	RecRedriveSeqs   RecordType = 28           // Name (dead-letter queue), Seqs: dead letters moved back to their sources, in order
	RecCarry         RecordType = 29           // Name, FirstSeq, Msgs, Carry: dead letters and redriven messages carried in from another shard (carry.go)
	recTypeEnd                  = RecCarry + 1 // one past the last type
)

var recNames = [...]string{
	RecCreateQueue: "create-queue", RecUpdateQueue: "update-queue", RecDeleteQueue: "delete-queue",
	RecPurgeQueue: "purge-queue", RecCreateTopic: "create-topic", RecDeleteTopic: "delete-topic",
	RecSubscribe: "subscribe", RecUnsubscribe: "unsubscribe", RecPublish: "publish",
	RecDeliver: "deliver", RecAck: "ack", RecNack: "nack", RecExtend: "extend",
	RecRedrive: "redrive", RecReleaseLeases: "release-leases", RecTopicConfig: "topic-config",
	RecBlobs: "blobs", RecDamaged: "damaged", RecReturn: "return", RecReturnLeases: "return-leases",
	RecBreaker: "breaker", RecPause: "pause", RecCancel: "cancel", RecTx: "tx",
	RecSchedule: "schedule", RecScheduleDel: "schedule-delete", RecSchedulePause: "schedule-pause",
	RecRedriveSeqs: "redrive-seqs", RecCarry: "carry",
}

func (t RecordType) String() string {
	if t > 0 && t < recTypeEnd {
		return recNames[t]
	}
	return fmt.Sprintf("record(%d)", uint8(t))
}

// Record is one state change. Which fields are used depends on Type (see the
// constants). Records are what the journal stores and what Apply consumes;
// applying the same records in the same order gives the same state.
type Record struct {
	Type     RecordType
	Time     int64 // unix nanoseconds at which the change was made
	Name     string
	Sub      string
	Queue    QueueConfig
	Topic    TopicConfig
	Filter   map[string]string
	FirstSeq uint64
	Msgs     []PubMsg
	Deadline int64
	Seqs     []uint64
	Items    []Item
	N        int64

	// A publish in a producer session (see dedup.go): Session, and the
	// session numbers SessionSeq … SessionSeq+SessionN-1 it stores. The
	// messages of the record take them in order, except the positions in
	// SessionDups, which were duplicates by message ID (left out of Msgs).
	Session     string
	SessionSeq  uint64
	SessionN    uint32
	SessionDups []SessionDup

	// A transaction (RecTx, tx.go): Name is its ID, TxResults the answer
	// to each of its publishes, Parts the publish, ack, nack and return
	// records it commits, applied in order.
	TxResults [][]PubResult
	Parts     []*Record

	// A schedule (RecSchedule, schedule.go): its definition.
	Sched *ScheduleDef

	// Dead letters carried in (RecCarry): each message's publish
	// time and death, Dead[i] for Msgs[i].
	Carry []CarryIn
}

// SessionDup is a position of a session publish (0 = SessionSeq) that was
// a duplicate by message ID, and the sequence of the first copy.
type SessionDup struct {
	Pos uint32
	Seq uint64
}

// Item is one message named by an ack, nack or extend.
type Item struct {
	Seq   uint64
	Deliv uint16
	Value int64 // nack: delay in ns (negative: none, redeliver at once); extend: new deadline
	Err   string
}

// PubMsg is one published message inside a publish record.
type PubMsg struct {
	Prio      uint8
	DeliverAt int64 // unix ns; 0 or ≤ record time means at once
	ExpireAt  int64 // unix ns; 0 means the queue's default TTL
	ID        string
	Key       string
	Headers   map[string]string // encoding only; decoded records leave it nil
	Body      []byte            // encoding only; decoded records leave it nil
	// Zstd says Body is zstd-compressed (the broker compressed it for a
	// queue with compression on): the blob is marked so (blob.go).
	// Encoding only; a decoded record's blob says it itself.
	Zstd bool

	// Blob is the message's stored form (ID, key, headers, body), set by
	// Encode and Decode; BlobOff is its offset within the encoded record.
	Blob    []byte
	BlobOff uint32
}

// recordVersion is the first byte of every encoded record; decoding refuses
// versions it does not know, so a future format change cannot be misread.
// Every change to the record format bumps it, and Decode keeps reading
// every earlier version (a data directory is upgraded by being opened:
// see broker/testdata/format-v1 and docs/format.md).
//
//	1  the first format (types 1–17)
//	2  adds RecDamaged (18); the encodings of 1–17 are unchanged
//	3  adds RecReturn (19) and RecReturnLeases (20); a publish carries a
//	   producer session (its ID, "" for none, then for a session: first
//	   number, count, and the message-ID duplicates); queue and topic
//	   configs end with MaxDedupIDs and SessionWindow (decoded from
//	   earlier versions as None, as those queues had no cap, and the
//	   default window)
//	4  adds RecBreaker (21), RecPause (22), RecCancel (23), RecTx (24),
//	   RecSchedule (25), RecScheduleDel (26) and RecSchedulePause (27);
//	   queue configs end with Group, Breaker, Attributes, SettledWindow
//	   and MaxSettled (decoded from earlier versions as no group, breaker
//	   off, no attributes, and the default settled window and cap);
//	   RecCancel is Name, count, Seqs; RecSchedule is Name and the
//	   definition (target, spec, message: schedule.go), RecScheduleDel
//	   Name, RecSchedulePause Name and N
//	5  adds RecRedriveSeqs (28): Name, count, Seqs, as RecCancel; the
//	   encodings of 1–27 are unchanged
//	6  compression at rest (issue 11): queue configs end with
//	   Compression (a byte) and CompressMin (a varint; decoded from
//	   earlier versions as none and the default, 512); a blob may hold
//	   a zstd-compressed body, marked in its checksum (blob.go). No new
//	   type: the bump is what makes a version-5 broker refuse a journal
//	   whose bodies it could not read
//	7  adds RecCarry (29), which only a sharded cluster's replicas
//	   make (never a broker's journal)
//
// A record is written in the lowest version that has its type, at least
// writeVersion (configurations too): RecCarry in 7, the rest in 6.
// So a cluster node of the version before, in a rolling upgrade, reads
// every configuration a command carries; RecCarry is only made by
// a command that the cluster refuses until every member reads it.
const (
	recordVersion = 7 // the latest this broker reads
	writeVersion  = 6
)

// firstTypeOf is, per version, the first record type it does not have.
var firstTypeOf = [...]RecordType{1: RecDamaged, 2: RecReturn, 3: RecBreaker, 4: RecRedriveSeqs, 5: RecCarry, 6: RecCarry, 7: recTypeEnd}

// versionOf is the version a record of type t is written in.
func versionOf(t RecordType) byte {
	if t >= RecCarry {
		return 7
	}
	return writeVersion
}

// Encode appends the record's binary form to buf. For publish records it
// also sets each message's Blob and BlobOff (relative to the start of the
// record, i.e. len(buf) on entry).
func (r *Record) Encode(buf []byte) []byte {
	start := len(buf)
	buf = append(buf, versionOf(r.Type), byte(r.Type))
	buf = binary.AppendVarint(buf, r.Time)
	switch r.Type {
	case RecCreateQueue, RecUpdateQueue:
		buf = appendString(buf, r.Name)
		buf = appendQueueConfig(buf, &r.Queue)
	case RecDeleteQueue, RecPurgeQueue, RecDeleteTopic:
		buf = appendString(buf, r.Name)
	case RecCreateTopic, RecTopicConfig:
		buf = appendString(buf, r.Name)
		buf = appendTopicConfig(buf, &r.Topic)
	case RecSubscribe:
		buf = appendString(buf, r.Name)
		buf = appendString(buf, r.Sub)
		buf = appendQueueConfig(buf, &r.Queue)
		buf = appendMap(buf, r.Filter)
	case RecUnsubscribe:
		buf = appendString(buf, r.Name)
		buf = appendString(buf, r.Sub)
	case RecPublish:
		buf = appendString(buf, r.Name)
		buf = binary.AppendUvarint(buf, r.FirstSeq)
		buf = r.appendSession(buf)
		buf = binary.AppendUvarint(buf, uint64(len(r.Msgs)))
		for i := range r.Msgs {
			m := &r.Msgs[i]
			buf = append(buf, m.Prio)
			buf = binary.AppendVarint(buf, m.DeliverAt)
			buf = binary.AppendVarint(buf, m.ExpireAt)
			buf = m.appendBlob(buf, start)
		}
	case RecDeliver:
		buf = appendString(buf, r.Name)
		buf = binary.AppendVarint(buf, r.Deadline)
		buf = binary.AppendUvarint(buf, uint64(len(r.Seqs)))
		for _, s := range r.Seqs {
			buf = binary.AppendUvarint(buf, s)
		}
	case RecAck, RecNack, RecExtend, RecReturn:
		buf = appendString(buf, r.Name)
		buf = binary.AppendUvarint(buf, uint64(len(r.Items)))
		for _, it := range r.Items {
			buf = binary.AppendUvarint(buf, it.Seq)
			buf = binary.AppendUvarint(buf, uint64(it.Deliv))
			if r.Type == RecNack || r.Type == RecExtend {
				buf = binary.AppendVarint(buf, it.Value)
			}
			if r.Type == RecNack {
				buf = appendString(buf, it.Err)
			}
		}
	case RecRedrive, RecBreaker, RecPause:
		buf = appendString(buf, r.Name)
		buf = binary.AppendVarint(buf, r.N)
	case RecBlobs:
		buf = binary.AppendUvarint(buf, uint64(len(r.Msgs)))
		for i := range r.Msgs {
			m := &r.Msgs[i]
			buf = binary.AppendUvarint(buf, uint64(len(m.Blob)))
			m.BlobOff = uint32(len(buf) - start)
			buf = append(buf, m.Blob...)
		}
	case RecCancel, RecRedriveSeqs:
		buf = appendString(buf, r.Name)
		buf = binary.AppendUvarint(buf, uint64(len(r.Seqs)))
		for _, s := range r.Seqs {
			buf = binary.AppendUvarint(buf, s)
		}
	case RecDamaged:
		buf = r.appendDamaged(buf, start)
	case RecCarry:
		buf = r.appendCarry(buf, start)
	case RecTx:
		buf = r.appendTx(buf, start)
	case RecSchedule:
		buf = appendString(buf, r.Name)
		buf = appendScheduleDef(buf, r.Sched)
	case RecScheduleDel:
		buf = appendString(buf, r.Name)
	case RecSchedulePause:
		buf = appendString(buf, r.Name)
		buf = binary.AppendVarint(buf, r.N)
	case RecReleaseLeases, RecReturnLeases:
	}
	return buf
}

// appendBlob appends m's blob, its length first: built from its ID, key,
// headers and body (setting Blob) unless it has a Blob and no Body (a
// record decoded, encoded again). BlobOff is set relative to start, the
// record's first byte.
func (m *PubMsg) appendBlob(buf []byte, start int) []byte {
	if m.Blob == nil || m.Body != nil {
		buf = binary.AppendUvarint(buf, uint64(BlobSize(m.ID, m.Key, m.Headers, m.Body)))
		off := len(buf)
		buf = appendBlob(buf, m.ID, m.Key, m.Headers, m.Body, m.Zstd)
		m.Blob = buf[off:len(buf):len(buf)]
		m.BlobOff = uint32(off - start)
		return buf
	}
	buf = binary.AppendUvarint(buf, uint64(len(m.Blob)))
	m.BlobOff = uint32(len(buf) - start)
	return append(buf, m.Blob...)
}

// appendSession encodes a publish's session: its ID ("" for none), then for
// a session its first number, count, and message-ID duplicates.
func (r *Record) appendSession(buf []byte) []byte {
	buf = appendString(buf, r.Session)
	if r.Session == "" {
		return buf
	}
	buf = binary.AppendUvarint(buf, r.SessionSeq)
	buf = binary.AppendUvarint(buf, uint64(r.SessionN))
	buf = binary.AppendUvarint(buf, uint64(len(r.SessionDups)))
	for _, d := range r.SessionDups {
		buf = binary.AppendUvarint(buf, uint64(d.Pos))
		buf = binary.AppendUvarint(buf, d.Seq)
	}
	return buf
}

func (d *decoder) session(r *Record) {
	if d.v < 3 {
		return
	}
	r.Session = d.string()
	if r.Session == "" {
		return
	}
	r.SessionSeq = d.uvarint()
	r.SessionN = uint32(min(d.uvarint(), math.MaxUint32))
	if n := d.count(2); n > 0 {
		r.SessionDups = make([]SessionDup, n)
		for i := range r.SessionDups {
			r.SessionDups[i] = SessionDup{Pos: uint32(min(d.uvarint(), math.MaxUint32)), Seq: d.uvarint()}
		}
	}
}

// Decode parses one encoded record. Strings and blobs alias b, which the
// caller must not reuse while the record is in use. Every length is checked
// against the bytes left before anything is allocated.
func Decode(b []byte) (*Record, error) {
	d := decoder{b: b}
	return d.record()
}

// record decodes one record from d.off to the end of d.b. (A transaction's
// parts are records nested in it, decoded in place so that their blob
// offsets are relative to the start of the transaction: tx.go.)
func (d *decoder) record() (*Record, error) {
	r := &Record{}
	v := d.byte()
	if v == 0 || v > recordVersion {
		return nil, fmt.Errorf("%w: version %d (this broker reads 1..%d)", ErrCorruptRecord, v, recordVersion)
	}
	d.v = v
	r.Type = RecordType(d.byte())
	if r.Type >= firstTypeOf[v] {
		return nil, fmt.Errorf("%w: record type %d in a version %d record", ErrCorruptRecord, r.Type, v)
	}
	r.Time = d.varint()
	switch r.Type {
	case RecCreateQueue, RecUpdateQueue:
		r.Name = d.string()
		d.queueConfig(&r.Queue)
	case RecDeleteQueue, RecPurgeQueue, RecDeleteTopic:
		r.Name = d.string()
	case RecCreateTopic, RecTopicConfig:
		r.Name = d.string()
		d.topicConfig(&r.Topic)
	case RecSubscribe:
		r.Name = d.string()
		r.Sub = d.string()
		d.queueConfig(&r.Queue)
		r.Filter = d.stringMap()
	case RecUnsubscribe:
		r.Name = d.string()
		r.Sub = d.string()
	case RecPublish:
		r.Name = d.string()
		r.FirstSeq = d.uvarint()
		d.session(r)
		n := d.count(4)
		r.Msgs = make([]PubMsg, n)
		for i := range r.Msgs {
			m := &r.Msgs[i]
			m.Prio = d.byte()
			m.DeliverAt = d.varint()
			m.ExpireAt = d.varint()
			d.blob(m)
		}
	case RecDeliver:
		r.Name = d.string()
		r.Deadline = d.varint()
		n := d.count(1)
		r.Seqs = make([]uint64, n)
		for i := range r.Seqs {
			r.Seqs[i] = d.uvarint()
		}
	case RecAck, RecNack, RecExtend, RecReturn:
		r.Name = d.string()
		n := d.count(2)
		r.Items = make([]Item, n)
		for i := range r.Items {
			it := &r.Items[i]
			it.Seq = d.uvarint()
			it.Deliv = uint16(min(d.uvarint(), math.MaxUint16))
			if r.Type == RecNack || r.Type == RecExtend {
				it.Value = d.varint()
			}
			if r.Type == RecNack {
				it.Err = d.string()
			}
		}
	case RecRedrive, RecBreaker, RecPause:
		r.Name = d.string()
		r.N = d.varint()
	case RecBlobs:
		n := d.count(1)
		r.Msgs = make([]PubMsg, n)
		for i := range r.Msgs {
			blen := d.count(1)
			r.Msgs[i].BlobOff = uint32(d.off)
			r.Msgs[i].Blob = d.bytes(blen)
		}
	case RecCancel, RecRedriveSeqs:
		r.Name = d.string()
		n := d.count(1)
		r.Seqs = make([]uint64, n)
		for i := range r.Seqs {
			r.Seqs[i] = d.uvarint()
		}
	case RecDamaged:
		d.damaged(r)
	case RecCarry:
		d.carry(r)
	case RecTx:
		d.tx(r)
	case RecSchedule:
		r.Name = d.string()
		r.Sched = d.scheduleDef()
	case RecScheduleDel:
		r.Name = d.string()
	case RecSchedulePause:
		r.Name = d.string()
		r.N = d.varint()
	case RecReleaseLeases, RecReturnLeases:
	default:
		d.fail("unknown record type %d", r.Type)
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.off)
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

// blob reads what PubMsg.appendBlob wrote into m (its ID and key from
// the blob; Blob aliases the record).
func (d *decoder) blob(m *PubMsg) {
	blen := d.count(1)
	m.BlobOff = uint32(d.off)
	m.Blob = d.bytes(blen)
	if d.err == nil {
		var err error
		if m.ID, m.Key, err = BlobIDKey(m.Blob); err != nil {
			d.fail("blob: %v", err)
		}
	}
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendMap(buf []byte, m map[string]string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(m)))
	for _, k := range sortedKeys(m) {
		buf = appendString(buf, k)
		buf = appendString(buf, m[k])
	}
	return buf
}

func appendQueueConfig(buf []byte, c *QueueConfig) []byte {
	buf = binary.AppendVarint(buf, int64(c.VisibilityTimeout))
	buf = binary.AppendVarint(buf, int64(c.MaxDeliveries))
	buf = append(buf, byte(c.Backoff.Kind))
	buf = binary.AppendVarint(buf, int64(c.Backoff.Delay))
	buf = binary.AppendVarint(buf, int64(c.Backoff.Max))
	buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(c.Backoff.Jitter))
	buf = appendString(buf, c.DeadLetterQueue)
	var flags byte
	if c.NoDeadLetter {
		flags |= 1
	}
	if c.DeadLetterExpired {
		flags |= 2
	}
	buf = append(buf, flags, byte(c.Overflow))
	buf = binary.AppendVarint(buf, c.MaxMessages)
	buf = binary.AppendVarint(buf, c.MaxBytes)
	buf = binary.AppendVarint(buf, int64(c.MessageTTL))
	buf = binary.AppendVarint(buf, int64(c.DedupWindow))
	buf = binary.AppendVarint(buf, c.MaxDedupIDs)
	buf = binary.AppendVarint(buf, int64(c.SessionWindow))
	// version 4
	buf = appendString(buf, c.Group)
	b := &c.Breaker
	if !b.Enabled {
		buf = append(buf, 0)
	} else {
		buf = append(buf, 1)
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(b.Threshold))
		buf = binary.AppendVarint(buf, int64(b.Window))
		buf = binary.AppendVarint(buf, int64(b.MinDeliveries))
		buf = binary.AppendVarint(buf, int64(b.Cooldown))
		buf = binary.AppendVarint(buf, int64(b.Probes))
	}
	buf = appendMap(buf, c.Attributes)
	buf = binary.AppendVarint(buf, int64(c.SettledWindow))
	buf = binary.AppendVarint(buf, c.MaxSettled)
	// version 6
	buf = append(buf, byte(c.Compression))
	return binary.AppendVarint(buf, c.CompressMin)
}

func appendTopicConfig(buf []byte, c *TopicConfig) []byte {
	buf = binary.AppendVarint(buf, int64(c.DedupWindow))
	buf = binary.AppendVarint(buf, c.MaxDedupIDs)
	buf = binary.AppendVarint(buf, int64(c.SessionWindow))
	return appendString(buf, c.Group) // version 4
}

// decoder reads the encoding above; the first error sticks and every later
// read returns a zero value, so callers check d.err once at the end.
type decoder struct {
	b   []byte
	off int
	err error
	v   byte // the record format being read (a snapshot sets the one its configs are in)
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrCorruptRecord, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.b) {
		d.fail("short record")
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

// count reads a length and checks that that many items of at least minSize
// bytes each could still follow.
func (d *decoder) count(minSize int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(len(d.b)-d.off)/uint64(minSize) {
		d.fail("count %d exceeds the %d bytes left", v, len(d.b)-d.off)
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	b := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

func (d *decoder) string() string { return string(d.bytes(d.count(1))) }

func (d *decoder) stringMap() map[string]string {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.string()
		m[k] = d.string()
	}
	return m
}

func (d *decoder) queueConfig(c *QueueConfig) {
	// Before version 6 bodies were stored as published: no compression,
	// and the default threshold, as WithDefaults would have filled it in
	// (a reported config never shows a 0 that means "the default").
	c.Compression, c.CompressMin = chute.CompressionNone, chute.DefaultCompressMin
	c.VisibilityTimeout = time.Duration(d.varint())
	c.MaxDeliveries = int(d.varint())
	c.Backoff.Kind = BackoffKind(d.byte())
	c.Backoff.Delay = time.Duration(d.varint())
	c.Backoff.Max = time.Duration(d.varint())
	c.Backoff.Jitter = d.float64()
	c.DeadLetterQueue = d.string()
	flags := d.byte()
	c.NoDeadLetter = flags&1 != 0
	c.DeadLetterExpired = flags&2 != 0
	c.Overflow = Overflow(d.byte())
	c.MaxMessages = d.varint()
	c.MaxBytes = d.varint()
	c.MessageTTL = time.Duration(d.varint())
	c.DedupWindow = time.Duration(d.varint())
	c.MaxDedupIDs, c.SessionWindow = d.dedupLimits()
	if d.v < 4 {
		return
	}
	c.Group = d.string()
	if d.byte() != 0 {
		b := &c.Breaker
		b.Enabled = true
		b.Threshold = d.float64()
		b.Window = time.Duration(d.varint())
		b.MinDeliveries = int(d.varint())
		b.Cooldown = time.Duration(d.varint())
		b.Probes = int(d.varint())
	}
	c.Attributes = d.stringMap()
	c.SettledWindow = time.Duration(d.varint())
	c.MaxSettled = d.varint()
	if d.v < 6 {
		return
	}
	c.Compression = chute.Compression(d.byte())
	c.CompressMin = d.varint()
}

func (d *decoder) float64() float64 {
	if d.err != nil || len(d.b)-d.off < 8 {
		d.fail("short float")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.off:]))
	d.off += 8
	return v
}

func (d *decoder) topicConfig(c *TopicConfig) {
	c.DedupWindow = time.Duration(d.varint())
	c.MaxDedupIDs, c.SessionWindow = d.dedupLimits()
	if d.v >= 4 {
		c.Group = d.string()
	}
}

// dedupLimits reads the fields version 3 added to queue and topic configs.
// Before, message IDs had no cap (None) and sessions did not exist (the
// default window).
func (d *decoder) dedupLimits() (int64, time.Duration) {
	if d.v < 3 {
		return None, DefaultSessionWindow
	}
	return d.varint(), time.Duration(d.varint())
}
