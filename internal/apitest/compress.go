package apitest

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"

	"github.com/chutemq/chute"
)

// testCompression: a queue's compression settings read back as set, can
// be changed, and whatever is stored — compressed, too small, or
// incompressible — is delivered exactly as published, before and after
// the change (issue 11: compression at rest).
func testCompression(e *env) {
	cfg := chute.QueueConfig{Compression: chute.CompressionZstd, CompressMin: 100}
	q := e.queue("z", cfg)
	if got := e.stats(q).Config; !reflect.DeepEqual(got, cfg.WithDefaults(q)) {
		e.t.Fatalf("config read back:\n got %+v\nwant %+v", got, cfg.WithDefaults(q))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 2048)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	want := [][]byte{
		[]byte(strings.Repeat(`{"user":"ada","action":"login"} `, 64)), // compresses
		[]byte("small"),              // below CompressMin
		random,                       // does not compress
		bytes.Repeat([]byte{0}, 100), // exactly CompressMin
	}
	check := func(when string) {
		e.t.Helper()
		for _, b := range want {
			e.publish(q, chute.Message{Body: b, Headers: map[string]string{"h": "v"}})
		}
		ds := e.receive(q, chute.ReceiveOptions{Max: len(want)})
		if len(ds) != len(want) {
			e.t.Fatalf("%s: %d deliveries, want %d", when, len(ds), len(want))
		}
		for i, d := range ds {
			if !bytes.Equal(d.Body, want[i]) || d.Headers["h"] != "v" {
				e.t.Fatalf("%s: delivery %d: %d bytes %q…, headers %v; want the body as published", when, i, len(d.Body), d.Body[:min(len(d.Body), 16)], d.Headers)
			}
		}
		e.ack(q, ds...)
	}
	check("compressed")

	// Changed at run time: later publishes are stored by the new setting.
	cfg.Compression, cfg.CompressMin = chute.CompressionNone, chute.None
	if err := e.api.UpdateQueue(e.ctx, q, cfg); err != nil {
		e.t.Fatalf("update: %v", err)
	}
	if got := e.stats(q).Config; got.Compression != chute.CompressionNone || got.CompressMin != chute.None {
		e.t.Fatalf("config after update: compression %v, min %d", got.Compression, got.CompressMin)
	}
	check("after turning compression off")

	def := e.queue("defaults", chute.QueueConfig{})
	if got := e.stats(def).Config; got.Compression != chute.CompressionNone || got.CompressMin != chute.DefaultCompressMin {
		e.t.Fatalf("default config: compression %v, min %d", got.Compression, got.CompressMin)
	}
	err := e.api.CreateQueue(e.ctx, e.name("bad"), chute.QueueConfig{Compression: 9})
	e.wantErr("unknown compression", err, chute.ErrInvalidConfig)
}
