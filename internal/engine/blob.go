package engine

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
)

// A blob is a message's stored form, kept by the storage layer and handed
// back on delivery; the engine keeps only its location and size:
//
//	u32 CRC-32C of the rest (so a blob read on its own is checked)
//	uvarint len(id)  id
//	uvarint len(key) key
//	uvarint nheaders { uvarint len(k) k  uvarint len(v) v }  (sorted by k)
//	body (the rest)
var errBadBlob = errors.New("malformed message blob")

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
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf = appendString(buf, id)
	buf = appendString(buf, key)
	buf = appendMap(buf, headers)
	buf = append(buf, body...)
	binary.LittleEndian.PutUint32(buf[start:], crc32.Checksum(buf[start+4:], castagnoli))
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

// DecodeBlob parses a blob. The body aliases b; headers are copied.
func DecodeBlob(b []byte) (id, key string, headers map[string]string, body []byte, err error) {
	if len(b) < 4 {
		return "", "", nil, nil, errBadBlob
	}
	if binary.LittleEndian.Uint32(b) != crc32.Checksum(b[4:], castagnoli) {
		return "", "", nil, nil, ErrBlobChecksum
	}
	d := decoder{b: b[4:]}
	id = d.string()
	key = d.string()
	headers = d.stringMap()
	if d.err != nil {
		return "", "", nil, nil, errors.Join(errBadBlob, d.err)
	}
	return id, key, headers, b[4+d.off:], nil
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
