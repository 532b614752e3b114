package wire

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
)

// ConsumeDeliveries is the ConsumeResponse that carries ds, with the
// deliveries already encoded (AppendDeliveries) as its raw fields: the
// binary codec writes them as they are, the same bytes as its Deliveries
// field would give. A codec that is not binary must read them back into
// the message first (KnownFields).
func ConsumeDeliveries(ds []chute.Delivery) *chutev1.ConsumeResponse {
	size := 0
	for i := range ds {
		size += len(ds[i].Body) + len(ds[i].Queue) + len(ds[i].Receipt) + len(ds[i].ID) + 64
	}
	r := &chutev1.ConsumeResponse{}
	r.ProtoReflect().SetUnknown(AppendDeliveries(make([]byte, 0, size), 1, ds))
	return r
}

// KnownFields returns m with what its raw (unknown) fields hold of its
// known ones decoded into them — a copy, if there are any — for a codec
// that writes only known fields (JSON).
func KnownFields(m proto.Message) (proto.Message, error) {
	raw := m.ProtoReflect().GetUnknown()
	if len(raw) == 0 {
		return m, nil
	}
	c := proto.Clone(m)
	c.ProtoReflect().SetUnknown(nil)
	if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(raw, c); err != nil {
		return nil, err
	}
	return c, nil
}

// AppendDeliveries appends ds to b as repeated message field num, encoded
// as proto.Marshal encodes the chutev1.Delivery messages DeliveriesToPB
// makes of them (field by field in number order, zero values left out),
// without making them: a delivery stream sends a few hundred thousand
// deliveries a second, and the messages, their two timestamps each and
// the reflection that encodes them were a tenth of the server's CPU while
// it drained a backlog (issue 11, W6). Map entries go in key order.
// TestAppendDeliveriesMatchesProto holds it to proto.Marshal.
func AppendDeliveries(b []byte, num protowire.Number, ds []chute.Delivery) []byte {
	var keys []string
	for i := range ds {
		d := &ds[i]
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(deliverySize(d)))
		b = appendString(b, 1, d.Queue)
		b = appendUint(b, 2, d.Seq)
		b = appendString(b, 3, d.Receipt)
		if len(d.Body) > 0 {
			b = protowire.AppendTag(b, 4, protowire.BytesType)
			b = protowire.AppendBytes(b, d.Body)
		}
		if len(d.Headers) > 0 {
			keys = sortedKeys(keys[:0], d.Headers)
			for _, k := range keys {
				v := d.Headers[k]
				b = protowire.AppendTag(b, 5, protowire.BytesType)
				b = protowire.AppendVarint(b, uint64(entrySize(k, v)))
				b = protowire.AppendTag(b, 1, protowire.BytesType)
				b = protowire.AppendString(b, k)
				b = protowire.AppendTag(b, 2, protowire.BytesType)
				b = protowire.AppendString(b, v)
			}
		}
		b = appendInt32(b, 6, int32(d.Priority))
		b = appendString(b, 7, d.ID)
		b = appendString(b, 8, d.Key)
		b = appendTime(b, 9, d.Published)
		b = appendInt32(b, 10, int32(d.Deliveries))
		b = appendTime(b, 11, d.LeaseDeadline)
		b = appendString(b, 12, d.LastError)
		if dl := d.DeadLetter; dl != nil {
			b = protowire.AppendTag(b, 13, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(deadLetterSize(dl)))
			b = appendString(b, 1, dl.Source)
			b = appendString(b, 2, dl.Reason)
			b = appendInt32(b, 3, int32(dl.Deliveries))
			b = appendString(b, 4, dl.LastError)
			b = appendTime(b, 5, dl.Died)
			b = appendUint(b, 6, dl.SourceSeq)
		}
	}
	return b
}

func deliverySize(d *chute.Delivery) int {
	n := stringSize(d.Queue) + uintSize(d.Seq) + stringSize(d.Receipt)
	if len(d.Body) > 0 {
		n += 1 + protowire.SizeBytes(len(d.Body))
	}
	for k, v := range d.Headers {
		n += 1 + protowire.SizeBytes(entrySize(k, v))
	}
	n += int32Size(int32(d.Priority)) + stringSize(d.ID) + stringSize(d.Key) + timeSize(d.Published) +
		int32Size(int32(d.Deliveries)) + timeSize(d.LeaseDeadline) + stringSize(d.LastError)
	if dl := d.DeadLetter; dl != nil {
		n += 1 + protowire.SizeBytes(deadLetterSize(dl))
	}
	return n
}

func deadLetterSize(dl *chute.DeadLetterInfo) int {
	return stringSize(dl.Source) + stringSize(dl.Reason) + int32Size(int32(dl.Deliveries)) +
		stringSize(dl.LastError) + timeSize(dl.Died) + uintSize(dl.SourceSeq)
}

// entrySize is a map entry's: key and value are always written.
func entrySize(k, v string) int { return 2 + protowire.SizeBytes(len(k)) + protowire.SizeBytes(len(v)) }

func sortedKeys(keys []string, m map[string]string) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// The helpers leave a zero value out, as proto3 does. Every field number
// here is below 16: its tag is one byte (the 1 in each size).

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func stringSize(s string) int {
	if s == "" {
		return 0
	}
	return 1 + protowire.SizeBytes(len(s))
}

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func uintSize(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(v)
}

// An int32 is encoded as its sign extension to 64 bits.
func appendInt32(b []byte, num protowire.Number, v int32) []byte {
	return appendUint(b, num, uint64(int64(v)))
}

func int32Size(v int32) int { return uintSize(uint64(int64(v))) }

// appendTime writes a google.protobuf.Timestamp, or nothing for the zero
// time (ts makes nil of it).
func appendTime(b []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	sec, nsec := t.Unix(), int32(t.Nanosecond())
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(uintSize(uint64(sec))+int32Size(nsec)))
	b = appendUint(b, 1, uint64(sec))
	return appendInt32(b, 2, nsec)
}

func timeSize(t time.Time) int {
	if t.IsZero() {
		return 0
	}
	return 1 + protowire.SizeBytes(uintSize(uint64(t.Unix()))+int32Size(int32(t.Nanosecond())))
}

// ConsumeFrame is a ConsumeResponse as the client reads it: its
// deliveries decoded straight into chute.Delivery values (ProtoCodec), or
// converted from the protobuf messages (FrameOf) for a codec that only
// knows those (JSON).
type ConsumeFrame struct {
	Deliveries []chute.Delivery
	Settled    *chutev1.SettleResult
}

// FrameOf converts a ConsumeResponse decoded as usual.
func FrameOf(r *chutev1.ConsumeResponse) *ConsumeFrame {
	f := &ConsumeFrame{Settled: r.GetSettled()}
	if pds := r.GetDeliveries(); len(pds) > 0 {
		f.Deliveries = DeliveriesFromPB(pds)
	}
	return f
}

// ProtoCodec is connect's binary protobuf codec ("proto") for the client,
// which also decodes a ConsumeResponse into a *ConsumeFrame without the
// protobuf messages: those, their timestamps and the reflection that
// fills them were a third of a consumer's CPU while it drained a backlog
// (issue 11, W6). What it makes shares no memory with connect's buffer.
type ProtoCodec struct{}

// Name implements connect.Codec.
func (ProtoCodec) Name() string { return "proto" }

// Marshal implements connect.Codec.
func (c ProtoCodec) Marshal(m any) ([]byte, error) { return c.MarshalAppend(nil, m) }

// MarshalAppend is what connect uses to encode into its pooled buffers.
func (ProtoCodec) MarshalAppend(b []byte, m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", m)
	}
	return proto.MarshalOptions{}.MarshalAppend(b, pm)
}

// Unmarshal implements connect.Codec.
func (ProtoCodec) Unmarshal(data []byte, m any) error {
	if f, ok := m.(*ConsumeFrame); ok {
		*f = ConsumeFrame{}
		return readConsumeFrame(data, f)
	}
	pm, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a protobuf message", m)
	}
	return proto.Unmarshal(data, pm)
}

// readConsumeFrame decodes a ConsumeResponse into f, as proto.Unmarshal
// then FrameOf would; a malformed one is an error, as proto.Unmarshal's.
func readConsumeFrame(b []byte, f *ConsumeFrame) error {
	if n := countDeliveries(b); n > 0 {
		f.Deliveries = make([]chute.Delivery, 0, n)
	}
	return readFields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			d, err := readDelivery(v, f.Deliveries)
			f.Deliveries = append(f.Deliveries, d)
			return err
		case 2:
			if f.Settled == nil {
				f.Settled = &chutev1.SettleResult{}
			}
			return (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, f.Settled)
		}
		return nil
	})
}

// countDeliveries counts the deliveries in a ConsumeResponse, stopping
// at anything malformed (readConsumeFrame reports it).
func countDeliveries(b []byte) int {
	count := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			break
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			count++
		}
	}
	return count
}

func malformed(n int) error {
	return fmt.Errorf("malformed ConsumeResponse: %w", protowire.ParseError(n))
}

// readDelivery decodes one Delivery message. A field with an unexpected
// wire type is skipped, as protobuf skips it (an unknown field). The
// queue's name is shared with the delivery before it when equal (a batch
// is of one queue).
func readDelivery(b []byte, before []chute.Delivery) (chute.Delivery, error) {
	var d chute.Delivery
	err := readFields(b, func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		if typ == protowire.VarintType {
			switch num {
			case 2:
				d.Seq = u
			case 6:
				d.Priority = int(int32(u))
			case 10:
				d.Deliveries = int(int32(u))
			}
			return nil
		}
		var err error
		switch num {
		case 1:
			if k := len(before); k > 0 && before[k-1].Queue == string(v) {
				d.Queue = before[k-1].Queue
			} else {
				d.Queue = string(v)
			}
		case 3:
			d.Receipt = string(v)
		case 4:
			d.Body = bytes.Clone(v)
		case 5:
			if d.Headers == nil {
				d.Headers = map[string]string{}
			}
			err = readEntry(v, d.Headers)
		case 7:
			d.ID = string(v)
		case 8:
			d.Key = string(v)
		case 9:
			d.Published, err = readTime(v, d.Published)
		case 11:
			d.LeaseDeadline, err = readTime(v, d.LeaseDeadline)
		case 12:
			d.LastError = string(v)
		case 13:
			if d.DeadLetter == nil {
				d.DeadLetter = &chute.DeadLetterInfo{}
			}
			err = readDeadLetter(v, d.DeadLetter)
		}
		return err
	})
	return d, err
}

// readEntry decodes a map<string, string> entry into m (a missing key or
// value is "").
func readEntry(b []byte, m map[string]string) error {
	var k, v string
	err := readFields(b, func(num protowire.Number, typ protowire.Type, s []byte, _ uint64) error {
		switch {
		case typ == protowire.BytesType && num == 1:
			k = string(s)
		case typ == protowire.BytesType && num == 2:
			v = string(s)
		}
		return nil
	})
	m[k] = v
	return err
}

// readTime decodes a google.protobuf.Timestamp as Timestamp.AsTime does,
// merged into prev (a field that comes twice is merged, as protobuf does).
func readTime(b []byte, prev time.Time) (time.Time, error) {
	var sec, nsec int64
	if !prev.IsZero() {
		sec, nsec = prev.Unix(), int64(prev.Nanosecond())
	}
	err := readFields(b, func(num protowire.Number, typ protowire.Type, _ []byte, u uint64) error {
		switch {
		case typ == protowire.VarintType && num == 1:
			sec = int64(u)
		case typ == protowire.VarintType && num == 2:
			nsec = int64(int32(u))
		}
		return nil
	})
	return time.Unix(sec, nsec).UTC(), err
}

func readDeadLetter(b []byte, dl *chute.DeadLetterInfo) error {
	return readFields(b, func(num protowire.Number, typ protowire.Type, s []byte, u uint64) error {
		var err error
		switch {
		case typ == protowire.BytesType && num == 1:
			dl.Source = string(s)
		case typ == protowire.BytesType && num == 2:
			dl.Reason = string(s)
		case typ == protowire.VarintType && num == 3:
			dl.Deliveries = int(int32(u))
		case typ == protowire.BytesType && num == 4:
			dl.LastError = string(s)
		case typ == protowire.BytesType && num == 5:
			dl.Died, err = readTime(s, dl.Died)
		case typ == protowire.VarintType && num == 6:
			dl.SourceSeq = u
		}
		return err
	})
}

// readFields calls fn with each field of a message: its bytes for a
// length-delimited one, its value for a varint; fields of other wire
// types are skipped. It stops at fn's first error.
func readFields(b []byte, fn func(num protowire.Number, typ protowire.Type, s []byte, u uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed(n)
		}
		b = b[n:]
		var (
			s   []byte
			u   uint64
			err error
		)
		switch typ {
		case protowire.BytesType:
			s, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			u, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return malformed(n)
		}
		b = b[n:]
		if typ == protowire.BytesType || typ == protowire.VarintType {
			err = fn(num, typ, s, u)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
