package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleRecords() []*Record {
	cfg := QueueConfig{MaxMessages: 5, Overflow: OverflowDropOldest, MessageTTL: time.Hour, DeadLetterExpired: true,
		Backoff: Backoff{Kind: BackoffFixed, Delay: time.Second, Jitter: 0.3}}.WithDefaults("q")
	return []*Record{
		{Type: RecCreateQueue, Time: 1, Name: "q", Queue: cfg},
		{Type: RecUpdateQueue, Time: 2, Name: "q", Queue: QueueConfig{}.WithDefaults("q")},
		{Type: RecDeleteQueue, Time: 3, Name: "q"},
		{Type: RecPurgeQueue, Time: 4, Name: "q"},
		{Type: RecCreateTopic, Time: 5, Name: "t", Topic: TopicConfig{DedupWindow: time.Minute}},
		{Type: RecTopicConfig, Time: 5, Name: "t", Topic: TopicConfig{DedupWindow: -1}},
		{Type: RecDeleteTopic, Time: 6, Name: "t"},
		{Type: RecSubscribe, Time: 7, Name: "t", Sub: "s", Queue: cfg, Filter: map[string]string{"a": "1", "b": ""}},
		{Type: RecUnsubscribe, Time: 8, Name: "t", Sub: "s"},
		{Type: RecPublish, Time: 9, Name: "q", FirstSeq: 42, Msgs: []PubMsg{
			{Prio: 7, DeliverAt: 100, ExpireAt: 200, ID: "id", Key: "key", Headers: map[string]string{"h": "v"}, Body: []byte("body")},
			{Body: []byte{}},
		}},
		{Type: RecDeliver, Time: 10, Name: "q", Deadline: 99, Seqs: []uint64{1, 1 << 40}},
		{Type: RecAck, Time: 11, Name: "q", Items: []Item{{Seq: 1, Deliv: 2}}},
		{Type: RecNack, Time: 12, Name: "q", Items: []Item{{Seq: 1, Deliv: 2, Value: 5, Err: "oops"}}},
		{Type: RecExtend, Time: 13, Name: "q", Items: []Item{{Seq: 3, Deliv: 65535, Value: 1e18}}},
		{Type: RecRedrive, Time: 14, Name: "q.dlq", N: -1},
		{Type: RecReleaseLeases, Time: 15},
		{Type: RecBlobs, Time: 16, Msgs: []PubMsg{{Blob: []byte("blob one")}, {Blob: []byte{}}}},
		{Type: RecPublish, Time: 17, Name: "q", FirstSeq: 43, Session: "s-1", SessionSeq: 7, SessionN: 3,
			SessionDups: []SessionDup{{Pos: 1, Seq: 40}}, Msgs: []PubMsg{{ID: "a", Body: []byte("x")}, {Body: []byte("y")}}},
		{Type: RecReturn, Time: 18, Name: "q", Items: []Item{{Seq: 5, Deliv: 3}, {Seq: 6, Deliv: 1}}},
		{Type: RecReturnLeases, Time: 19},
		{Type: RecCreateTopic, Time: 20, Name: "t", Topic: TopicConfig{MaxDedupIDs: 7, SessionWindow: time.Minute}.WithDefaults()},
		{Type: RecCancel, Time: 21, Name: "q", Seqs: []uint64{3, 1 << 40}},
		{Type: RecRedriveSeqs, Time: 22, Name: "q.dlq", Seqs: []uint64{9, 2, 1 << 50}},
		{Type: RecCarry, Time: 23, Name: "shared.dlq", FirstSeq: 77, Msgs: []PubMsg{
			{Prio: 3, ID: "id", Key: "k", Headers: map[string]string{"h": "v"}, Body: []byte("dead")},
			{Body: []byte{}},
		}, Carry: []CarryIn{
			{Pub: 5, Info: DeadInfo{Source: "a", Reason: ReasonMaxDeliveries, Deliveries: 5, LastError: "boom", At: 20, OrigSeq: 9, Key: "k"}},
			{Pub: -1, Info: DeadInfo{Source: "b", Reason: ReasonExpired, At: 21, OrigSeq: 1 << 40}},
		}},
		{Type: RecCarry, Time: 24, Name: "a", FirstSeq: 80, Msgs: []PubMsg{{Key: "k", Body: []byte("back")}},
			Carry: []CarryIn{{Pub: 6, Redriven: true}}},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range sampleRecords() {
		buf := r.Encode([]byte("prefix"))
		got, err := Decode(buf[len("prefix"):])
		if err != nil {
			t.Fatalf("%v: %v", r.Type, err)
		}
		if r.Type == RecBlobs {
			for i := range r.Msgs {
				if !bytes.Equal(r.Msgs[i].Blob, got.Msgs[i].Blob) || r.Msgs[i].BlobOff != got.Msgs[i].BlobOff {
					t.Fatalf("blobs record: blob %d %q at %d, decoded %q at %d", i, r.Msgs[i].Blob, r.Msgs[i].BlobOff, got.Msgs[i].Blob, got.Msgs[i].BlobOff)
				}
			}
			continue
		}
		if r.Type == RecPublish || r.Type == RecCarry {
			for i := range r.Msgs {
				m, g := r.Msgs[i], got.Msgs[i]
				if !bytes.Equal(m.Blob, g.Blob) || int(g.BlobOff)+len("prefix") != int(m.BlobOff)+len("prefix") {
					t.Fatalf("blob %d: %q at %d, decoded %q at %d", i, m.Blob, m.BlobOff, g.Blob, g.BlobOff)
				}
				if !bytes.Equal(buf[len("prefix")+int(g.BlobOff):][:len(g.Blob)], g.Blob) {
					t.Fatalf("blob %d: BlobOff does not locate the blob", i)
				}
				id, key, hdr, body, err := DecodeBlob(g.Blob)
				if err != nil || id != m.ID || key != m.Key || !bytes.Equal(body, m.Body) || len(hdr) != len(m.Headers) {
					t.Fatalf("blob %d decodes to %q %q %v %q, %v", i, id, key, hdr, body, err)
				}
				g.Blob, g.BlobOff, m.Blob, m.BlobOff = nil, 0, nil, 0
				m.Headers, m.Body = nil, nil
				if !reflect.DeepEqual(m, g) {
					t.Fatalf("message %d: %+v, decoded %+v", i, m, g)
				}
			}
			got.Msgs, r.Msgs = nil, nil
		}
		if !reflect.DeepEqual(r, got) {
			t.Fatalf("%v:\n encoded %+v\n decoded %+v", r.Type, r, got)
		}
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	for _, r := range sampleRecords() {
		buf := r.Encode(nil)
		for cut := 0; cut < len(buf); cut++ {
			if _, err := Decode(buf[:cut]); !errors.Is(err, ErrCorruptRecord) {
				t.Fatalf("%v cut at %d of %d: %v", r.Type, cut, len(buf), err)
			}
		}
		if _, err := Decode(append(buf, 0)); !errors.Is(err, ErrCorruptRecord) {
			t.Fatalf("%v with a trailing byte: %v", r.Type, err)
		}
	}
	if _, err := Decode([]byte{recordVersion, 99, 0}); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := Decode([]byte{recordVersion + 1, byte(RecReleaseLeases), 0}); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("a version from the future: %v", err)
	}
	// Version 1 records decode (the format-v1 fixture in broker/testdata
	// replays whole ones); version 1 had no damaged records.
	if r, err := Decode([]byte{1, byte(RecReleaseLeases), 0}); err != nil || r.Type != RecReleaseLeases {
		t.Fatalf("a version 1 record: %v, %v", r, err)
	}
	if _, err := Decode([]byte{1, byte(RecDamaged), 0}); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("a damaged record in version 1: %v", err)
	}
	// Version 2 had no returns.
	if _, err := Decode([]byte{2, byte(RecReturnLeases), 0}); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("a return-leases record in version 2: %v", err)
	}
	// Version 4 had no redrive-seqs.
	if _, err := Decode([]byte{4, byte(RecRedriveSeqs), 0, 0, 0}); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("a redrive-seqs record in version 4: %v", err)
	}
	if r, err := Decode([]byte{4, byte(RecCancel), 0, 0, 0}); err != nil || r.Type != RecCancel {
		t.Fatalf("a version 4 cancel record: %v, %v", r, err)
	}
	// Version 6 had no carried dead letters; they alone are written in
	// version 7, the rest in 6 (what the version before reads).
	if _, err := Decode([]byte{6, byte(RecCarry), 0, 0, 0, 0}); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("a dead-letters record in version 6: %v", err)
	}
	for _, r := range sampleRecords() {
		want := byte(6)
		if r.Type == RecCarry {
			want = 7
		}
		if v := r.Encode(nil)[0]; v != want {
			t.Fatalf("%v written in version %d, want %d", r.Type, v, want)
		}
	}
}

// TestDecodeVersion2: records of version 2 decode — a publish without a
// session field, configs without the de-dup limits (read as no cap and the
// default session window).
func TestDecodeVersion2(t *testing.T) {
	cfg := QueueConfig{}.WithDefaults("q")
	v3 := (&Record{Type: RecCreateQueue, Time: 1, Name: "q", Queue: cfg}).Encode(nil)
	limits := binary.AppendVarint(binary.AppendVarint(nil, cfg.MaxDedupIDs), int64(cfg.SessionWindow))
	// Group "", breaker off, no attributes (one byte each), then the
	// settled window and cap.
	v4Tail := 3 + len(binary.AppendVarint(binary.AppendVarint(nil, int64(cfg.SettledWindow)), cfg.MaxSettled))
	// Version 6: compression (a byte) and its threshold.
	v4Tail += 1 + len(binary.AppendVarint(nil, cfg.CompressMin))
	v2 := append([]byte{2}, v3[1:len(v3)-len(limits)-v4Tail]...)
	r, err := Decode(v2)
	if err != nil {
		t.Fatal(err)
	}
	want := cfg
	want.MaxDedupIDs, want.SessionWindow = None, DefaultSessionWindow
	want.SettledWindow, want.MaxSettled = 0, 0 // the defaults, at use (settled.go)
	if !reflect.DeepEqual(r.Queue, want) {
		t.Fatalf("version 2 config decodes to %+v, want %+v", r.Queue, want)
	}

	pub := &Record{Type: RecPublish, Time: 2, Name: "q", FirstSeq: 9, Msgs: []PubMsg{{Body: []byte("b")}}}
	v3 = pub.Encode(nil)
	// The session field (an empty string: one zero byte) follows FirstSeq.
	at := 4 + len(binary.AppendVarint(nil, pub.Time)) + len(pub.Name) // version, type, time, name length, name, FirstSeq (one byte)
	if v3[at-1] != 9 || v3[at] != 0 {
		t.Fatalf("unexpected layout % x", v3)
	}
	v2 = append([]byte{2}, v3[1:at]...)
	v2 = append(v2, v3[at+1:]...)
	r, err = Decode(v2)
	if err != nil || r.Session != "" || len(r.Msgs) != 1 || r.FirstSeq != 9 {
		t.Fatalf("version 2 publish: %+v, %v", r, err)
	}
}

// FuzzDecode: no input may crash Decode or make it allocate without bound;
// whatever decodes must encode to a record that decodes the same.
func FuzzDecode(f *testing.F) {
	for _, r := range sampleRecords() {
		f.Add(r.Encode(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Decode(r.Encode(nil))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if again.Type != r.Type || again.Name != r.Name || len(again.Msgs) != len(r.Msgs) || len(again.Items) != len(r.Items) {
			t.Fatalf("round trip changed the record: %+v → %+v", r, again)
		}
	})
}
