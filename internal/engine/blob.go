package engine

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"

	"github.com/chutemq/chute"
)

// A blob is a message's stored form, kept by the storage layer and handed
// back on delivery; the engine keeps only its location and size:
//
//	u32 CRC-32C of the rest (so a blob read on its own is checked)
//	uvarint len(id)  id
//	uvarint len(key) key
//	uvarint nheaders { uvarint len(k) k  uvarint len(v) v }  (sorted by k)
//	body (the rest)
//
// A body stored compressed (record version 6, issue 11: a queue with
// QueueConfig.Compression zstd) is one zstd frame, and the blob says so in
// its checksum field: it holds the CRC-32C of the rest XOR zstdMark. The
// mark cannot go anywhere else without changing how old blobs read: every
// byte value can start the ID's length, and the engine keeps only a
// blob's location, so the blob must describe itself. So an old blob
// (whose field is the plain CRC) reads unchanged; a checksum that matches
// neither form is damage, as before (a damaged blob now passes with
// probability 2·2⁻³² instead of 2⁻³²); and a broker from before version
// 6, which never reads such a blob (it refuses the version-6 records and
// snapshots that hold one), would take it for damage, never deliver it.
var errBadBlob = errors.New("malformed message blob")

// zstdMark is XORed into the checksum of a blob whose body is
// zstd-compressed ("zstd" in ASCII, read as a little-endian u32).
const zstdMark = 0x6474737a

// BlobSize is the encoded size of a blob, without allocating.
func BlobSize(id, key string, headers map[string]string, body []byte) int {
	n := 4 + uvarintLen(uint64(len(id))) + len(id) + uvarintLen(uint64(len(key))) + len(key) +
		uvarintLen(uint64(len(headers))) + len(body)
	for k, v := range headers {
		n += uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(len(v))) + len(v)
	}
	return n
}

// AppendBlob appends the blob encoding to buf.
func AppendBlob(buf []byte, id, key string, headers map[string]string, body []byte) []byte {
	return appendBlob(buf, id, key, headers, body, false)
}

// AppendBlobZstd appends the blob encoding of a zstd-compressed body
// (one zstd frame) to buf, marked as such. Its size is BlobSize's with
// the compressed body: the mark costs no byte.
func AppendBlobZstd(buf []byte, id, key string, headers map[string]string, zbody []byte) []byte {
	return appendBlob(buf, id, key, headers, zbody, true)
}

// appendBlob appends a blob, its checksum marked if zstd says that body is
// compressed.
func appendBlob(buf []byte, id, key string, headers map[string]string, body []byte, zstd bool) []byte {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf = appendString(buf, id)
	buf = appendString(buf, key)
	buf = appendMap(buf, headers)
	buf = append(buf, body...)
	sum := crc32.Checksum(buf[start+4:], castagnoli)
	if zstd {
		sum ^= zstdMark
	}
	binary.LittleEndian.PutUint32(buf[start:], sum)
	return buf
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBlobChecksum: a blob read back does not match its checksum.
var ErrBlobChecksum = errors.New("message checksum mismatch")

// BlobIDKey reads a blob's message ID and ordering key.
func BlobIDKey(b []byte) (id, key string, err error) {
	if len(b) < 4 {
		return "", "", errBadBlob
	}
	d := decoder{b: b[4:]}
	id = d.string()
	key = d.string()
	return id, key, d.err
}

// DecodeBlob parses a blob and checks its checksum. The body is as
// stored, and aliases b: compressed if the blob is marked so, which only
// ParseBlob reports. It serves callers that check a blob's integrity, or
// know it uncompressed; whatever hands a body to a consumer uses
// ParseBlob. Headers are copied.
func DecodeBlob(b []byte) (id, key string, headers map[string]string, body []byte, err error) {
	p, err := ParseBlob(b)
	return p.ID, p.Key, p.Headers, p.Body, err
}

// Blob is a parsed blob.
type Blob struct {
	ID, Key string
	Headers map[string]string
	// Body is the body as stored (aliasing the blob): one zstd frame if
	// Zstd is set, which the reader decompresses (broker/compress.go).
	Body []byte
	Zstd bool
}

// ParseBlob parses a blob and checks its checksum, in either form (plain,
// or marked as holding a compressed body). The body aliases b; headers
// are copied.
func ParseBlob(b []byte) (Blob, error) {
	if len(b) < 4 {
		return Blob{}, errBadBlob
	}
	var p Blob
	switch stored, sum := binary.LittleEndian.Uint32(b), crc32.Checksum(b[4:], castagnoli); stored {
	case sum:
	case sum ^ zstdMark:
		p.Zstd = true
	default:
		return Blob{}, ErrBlobChecksum
	}
	d := decoder{b: b[4:]}
	p.ID = d.string()
	p.Key = d.string()
	p.Headers = d.stringMap()
	if d.err != nil {
		return Blob{}, errors.Join(errBadBlob, d.err)
	}
	p.Body = b[4+d.off:]
	return p, nil
}

// CompressMin reports whether a publish to target (a queue or topic)
// stores its bodies compressed, and from what size on (QueueConfig.
// Compression, CompressMin; None: every body). A topic's message is
// stored once for all its subscriptions, so it is compressed if any
// subscription has compression on, from the smallest of their thresholds:
// the subscription that asked for the disk saving gets it, and the others
// read the same body back, paying only the decompression. (Finer — a
// topic setting of its own, or only the subscriptions a message's headers
// match — would cost a lookup per message or a config of its own for
// little: subscriptions of one topic carry the same bodies.)
func (e *Engine) CompressMin(target string) (int64, bool) {
	if q := e.queues[target]; q != nil {
		return q.cfg.CompressMin, q.cfg.Compression == chute.CompressionZstd
	}
	t := e.topics[target]
	if t == nil {
		return 0, false
	}
	var least int64
	on := false
	for _, s := range t.subs {
		if s.cfg.Compression != chute.CompressionZstd {
			continue
		}
		if !on || s.cfg.CompressMin < least {
			least = s.cfg.CompressMin
		}
		on = true
	}
	return least, on
}

// blobMatches reports whether every filter pair appears among the blob's
// headers, without building a map.
func blobMatches(b []byte, filter map[string]string) bool {
	if len(filter) == 0 {
		return true
	}
	if len(b) < 4 {
		return false
	}
	d := decoder{b: b[4:]}
	d.string()
	d.string()
	n := d.count(2)
	found := 0
	for i := 0; i < n && d.err == nil; i++ {
		k := d.bytes(d.count(1))
		v := d.bytes(d.count(1))
		if want, ok := filter[string(k)]; ok {
			if want != string(v) {
				return false
			}
			found++
		}
	}
	return d.err == nil && found == len(filter)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func sortedKeys(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
