package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"reflect"
	"testing"

	"github.com/chutemq/chute"
)

// TestBlobZstdMark: a blob marked as holding a compressed body reads back
// with the mark and everything else unchanged, is the same size as an
// unmarked one, and damage to either form is still caught.
func TestBlobZstdMark(t *testing.T) {
	hdr := map[string]string{"a": "1", "content-type": "json"}
	body := []byte("not really zstd, the blob does not care")
	plain := AppendBlob(nil, "id-1", "k", hdr, body)
	marked := AppendBlobZstd(nil, "id-1", "k", hdr, body)
	if len(plain) != len(marked) || len(plain) != BlobSize("id-1", "k", hdr, body) {
		t.Fatalf("sizes %d, %d, BlobSize %d", len(plain), len(marked), BlobSize("id-1", "k", hdr, body))
	}
	if !bytes.Equal(plain[4:], marked[4:]) {
		t.Fatal("the mark changed more than the checksum field")
	}
	for _, c := range []struct {
		blob []byte
		zstd bool
	}{{plain, false}, {marked, true}} {
		p, err := ParseBlob(c.blob)
		if err != nil || p.Zstd != c.zstd || p.ID != "id-1" || p.Key != "k" || !maps.Equal(p.Headers, hdr) || !bytes.Equal(p.Body, body) {
			t.Fatalf("ParseBlob: %+v, %v; want zstd %v", p, err, c.zstd)
		}
		// DecodeBlob (integrity checks, journal verify) takes both forms.
		if _, _, _, b, err := DecodeBlob(c.blob); err != nil || !bytes.Equal(b, body) {
			t.Fatalf("DecodeBlob: %q, %v", b, err)
		}
		for i := range c.blob {
			bad := bytes.Clone(c.blob)
			bad[i] ^= 0x10
			if _, err := ParseBlob(bad); !errors.Is(err, ErrBlobChecksum) {
				t.Fatalf("byte %d flipped (zstd %v): %v, want ErrBlobChecksum", i, c.zstd, err)
			}
		}
	}
}

// TestEncodeZstdMessage: a publish record's message with Zstd set stores a
// marked blob, and the record decodes with the blob as it was stored.
func TestEncodeZstdMessage(t *testing.T) {
	r := &Record{Type: RecPublish, Time: 5, Name: "q", FirstSeq: 1, Msgs: []PubMsg{
		{ID: "a", Body: []byte("plain")}, {ID: "b", Body: []byte("frame"), Zstd: true}}}
	buf := r.Encode(nil)
	d, err := Decode(buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, true} {
		p, err := ParseBlob(d.Msgs[i].Blob)
		if err != nil || p.Zstd != want || p.ID != r.Msgs[i].ID || !bytes.Equal(p.Body, r.Msgs[i].Body) {
			t.Fatalf("message %d: %+v, %v; want zstd %v", i, p, err, want)
		}
		if !bytes.Equal(d.Msgs[i].Blob, r.Msgs[i].Blob) {
			t.Fatalf("message %d: decoded blob differs from the encoded one", i)
		}
	}
}

// TestQueueConfigCompressionVersions: version 6 carries a queue's
// compression settings; a version-5 config (none) decodes as no
// compression with the default threshold, as WithDefaults fills it in.
func TestQueueConfigCompressionVersions(t *testing.T) {
	cfg := QueueConfig{Compression: chute.CompressionZstd, CompressMin: None}.WithDefaults("q")
	v6 := (&Record{Type: RecCreateQueue, Time: 1, Name: "q", Queue: cfg}).Encode(nil)
	r, err := Decode(v6)
	if err != nil || !reflect.DeepEqual(r.Queue, cfg) {
		t.Fatalf("version 6: %+v, %v; want %+v", r.Queue, err, cfg)
	}
	tail := 1 + len(binary.AppendVarint(nil, cfg.CompressMin))
	v5 := append([]byte{5}, v6[1:len(v6)-tail]...)
	r, err = Decode(v5)
	if err != nil {
		t.Fatal(err)
	}
	want := cfg
	want.Compression, want.CompressMin = chute.CompressionNone, chute.DefaultCompressMin
	if !reflect.DeepEqual(r.Queue, want) {
		t.Fatalf("version 5 config decodes to %+v, want %+v", r.Queue, want)
	}
	// Version 5 records are the last an older broker reads: a version-6
	// one is refused whole, never misread.
	if v6[0] != writeVersion || writeVersion != 6 {
		t.Fatalf("record version %d", v6[0])
	}
}

// TestSnapshotKeepsCompression: a checkpoint keeps the settings (snapshot
// version 5 holds configs as record version 6).
func TestSnapshotKeepsCompression(t *testing.T) {
	h := newHarness(t)
	cfg := QueueConfig{Compression: chute.CompressionZstd, CompressMin: 4096}.WithDefaults("z")
	h.mustCreateQueue("z", cfg)
	var snap []byte
	for _, c := range h.e.Snapshot(1 << 10) {
		snap = append(snap, c...)
	}
	if snap[0] != 5 {
		t.Fatalf("snapshot version %d, want 5", snap[0])
	}
	e, err := Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.queues["z"].cfg; !reflect.DeepEqual(got, cfg) {
		t.Fatalf("restored config %+v, want %+v", got, cfg)
	}
}

// TestCompressMinTarget: a queue's own setting; a topic compresses if any
// subscription does, from the smallest threshold.
func TestCompressMinTarget(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("plain", QueueConfig{}.WithDefaults("plain"))
	h.mustCreateQueue("z", QueueConfig{Compression: chute.CompressionZstd}.WithDefaults("z"))
	if _, on := h.e.CompressMin("plain"); on {
		t.Fatal("plain compresses")
	}
	if n, on := h.e.CompressMin("z"); !on || n != chute.DefaultCompressMin {
		t.Fatalf("z: %d, %v", n, on)
	}
	if _, on := h.e.CompressMin("missing"); on {
		t.Fatal("a missing target compresses")
	}
	r, err := h.e.CreateTopic(h.now, "t", TopicConfig{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	subscribe := func(name string, cfg QueueConfig) {
		t.Helper()
		r, err := h.e.Subscribe(h.now, "t", name, cfg.WithDefaults(name), nil)
		if err != nil {
			t.Fatal(err)
		}
		h.commit(r)
	}
	subscribe("s1", QueueConfig{})
	if _, on := h.e.CompressMin("t"); on {
		t.Fatal("a topic without compressing subscriptions compresses")
	}
	subscribe("s2", QueueConfig{Compression: chute.CompressionZstd, CompressMin: 2048})
	subscribe("s3", QueueConfig{Compression: chute.CompressionZstd, CompressMin: 1024})
	if n, on := h.e.CompressMin("t"); !on || n != 1024 {
		t.Fatalf("topic: %d, %v; want 1024, true", n, on)
	}
}
