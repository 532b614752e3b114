package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/engine"
)

// compressible is a body zstd shrinks several times over (JSON-like);
// random one it cannot shrink.
func compressible(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"user":"user-%d","action":"login","ok":true},`, i, i%7)
	}
	return b.Bytes()[:n]
}

func random(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// storedAndJournaled publishes one body to q and returns the bytes it is
// stored as (the queue's ready bytes grow by its blob) and the journal
// bytes its publish took.
func storedAndJournaled(t *testing.T, b *broker.Broker, q string, body []byte) (stored, journaled int64) {
	t.Helper()
	ctx := context.Background()
	s0, err := b.QueueStats(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	j0 := b.JournalStats().Bytes
	mustPublish(t, b, q, chute.Message{Body: body})
	s1, err := b.QueueStats(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	return s1.ReadyBytes - s0.ReadyBytes, b.JournalStats().Bytes - j0
}

// TestCompressionStoresSmaller: with compression on, a compressible body
// is stored and journaled smaller; an incompressible one, or one below
// the threshold, as published; with it off, every body as published.
// Each is delivered exactly as published.
func TestCompressionStoresSmaller(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	mustCreate(t, b, "z", chute.QueueConfig{Compression: chute.CompressionZstd, CompressMin: 1024})
	mustCreate(t, b, "plain", chute.QueueConfig{})
	cases := []struct {
		name    string
		queue   string
		body    []byte
		smaller bool
	}{
		{"compressible", "z", compressible(4096), true},
		{"random", "z", random(4096, 1), false},
		{"below the threshold", "z", compressible(1023), false},
		{"at the threshold", "z", compressible(1024), true},
		{"compression off", "plain", compressible(4096), false},
	}
	var sent [][]byte
	for _, c := range cases {
		stored, journaled := storedAndJournaled(t, b, c.queue, c.body)
		n := int64(len(c.body))
		if c.smaller && (stored > n/2 || journaled > n/2) {
			t.Errorf("%s: %d bytes stored as %d, journaled as %d; want less than half", c.name, n, stored, journaled)
		}
		if !c.smaller && (stored < n || journaled < n) {
			t.Errorf("%s: %d bytes stored as %d, journaled as %d; want them as published", c.name, n, stored, journaled)
		}
		if c.queue == "z" {
			sent = append(sent, c.body)
		}
	}
	ds := mustReceive(t, b, "z", chute.ReceiveOptions{Max: 10})
	if len(ds) != len(sent) {
		t.Fatalf("%d deliveries, want %d", len(ds), len(sent))
	}
	for i, d := range ds {
		if !bytes.Equal(d.Body, sent[i]) {
			t.Errorf("delivery %d differs from what was published (%d bytes, want %d)", i, len(d.Body), len(sent[i]))
		}
	}
}

// TestCompressionTopic: a topic's message is stored once, compressed when
// a subscription it reaches asks for it; every subscription gets the body
// as published.
func TestCompressionTopic(t *testing.T) {
	ctx := context.Background()
	b := chutetest.MustOpen(t, "", nil)
	if err := b.CreateTopic(ctx, "t", chute.TopicConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		name string
		cfg  chute.QueueConfig
	}{{"raw", chute.QueueConfig{}}, {"zipped", chute.QueueConfig{Compression: chute.CompressionZstd}}} {
		if err := b.Subscribe(ctx, "t", s.name, chute.SubscriptionConfig{Queue: s.cfg}); err != nil {
			t.Fatal(err)
		}
	}
	body := compressible(8192)
	j0 := b.JournalStats().Bytes
	mustPublish(t, b, "t", chute.Message{Body: body})
	if j := b.JournalStats().Bytes - j0; j > int64(len(body))/2 {
		t.Errorf("a topic publish journaled %d bytes for a body of %d", j, len(body))
	}
	for _, q := range []string{"raw", "zipped"} {
		ds := mustReceive(t, b, q, chute.ReceiveOptions{})
		if len(ds) != 1 || !bytes.Equal(ds[0].Body, body) {
			t.Fatalf("%s: got %d deliveries, body intact %v", q, len(ds), len(ds) == 1 && bytes.Equal(ds[0].Body, body))
		}
	}
}

// TestCompressionSurvivesRestart: compressed bodies read back after a
// clean restart (from the checkpoint), after a crash (replaying the
// records), and after dead-lettering (the blob moves as it is, to a queue
// that does not compress).
func TestCompressionSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	opts, fs := chutetest.MemOptions(nil)
	opts.CheckpointBytes = -1
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "z", chute.QueueConfig{Compression: chute.CompressionZstd, CompressMin: chute.None, MaxDeliveries: 1})
	want := [][]byte{compressible(3000), random(3000, 2), []byte("tiny but compressed? no: it would not shrink")}
	for _, body := range want {
		mustPublish(t, b, "z", chute.Message{Body: body})
	}
	dead := mustPublish(t, b, "z", chute.Message{Body: compressible(5000)})[0].Seq
	// The last one dies into z.dlq (one delivery, nacked).
	ds := mustReceive(t, b, "z", chute.ReceiveOptions{Max: 10})
	for _, d := range ds {
		if d.Seq == dead {
			if err := b.Nack(ctx, "z", chute.Nack{Receipt: d.Receipt, Delay: -1}); err != nil {
				t.Fatal(err)
			}
		} else if err := b.Nack(ctx, "z", chute.Nack{Receipt: d.Receipt, Delay: -1, Unstarted: true}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, b *broker.Broker) {
		t.Helper()
		got := peek(t, b, "z")
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages in z, want %d", what, len(got), len(want))
		}
		for i, d := range got {
			if !bytes.Equal(d.Body, want[i]) {
				t.Fatalf("%s: message %d differs", what, i)
			}
		}
		dl := peek(t, b, "z.dlq")
		if len(dl) != 1 || !bytes.Equal(dl[0].Body, compressible(5000)) {
			t.Fatalf("%s: dead letters %d, body intact %v", what, len(dl), len(dl) == 1 && bytes.Equal(dl[0].Body, compressible(5000)))
		}
	}
	check("before", b)
	crashed := fs.CrashClone(nil) // no checkpoint: Open replays every record
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	check("after a crash", chutetest.MustOpen(t, "data", &broker.Options{FS: crashed, CheckpointBytes: -1}))
	check("after a clean restart", chutetest.MustOpen(t, "data", &broker.Options{FS: fs}))
}

// TestCompressedDamageIsReported: a compressed body whose blob checksum
// holds but whose frame does not decompress is damage, reported with the
// file and offset like any other (chute.ErrJournalCorrupt wrapping a
// *chute.CorruptionError), never delivered, by Peek as by Receive.
func TestCompressedDamageIsReported(t *testing.T) {
	ctx := context.Background()
	opts, fs := chutetest.MemOptions(nil)
	opts.CheckpointBytes = -1
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "z", chute.QueueConfig{Compression: chute.CompressionZstd})
	mustPublish(t, b, "z", chute.Message{Body: compressible(4096)})
	st, err := b.QueueStats(ctx, "z")
	if err != nil {
		t.Fatal(err)
	}
	blobLen := int(st.ReadyBytes)
	mustPublish(t, b, "z", chute.Message{Body: []byte("intact")})
	if err := b.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(nil)
	b.Close()

	// The blob: checksum, three empty fields (ID, key, headers), then the
	// zstd frame. Spoil the frame's magic number and re-mark the blob, so
	// that only decompression can tell.
	data, err := crashed.Bytes("data/00000001.seg")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte{0x28, 0xb5, 0x2f, 0xfd})
	if i < 7 {
		t.Fatalf("no zstd frame in the segment (at %d)", i)
	}
	blob := data[i-7 : i-7+blobLen]
	frame := bytes.Clone(blob[7:])
	frame[0] ^= 0xff
	copy(blob, engine.AppendBlobZstd(nil, "", "", nil, frame))
	crashed.SetBytes("data/00000001.seg", data)

	b2 := chutetest.MustOpen(t, "data", &broker.Options{FS: crashed})
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"peek", func() error { _, err := b2.Peek(ctx, "z", 1); return err }},
		{"receive", func() error {
			_, err := b2.Receive(ctx, "z", chute.ReceiveOptions{Max: 1})
			return err
		}},
	} {
		err := op.run()
		var ce *chute.CorruptionError
		if !errors.Is(err, chute.ErrJournalCorrupt) || !errors.As(err, &ce) || ce.File != "data/00000001.seg" {
			t.Fatalf("%s of the damaged message: %v; want ErrJournalCorrupt with a CorruptionError naming the segment", op.name, err)
		}
	}
}

var errBodyDiffers = errors.New("delivered body differs from the published one")

// TestCompressionClose: Close releases the encoder and decoder while
// publishes and receives of compressed bodies run; none of them panics
// or reports damage.
func TestCompressionClose(t *testing.T) {
	ctx := context.Background()
	b, err := broker.Open("", nil)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "z", chute.QueueConfig{Compression: chute.CompressionZstd})
	body := compressible(2048)
	done := make(chan error, 2)
	go func() {
		for {
			if _, err := b.Publish(ctx, "z", chute.Message{Body: body}); err != nil {
				done <- err
				return
			}
		}
	}()
	go func() {
		for {
			ds, err := b.Receive(ctx, "z", chute.ReceiveOptions{Max: 10, Wait: -1})
			if err != nil {
				done <- err
				return
			}
			for _, d := range ds {
				if !bytes.Equal(d.Body, body) {
					done <- fmt.Errorf("%w: %d bytes", errBodyDiffers, len(d.Body))
					return
				}
			}
		}
	}()
	chutetest.Eventually(t, "some messages through", func() bool {
		s, err := b.QueueStats(ctx, "z")
		return err == nil && s.Totals.Delivered >= 20
	})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// A receive whose journal read meets the Close fails with the
	// journal's error rather than ErrClosed (deliver.go); what matters
	// here is that nothing reads as damage or a wrong body.
	for range 2 {
		if err := <-done; errors.Is(err, chute.ErrJournalCorrupt) || errors.Is(err, errBodyDiffers) {
			t.Fatalf("after Close: %v", err)
		}
	}
}
