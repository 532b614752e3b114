// Package zbody compresses message bodies at rest with zstd and reads
// them back (docs/format.md, "Compression at rest"): the broker's and a
// cluster leader's (which compresses before it proposes, so that every
// replica stores the same bytes).
//
// Why these settings: SpeedFastest, because a broker compresses on the
// publish path and a drain decompresses on the delivery path (zstd's
// fastest level still halves typical JSON, at several hundred MB/s); one
// encoder state, because the broker's goroutines are the producers'
// connections and compression must not multiply memory by them (the
// encoder's tables are a few hundred KiB); no zstd checksum, because the
// blob's CRC-32C covers the frame; decoders as many as GOMAXPROCS, each
// bounded to maxStoredBody of output, so that a body that somehow
// decodes to more than any broker accepts fails instead of exhausting
// memory (the CRC makes a damaged frame all but impossible to reach the
// decoder; the bound is the second line).
package zbody

import (
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
)

// maxStoredBody is the largest body any broker accepts (Options.
// MaxMessageSize is at most 64 MiB): what a stored frame may decompress to.
// Not the broker's own MaxMessageSize, which may have been larger when
// the body was stored.
const maxStoredBody = 64 << 20

// maxPooledZBuf is the largest scratch buffer put back in the pool: a
// rare huge batch does not pin its memory for good.
const maxPooledZBuf = 4 << 20

// Compressor owns a zstd encoder and decoder (created at first use, so
// an owner that never compresses pays nothing) and closes them when its
// owner closes. The zero value is ready to use.
type Compressor struct {
	mu     sync.RWMutex // read-locked while enc or dec is in use; locked by close
	closed bool         // guarded by mu
	once   sync.Once    // creates enc, dec and err, with mu read-locked
	// Set once by once, then only read (with mu read-locked), and closed
	// by close (with mu locked). EncodeAll and DecodeAll are safe for
	// concurrent use; a Decoder must not be closed during a DecodeAll.
	enc  *zstd.Encoder
	dec  *zstd.Decoder
	err  error
	bufs sync.Pool // *Buf
}

// Buf holds the compressed bodies of one publish until its record is
// encoded.
type Buf struct {
	b     []byte
	spans []zspan
}

// zspan is one message's compressed body within zbuf.b.
type zspan struct{ msg, start, end int }

// acquire read-locks mu for a compression or decompression, creating the
// encoder and decoder the first time; on an error (closed, or the coders
// could not be made) mu is not held.
func (c *Compressor) acquire() error {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return chute.ErrClosed
	}
	if err := c.start(); err != nil {
		c.mu.RUnlock()
		return err
	}
	return nil
}

// start creates the encoder and decoder once (under acquire).
func (c *Compressor) start() error {
	c.once.Do(func() {
		c.enc, c.err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		if c.err != nil {
			return
		}
		c.dec, c.err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(maxStoredBody))
	})
	return c.err
}

// Compress replaces the body of each message of pms at least min bytes
// long (min < 0: every one) with its zstd frame, and marks it
// (PubMsg.Zstd), when the frame is smaller by at least a sixteenth of the
// body: a smaller saving is not worth a decompression on every delivery.
// The frames live in the result, which release takes back once the
// record is encoded; nil when nothing was compressed.
func (c *Compressor) Compress(pms []engine.PubMsg, min int64) (*Buf, error) {
	if err := c.acquire(); err != nil {
		return nil, err
	}
	defer c.mu.RUnlock()
	z, _ := c.bufs.Get().(*Buf)
	if z == nil {
		z = &Buf{}
	}
	for i := range pms {
		body := pms[i].Body
		if len(body) == 0 || int64(len(body)) < min {
			continue
		}
		start := len(z.b)
		z.b = c.enc.EncodeAll(body, z.b)
		if len(z.b)-start > len(body)-len(body)/16 {
			z.b = z.b[:start] // incompressible: stored as published
			continue
		}
		z.spans = append(z.spans, zspan{msg: i, start: start, end: len(z.b)})
	}
	// Slice only now: z.b may have moved while it grew.
	for _, s := range z.spans {
		pms[s.msg].Body = z.b[s.start:s.end:s.end]
		pms[s.msg].Zstd = true
	}
	if len(z.spans) == 0 {
		c.Release(z)
		return nil, nil
	}
	return z, nil
}

// Release puts a publish's scratch buffer back (nil: nothing).
func (c *Compressor) Release(z *Buf) {
	if z == nil || cap(z.b) > maxPooledZBuf {
		return
	}
	z.b, z.spans = z.b[:0], z.spans[:0]
	c.bufs.Put(z)
}

// Decompress returns a stored zstd frame's body, in a new slice.
func (c *Compressor) Decompress(frame []byte) ([]byte, error) {
	if err := c.acquire(); err != nil {
		return nil, err
	}
	defer c.mu.RUnlock()
	return c.dec.DecodeAll(frame, nil)
}

// Close releases the encoder and decoder once every use in progress has
// ended; later uses fail with chute.ErrClosed.
func (c *Compressor) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if c.enc != nil {
		c.enc.Close()
	}
	if c.dec != nil {
		c.dec.Close()
	}
}

// AnyBodyAtLeast reports whether some message's body has at least min
// bytes (min < 0: any non-empty body).
func AnyBodyAtLeast(pms []engine.PubMsg, min int64) bool {
	for i := range pms {
		if n := len(pms[i].Body); n > 0 && int64(n) >= min {
			return true
		}
	}
	return false
}
