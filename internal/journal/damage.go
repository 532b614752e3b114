package journal

import "fmt"

// Damage inside a segment, and what recovery does about it.
//
// A segment's frames are validated in order (frameAt). An invalid frame
// starts a damaged region, which ends at the next aligned offset where a
// valid frame of this segment starts (nextValidFrame: resynchronisation),
// or at the end of the file. What the region means depends on where it is:
//
//   - Before the replay start (the checkpoint's position, in the
//     checkpoint's own segment): the checkpoint holds every record there,
//     so only the message bodies stored there matter. Replay skips the
//     region, logs it and lists it (Journal.Skipped); the broker checks the
//     bodies of the queued messages in that segment.
//   - In the last segment, with no valid frame after it: a torn tail (the
//     write of the last batch was cut short). It is cut off.
//   - In the last segment, followed by valid frames, when every damaged
//     region from there on is zero-shaped (zeroTorn): a torn write. Power
//     loss before the batch's fdatasync completed, and the file system
//     wrote that batch's pages (or sectors) out of order: the ones that did
//     not reach the disk read as zeros. It is cut off, with the valid
//     frames after it, none of which was ever confirmed (a confirmation
//     waits for the sync that would have made every one of those pages
//     durable). See docs/format.md, "Torn writes", for the evidence.
//   - Anywhere else: corruption, reported with the file, the offset and
//     the extent of the unreadable bytes.

// sectorSize is the unit a disk writes atomically, and the smallest unit
// a crash can leave unwritten inside a batch.
const sectorSize = 512

// Region is a damaged stretch of a segment: [Off, End) holds no valid
// frame; End is where the next valid frame starts, or the file's size.
type Region struct {
	Off, End int64
	Reason   string
}

// nextValidFrame returns the first aligned offset after off where a valid
// frame of segment seg starts, or len(data) if there is none.
func nextValidFrame(data []byte, off int, seg uint32) int {
	for o := (off + frameAlign) &^ (frameAlign - 1); o+frameHeaderSize <= len(data); o += frameAlign {
		if data[o+8] != frameRecord || data[o+12] != byte(seg) || data[o+13] != byte(seg>>8) ||
			data[o+14] != byte(seg>>16) || data[o+15] != byte(seg>>24) {
			continue
		}
		if _, _, end, err := frameAt(data, o, seg); !end && err == nil {
			return o
		}
	}
	return len(data)
}

// zeroShaped reports whether the damaged region [off, end) looks like
// unwritten space: its frame header is all zeros, or it holds a whole
// aligned sector of zeros (etcd's isTornEntry test, on sectors of the file).
func zeroShaped(data []byte, off, end int) bool {
	if off+frameHeaderSize <= len(data) && allZero(data[off:off+frameHeaderSize]) {
		return true
	}
	for s := (off + sectorSize - 1) &^ (sectorSize - 1); s+sectorSize <= end; s += sectorSize {
		if allZero(data[s : s+sectorSize]) {
			return true
		}
	}
	return false
}

// zeroTorn reports whether, from the damaged region at off to the end of
// the file, every damaged region is zero-shaped (the last one may also be
// a plain torn tail): the signature of one batch whose pages reached the
// disk in part.
func zeroTorn(data []byte, off int, seg uint32) bool {
	for off < len(data) {
		r := nextValidFrame(data, off, seg)
		if r == len(data) {
			return true // what is left is a torn tail
		}
		if !zeroShaped(data, off, r) {
			return false
		}
		off = r
		for off < len(data) { // the valid frames after it
			_, next, end, err := frameAt(data, off, seg)
			if end && allZero(data[off:]) {
				return true
			}
			if end || err != nil {
				break
			}
			off = next
		}
	}
	return true
}

// frameReason describes why the frame at off is invalid.
func frameReason(end bool, err error) string {
	if err != nil {
		return err.Error()
	}
	return "zero frame header followed by data"
}

// extent describes a damaged region for an error message.
func extent(off, r, size int) string {
	if r >= size {
		return fmt.Sprintf("%d bytes to the end of the file unreadable", size-off)
	}
	return fmt.Sprintf("%d bytes unreadable up to the next intact frame at offset %d", r-off, r)
}

// walkResult is what walkFrames found in one segment.
type walkResult struct {
	end     int      // where valid data ends: the next frame goes here
	cut     *Region  // a torn tail or torn write to cut off (last segment only)
	skipped []Region // damage before skipBefore, covered by the checkpoint
}

// walkFrames validates the frames of data (a whole segment file, its
// header already checked) and calls fn with every valid frame that is
// kept, in order, applying the rules above. last says whether this is the
// last segment; damage that ends at or before skipBefore is skipped; no
// cut may start before minCut (the checkpoint's position: every record
// before it was confirmed).
func walkFrames(data []byte, name string, seg uint32, last bool, skipBefore, minCut int, fn func(off int, payload []byte) error) (walkResult, error) {
	var res walkResult
	off := segHeaderSize
	for off < len(data) {
		payload, next, end, err := frameAt(data, off, seg)
		if end && allZero(data[off:]) {
			if last {
				res.cut = &Region{Off: int64(off), End: int64(len(data)), Reason: "no frame"}
			}
			break
		}
		if end || err != nil {
			reason := frameReason(end, err)
			r := nextValidFrame(data, off, seg)
			switch {
			case off < skipBefore && r <= skipBefore:
				res.skipped = append(res.skipped, Region{Off: int64(off), End: int64(r), Reason: reason})
				off = r
				continue
			case last && r == len(data):
				res.cut = &Region{Off: int64(off), End: int64(len(data)), Reason: reason}
			case last && zeroTorn(data, off, seg):
				res.cut = &Region{Off: int64(off), End: int64(len(data)), Reason: "torn write: " + reason + ", valid frames after zeroed sectors"}
			default:
				return res, &CorruptionError{File: name, Offset: int64(off), Reason: reason + "; " + extent(off, r, len(data))}
			}
			break
		}
		if fn != nil {
			if err := fn(off, payload); err != nil {
				return res, err
			}
		}
		off = next
	}
	res.end = off // may lie past the data when a crash cut the last padding off
	if res.cut != nil {
		if int(res.cut.Off) < minCut {
			// The checkpoint says records end at minCut or later.
			return res, &CorruptionError{File: name, Offset: res.cut.Off,
				Reason: fmt.Sprintf("%s before the checkpoint position %d", res.cut.Reason, minCut)}
		}
		res.end = int(res.cut.Off)
	}
	return res, nil
}

// resyncFrames is walkFrames without a verdict, for repair: it calls fn
// with every valid frame, resynchronising after each damaged region, and
// returns the regions. Zeros to the end of the file are not damage.
func resyncFrames(data []byte, seg uint32, fn func(off int, payload []byte)) []Region {
	var regs []Region
	off := segHeaderSize
	for off < len(data) {
		payload, next, end, err := frameAt(data, off, seg)
		if end && allZero(data[off:]) {
			break
		}
		if end || err != nil {
			r := nextValidFrame(data, off, seg)
			regs = append(regs, Region{Off: int64(off), End: int64(r), Reason: frameReason(end, err)})
			off = r
			continue
		}
		if fn != nil {
			fn(off, payload)
		}
		off = next
	}
	return regs
}
