package wire

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
)

// genTime draws the zero time or a time around now, before 1970 too (a
// negative second count), with any nanoseconds.
func genTime(t *rapid.T, label string) time.Time {
	if rapid.Bool().Draw(t, label+" zero") {
		return time.Time{}
	}
	sec := rapid.Int64Range(-1<<40, 1<<40).Draw(t, label+" s")
	return time.Unix(sec, rapid.Int64Range(0, 999_999_999).Draw(t, label+" ns"))
}

func genDelivery(t *rapid.T) chute.Delivery {
	str := rapid.OneOf(rapid.Just(""), rapid.StringN(1, 20, 300))
	d := chute.Delivery{
		Queue: str.Draw(t, "queue"), Seq: rapid.Uint64().Draw(t, "seq"), Receipt: str.Draw(t, "receipt"),
		Body:     rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "body"),
		Priority: rapid.IntRange(-3, 9).Draw(t, "priority"), ID: str.Draw(t, "id"), Key: str.Draw(t, "key"),
		Published: genTime(t, "published"), Deliveries: rapid.IntRange(-1, 1<<20).Draw(t, "deliveries"),
		LeaseDeadline: genTime(t, "deadline"), LastError: str.Draw(t, "error"),
	}
	if rapid.Bool().Draw(t, "headers") {
		d.Headers = rapid.MapOfN(rapid.String(), str, 0, 6).Draw(t, "header map")
	}
	if rapid.Bool().Draw(t, "dead") {
		d.DeadLetter = &chute.DeadLetterInfo{Source: str.Draw(t, "source"), Reason: str.Draw(t, "reason"),
			Deliveries: rapid.IntRange(-1, 100).Draw(t, "dl deliveries"), LastError: str.Draw(t, "dl error"),
			Died: genTime(t, "died"), SourceSeq: rapid.Uint64().Draw(t, "source seq")}
	}
	return d
}

// TestAppendDeliveriesMatchesProto: for any deliveries, AppendDeliveries
// writes the bytes proto.Marshal (deterministic: map keys in order) writes
// for the ConsumeResponse of DeliveriesToPB, and they decode back to the
// same deliveries.
func TestAppendDeliveriesMatchesProto(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ds := rapid.SliceOfN(rapid.Custom(genDelivery), 0, 5).Draw(t, "deliveries")
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&chutev1.ConsumeResponse{Deliveries: DeliveriesToPB(ds)})
		if err != nil {
			t.Fatal(err)
		}
		prefix := []byte{0xAA}
		got := AppendDeliveries(bytes.Clone(prefix), 1, ds)
		if !bytes.Equal(got[:1], prefix) {
			t.Fatalf("the prefix was overwritten")
		}
		if !bytes.Equal(got[1:], want) {
			t.Fatalf("AppendDeliveries\n %x\nproto.Marshal\n %x", got[1:], want)
		}
		var back chutev1.ConsumeResponse
		if err := proto.Unmarshal(got[1:], &back); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&back, &chutev1.ConsumeResponse{Deliveries: DeliveriesToPB(ds)}) {
			t.Fatalf("decoded differently")
		}
	})
}

// benchBatch is a Consume batch of 512 deliveries of 1 KiB.
func benchBatch() []chute.Delivery {
	ds := make([]chute.Delivery, 512)
	now := time.Now()
	for i := range ds {
		ds[i] = chute.Delivery{Queue: "orders", Seq: uint64(1000 + i), Receipt: "1.3e8.1", Body: make([]byte, 1024),
			ID: "01J8Z3X4Y5", Published: now, Deliveries: 1, LeaseDeadline: now.Add(30 * time.Second)}
	}
	return ds
}

// BenchmarkEncodeDeliveries: a Consume batch of 512 deliveries of 1 KiB,
// through protobuf messages (DeliveriesToPB, then proto.Marshal) and by
// AppendDeliveries.
func BenchmarkEncodeDeliveries(b *testing.B) {
	ds := benchBatch()
	b.Run("proto", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			var err error
			buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], &chutev1.ConsumeResponse{Deliveries: DeliveriesToPB(ds)})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = AppendDeliveries(buf[:0], protowire.Number(1), ds)
		}
	})
}

// decodeAsProto is what the client made of a ConsumeResponse before
// ProtoCodec: proto.Unmarshal, then DeliveriesFromPB (FrameOf).
func decodeAsProto(raw []byte) (*ConsumeFrame, error) {
	var r chutev1.ConsumeResponse
	if err := proto.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	return FrameOf(&r), nil
}

// decodeWithCodec is the client's way now: ProtoCodec into a ConsumeFrame.
func decodeWithCodec(raw []byte) (*ConsumeFrame, error) {
	buf := bytes.Clone(raw)
	f := new(ConsumeFrame)
	f.Deliveries = []chute.Delivery{{Queue: "left over"}} // what a reused frame held is gone
	if err := (ProtoCodec{}).Unmarshal(buf, f); err != nil {
		return nil, err
	}
	clear(buf) // connect reuses its buffer: nothing may point into it
	return f, nil
}

// decodeBoth decodes raw both ways; either failing fails the test.
func decodeBoth(t interface{ Fatal(...any) }, raw []byte) (got, want *ConsumeFrame) {
	want, err := decodeAsProto(raw)
	if err != nil {
		t.Fatal(err)
	}
	got, err = decodeWithCodec(raw)
	if err != nil {
		t.Fatal(err)
	}
	return got, want
}

func sameFrames(t *rapid.T, got, want *ConsumeFrame) {
	if !reflect.DeepEqual(got.Deliveries, want.Deliveries) {
		t.Fatalf("deliveries\n %+v\nwant\n %+v", got.Deliveries, want.Deliveries)
	}
	if !proto.Equal(got.Settled, want.Settled) {
		t.Fatalf("settled %v, want %v", got.Settled, want.Settled)
	}
}

// TestConsumeFrameMatchesProto: for any deliveries and settlement answer,
// sent as the server sends them (AppendDeliveries), the client's codec
// gives what proto.Unmarshal and DeliveriesFromPB give; so it does for any
// mutation of those bytes that both accept (fields twice, wrong wire
// types, unknown fields), and a mutation never panics.
func TestConsumeFrameMatchesProto(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ds := rapid.SliceOfN(rapid.Custom(genDelivery), 0, 4).Draw(t, "deliveries")
		raw := AppendDeliveries(nil, 1, ds)
		if rapid.Bool().Draw(t, "settled") {
			st := &chutev1.SettleResult{Id: rapid.Uint64().Draw(t, "id"),
				Failed: []*chutev1.ReceiptFailure{{Index: rapid.Int32().Draw(t, "index")}}}
			sb, err := proto.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			raw = protowire.AppendTag(raw, 2, protowire.BytesType)
			raw = protowire.AppendBytes(raw, sb)
		}
		got, want := decodeBoth(t, raw)
		sameFrames(t, got, want)

		if len(raw) == 0 {
			return
		}
		mut := bytes.Clone(raw)
		for range rapid.IntRange(1, 4).Draw(t, "mutations") {
			i := rapid.IntRange(0, len(mut)-1).Draw(t, "at")
			mut[i] = rapid.Byte().Draw(t, "byte")
		}
		want, werr := decodeAsProto(mut)
		got, gerr := decodeWithCodec(mut)
		if werr == nil && gerr == nil {
			sameFrames(t, got, want)
		}
	})
}

// TestReadConsumeFrameMerges: a field that comes twice is merged as
// protobuf merges it — a timestamp field by field, headers entry by entry,
// a scalar by the last value — and unknown fields are skipped.
func TestReadConsumeFrameMerges(t *testing.T) {
	var d []byte
	d = protowire.AppendTag(d, 9, protowire.BytesType) // published {5 s, 7 ns}
	d = protowire.AppendBytes(d, []byte{0x08, 5, 0x10, 7})
	d = protowire.AppendTag(d, 9, protowire.BytesType) // published {9 s}: nanos stay 7
	d = protowire.AppendBytes(d, []byte{0x08, 9})
	d = protowire.AppendTag(d, 5, protowire.BytesType) // headers a=1
	d = protowire.AppendBytes(d, []byte{0x0a, 1, 'a', 0x12, 1, '1'})
	d = protowire.AppendTag(d, 5, protowire.BytesType) // headers b= (no value)
	d = protowire.AppendBytes(d, []byte{0x0a, 1, 'b'})
	d = protowire.AppendTag(d, 2, protowire.VarintType) // seq 3, then 4
	d = protowire.AppendVarint(d, 3)
	d = protowire.AppendTag(d, 2, protowire.VarintType)
	d = protowire.AppendVarint(d, 4)
	d = protowire.AppendTag(d, 99, protowire.Fixed64Type) // unknown
	d = protowire.AppendFixed64(d, 1)
	d = protowire.AppendTag(d, 6, protowire.Fixed32Type) // priority with a wrong wire type: unknown
	d = protowire.AppendFixed32(d, 7)
	raw := protowire.AppendTag(nil, 1, protowire.BytesType)
	raw = protowire.AppendBytes(raw, d)
	got, want := decodeBoth(t, raw)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got.Deliveries, want.Deliveries)
	}
	w := want.Deliveries[0]
	if w.Published != time.Unix(9, 7).UTC() || w.Seq != 4 || w.Priority != 0 || len(w.Headers) != 2 || w.Headers["b"] != "" {
		t.Fatalf("protobuf itself decoded %+v: the test's premise is wrong", w)
	}
}

// BenchmarkDecodeDeliveries: the client's side of BenchmarkEncodeDeliveries.
func BenchmarkDecodeDeliveries(b *testing.B) {
	ds := benchBatch()
	raw := AppendDeliveries(nil, 1, ds)
	b.Run("proto", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeAsProto(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("codec", func(b *testing.B) {
		f := new(ConsumeFrame)
		for b.Loop() {
			if err := (ProtoCodec{}).Unmarshal(raw, f); err != nil {
				b.Fatal(err)
			}
		}
	})
}
