package broker

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
)

// Compression at rest (issue 11, docs/format.md "Compression at rest").
//
// A queue with QueueConfig.Compression zstd stores each body of at least
// CompressMin bytes as one zstd frame, when that makes it at least a
// sixteenth smaller; the blob marks it (internal/engine/blob.go), and
// every read that hands a body to a consumer decompresses it. The steps:
//
//  1. Publish looks the target's setting up under b.mu (compressLocked).
//     If some body qualifies it releases b.mu, compresses the batch's
//     bodies, and takes b.mu again: compression is the costly part and
//     must not hold up other publishes, receives and acks. A config
//     changed meanwhile applies to this publish or not — either is
//     "later", and every stored form reads back the same.
//  2. The compressed bodies live in a pooled buffer until the record is
//     encoded (Record.Encode copies them into the journal's batch), then
//     go back to the pool.
//  3. Delivery and Peek (deliveries) decompress marked bodies into a new
//     slice: the body is the consumer's to keep.
//
// Dead-lettering, redrive, compaction and backups move or copy blobs as
// they are, so a body stays compressed (or not) for its whole life,
// whatever the queue it moves to is configured to do.
//
// Why these settings: SpeedFastest, because the broker compresses on the
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

// maxStoredBody is the largest body any broker accepts (Options.
// MaxMessageSize is at most 64 MiB): what a stored frame may decompress to.
// Not the broker's own MaxMessageSize, which may have been larger when
// the body was stored.
const maxStoredBody = 64 << 20

// maxPooledZBuf is the largest scratch buffer put back in the pool: a
// rare huge batch does not pin its memory for good.
const maxPooledZBuf = 4 << 20

// compressor owns the broker's zstd encoder and decoder (created at first
// use, so a broker that never compresses pays nothing) and closes them
// when the broker closes.
type compressor struct {
	mu     sync.RWMutex // read-locked while enc or dec is in use; locked by close
	closed bool         // guarded by mu
	once   sync.Once    // creates enc, dec and err, with mu read-locked
	// Set once by once, then only read (with mu read-locked), and closed
	// by close (with mu locked). EncodeAll and DecodeAll are safe for
	// concurrent use; a Decoder must not be closed during a DecodeAll.
	enc  *zstd.Encoder
	dec  *zstd.Decoder
	err  error
	bufs sync.Pool // *zbuf
}

// zbuf holds the compressed bodies of one publish until its record is
// encoded.
type zbuf struct {
	b     []byte
	spans []zspan
}

// zspan is one message's compressed body within zbuf.b.
type zspan struct{ msg, start, end int }

// acquire read-locks mu for a compression or decompression, creating the
// encoder and decoder the first time; on an error (closed, or the coders
// could not be made) mu is not held.
func (c *compressor) acquire() error {
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
func (c *compressor) start() error {
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

// compress replaces the body of each message of pms at least min bytes
// long (min < 0: every one) with its zstd frame, and marks it
// (PubMsg.Zstd), when the frame is smaller by at least a sixteenth of the
// body: a smaller saving is not worth a decompression on every delivery.
// The frames live in the result, which release takes back once the
// record is encoded; nil when nothing was compressed.
func (c *compressor) compress(pms []engine.PubMsg, min int64) (*zbuf, error) {
	if err := c.acquire(); err != nil {
		return nil, err
	}
	defer c.mu.RUnlock()
	z, _ := c.bufs.Get().(*zbuf)
	if z == nil {
		z = &zbuf{}
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
		c.release(z)
		return nil, nil
	}
	return z, nil
}

// release puts a publish's scratch buffer back (nil: nothing).
func (c *compressor) release(z *zbuf) {
	if z == nil || cap(z.b) > maxPooledZBuf {
		return
	}
	z.b, z.spans = z.b[:0], z.spans[:0]
	c.bufs.Put(z)
}

// decompress returns a stored zstd frame's body, in a new slice.
func (c *compressor) decompress(frame []byte) ([]byte, error) {
	if err := c.acquire(); err != nil {
		return nil, err
	}
	defer c.mu.RUnlock()
	return c.dec.DecodeAll(frame, nil)
}

// close releases the encoder and decoder once every use in progress has
// ended; later uses fail with chute.ErrClosed.
func (c *compressor) close() {
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

// compressLocked compresses the bodies of a publish to target if its
// configuration asks for it (engine.CompressMin) and some body is large
// enough. It releases b.mu while it compresses and takes it again
// (checking that the broker is still open); the caller releases the
// result (compressor.release) once the record is encoded.
func (b *Broker) compressLocked(target string, pms []engine.PubMsg) (*zbuf, error) {
	min, on := b.eng.CompressMin(target)
	if !on || !anyBodyAtLeast(pms, min) {
		return nil, nil
	}
	b.mu.Unlock()
	z, err := b.zc.compress(pms, min)
	b.mu.Lock()
	if err != nil {
		return z, err
	}
	return z, b.checkLocked()
}

// anyBodyAtLeast reports whether some message's body has at least min
// bytes (min < 0: any non-empty body).
func anyBodyAtLeast(pms []engine.PubMsg, min int64) bool {
	for i := range pms {
		if n := len(pms[i].Body); n > 0 && int64(n) >= min {
			return true
		}
	}
	return false
}

// isClosed reports whether err is the broker's closing, not damage.
func isClosed(err error) bool { return errors.Is(err, chute.ErrClosed) }

// decodeBlob parses a stored blob for delivery: checksum, ID, key,
// headers, and the body as published (decompressed if it was stored
// compressed, into a new slice; otherwise aliasing blob). A frame that
// does not decompress is damage, reported like a bad checksum; after
// Close it is chute.ErrClosed.
func (b *Broker) decodeBlob(blob []byte) (id, key string, headers map[string]string, body []byte, err error) {
	p, err := engine.ParseBlob(blob)
	if err != nil || !p.Zstd {
		return p.ID, p.Key, p.Headers, p.Body, err
	}
	body, err = b.zc.decompress(p.Body)
	if errors.Is(err, chute.ErrClosed) {
		return "", "", nil, nil, err
	}
	if err != nil {
		return "", "", nil, nil, fmt.Errorf("compressed body: %w", err)
	}
	return p.ID, p.Key, p.Headers, body, nil
}
