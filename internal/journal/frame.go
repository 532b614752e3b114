package journal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// The byte layout is documented with diagrams in docs/format.md.
const (
	segHeaderSize   = 32
	frameHeaderSize = 16
	frameAlign      = 8
	segMagic        = "CHUTESEG"
	segVersion      = 1

	frameRecord = 1

	// MaxRecordSize bounds a record's payload; a length above it is damage.
	MaxRecordSize = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameSize is the bytes a payload of n bytes takes in a segment.
func frameSize(n int) int { return frameHeaderSize + (n+frameAlign-1)&^(frameAlign-1) }

// appendFrame appends the frame of payload to buf.
func appendFrame(buf []byte, seg uint32, payload []byte) []byte {
	start := len(buf)
	var h [frameHeaderSize]byte
	binary.LittleEndian.PutUint32(h[4:], uint32(len(payload)))
	h[8] = frameRecord
	binary.LittleEndian.PutUint32(h[12:], seg)
	buf = append(buf, h[:]...)
	buf = append(buf, payload...)
	for pad := frameSize(len(payload)) - frameHeaderSize - len(payload); pad > 0; pad-- {
		buf = append(buf, 0)
	}
	crc := crc32.Update(crc32.Checksum(buf[start+4:start+frameHeaderSize], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(buf[start:], crc)
	return buf
}

// frameAt validates the frame at off in data (a segment's bytes) and
// returns its payload and the offset of the next frame. end is true when
// the bytes at off are zeros (or too few for a header): no more frames.
func frameAt(data []byte, off int, seg uint32) (payload []byte, next int, end bool, err error) {
	if off >= len(data) {
		return nil, 0, true, nil
	}
	if len(data)-off < frameHeaderSize {
		for _, b := range data[off:] {
			if b != 0 {
				return nil, 0, false, fmt.Errorf("%d stray bytes after the last frame", len(data)-off)
			}
		}
		return nil, 0, true, nil
	}
	h := data[off : off+frameHeaderSize]
	if allZero(h) {
		return nil, 0, true, nil
	}
	n := binary.LittleEndian.Uint32(h[4:])
	switch {
	case h[8] != frameRecord:
		return nil, 0, false, fmt.Errorf("frame type %d", h[8])
	case h[9] != 0 || h[10] != 0 || h[11] != 0:
		return nil, 0, false, fmt.Errorf("reserved header bytes not zero")
	case binary.LittleEndian.Uint32(h[12:]) != seg:
		return nil, 0, false, fmt.Errorf("frame of segment %d", binary.LittleEndian.Uint32(h[12:]))
	case n > MaxRecordSize || int(n) > len(data)-off-frameHeaderSize:
		return nil, 0, false, fmt.Errorf("length %d exceeds the %d bytes left", n, len(data)-off-frameHeaderSize)
	}
	payload = data[off+frameHeaderSize : off+frameHeaderSize+int(n)]
	crc := crc32.Update(crc32.Checksum(h[4:], castagnoli), castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(h[0:]) {
		return nil, 0, false, fmt.Errorf("checksum mismatch")
	}
	// next may lie past the end of data when a crash cut the padding off;
	// the next frame still goes at the aligned offset.
	return payload, off + frameSize(int(n)), false, nil
}

// anyValidFrameAfter reports whether a valid frame starts at any aligned
// offset after off: if so, damage at off is not a torn tail.
func anyValidFrameAfter(data []byte, off int, seg uint32) bool {
	for o := (off + frameAlign) &^ (frameAlign - 1); o+frameHeaderSize <= len(data); o += frameAlign {
		if binary.LittleEndian.Uint32(data[o+12:]) != seg || data[o+8] != frameRecord {
			continue
		}
		if _, _, end, err := frameAt(data, o, seg); !end && err == nil {
			return true
		}
	}
	return false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// segHeader encodes a segment header.
func segHeader(id uint32, created int64) []byte {
	h := make([]byte, segHeaderSize)
	copy(h, segMagic)
	binary.LittleEndian.PutUint32(h[8:], segVersion)
	binary.LittleEndian.PutUint32(h[12:], id)
	binary.LittleEndian.PutUint64(h[16:], uint64(created))
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
	return h
}

// checkSegHeader validates a segment header for segment id.
func checkSegHeader(h []byte, id uint32) error {
	switch {
	case len(h) < segHeaderSize:
		return fmt.Errorf("short segment header (%d bytes)", len(h))
	case string(h[:8]) != segMagic:
		return fmt.Errorf("bad magic %q", h[:8])
	case binary.LittleEndian.Uint32(h[28:]) != crc32.Checksum(h[:28], castagnoli):
		return fmt.Errorf("segment header checksum mismatch")
	case binary.LittleEndian.Uint32(h[8:]) != segVersion:
		return fmt.Errorf("segment version %d", binary.LittleEndian.Uint32(h[8:]))
	case binary.LittleEndian.Uint32(h[12:]) != id:
		return fmt.Errorf("header names segment %d", binary.LittleEndian.Uint32(h[12:]))
	}
	return nil
}
