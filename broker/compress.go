package broker

import (
	"errors"
	"fmt"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/zbody"
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
// whatever the queue it moves to is configured to do. The coder and its
// settings are internal/zbody's.

// compressLocked compresses the bodies of a publish to target if its
// configuration asks for it (engine.CompressMin) and some body is large
// enough. It releases b.mu while it compresses and takes it again
// (checking that the broker is still open); the caller releases the
// result (zbody.Compressor.Release) once the record is encoded.
func (b *Broker) compressLocked(target string, pms []engine.PubMsg) (*zbody.Buf, error) {
	min, on := b.eng.CompressMin(target)
	if !on || !zbody.AnyBodyAtLeast(pms, min) {
		return nil, nil
	}
	b.mu.Unlock()
	z, err := b.zc.Compress(pms, min)
	b.mu.Lock()
	if err != nil {
		return z, err
	}
	return z, b.checkLocked()
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
	body, err = b.zc.Decompress(p.Body)
	if errors.Is(err, chute.ErrClosed) {
		return "", "", nil, nil, err
	}
	if err != nil {
		return "", "", nil, nil, fmt.Errorf("compressed body: %w", err)
	}
	return p.ID, p.Key, p.Headers, body, nil
}
