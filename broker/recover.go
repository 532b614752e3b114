package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/journal"
	"github.com/chutemq/chute/internal/vfs"
)

// recover replays the journal into the engine.
//
// Every record is applied at the time it carries, never at the clock's
// time, so a delay or a lease deadline means after the restart what it
// meant before. Then the engine advances to now (timers that came due
// while the broker was down fire, in due order), and, if any leases
// survived the replay, a release-leases record ends them: a lease does not
// outlive the process that granted it, and its message is ready again
// (with its delivery count, which counts towards max deliveries).
//
// Damage. Records after the checkpoint must all be read: damage there
// fails Open (ErrJournalCorrupt, with the file, the offset and what to
// do). Records before it are in the checkpoint, and only the message
// bodies stored among them still matter. So damage before the checkpoint's
// position (which the journal skips and lists) fails Open only if it hit
// the body of a message still queued; then Open names those messages,
// and Options.Salvage dead-letters them instead (checkBodies). Segments
// wholly before the checkpoint are not read at all, unless Salvage asks
// for every queued body to be checked; damage there shows when the
// message is delivered.

// RecoveryStats describes what the last Open did to recover.
type RecoveryStats struct {
	Checkpoint int           // bytes of checkpoint restored (0: none)
	Records    int           // records replayed after it
	Bytes      int64         // bytes of records replayed after it
	Duration   time.Duration // time Open spent recovering
	Salvaged   int           // messages dead-lettered as damaged (Options.Salvage)
}

// RecoveryStats reports what Open did to recover the broker's state.
func (b *Broker) RecoveryStats() RecoveryStats { return b.recovery }

// Headers of the replacement body of a message dead-lettered as damaged.
const (
	HeaderDamagedFile   = "chute-damaged-file"   // the segment file holding the damaged body
	HeaderDamagedOffset = "chute-damaged-offset" // its offset there
	HeaderDamagedError  = "chute-damaged-error"  // what was wrong with it
)

func (b *Broker) recover() error {
	start := time.Now()
	from, snap, err := b.jrn.LoadCheckpoint()
	if err != nil {
		return b.corrupt(fmt.Errorf("recover: %w", err))
	}
	if snap != nil {
		e, err := engine.Restore(snap)
		if err != nil {
			return b.corrupt(fmt.Errorf("recover: checkpoint: %w", err))
		}
		b.eng = e
		b.ckptLastSize.Store(int64(len(snap)))
	}
	var n int
	var replayed int64
	err = b.jrn.Replay(from, func(payload []byte, pos uint64) error {
		r, err := engine.Decode(payload)
		if err != nil {
			return err
		}
		n++
		replayed += int64(len(payload))
		return b.eng.Apply(r, pos)
	})
	if err != nil {
		return b.corrupt(fmt.Errorf("recover: %w", err))
	}
	salvaged, err := b.checkBodies(uint32(from >> 32))
	if err != nil {
		return b.corrupt(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.nowLocked()
	b.eng.Advance(now)
	if b.eng.HasLeases() {
		if _, err := b.commitLocked(b.eng.ReleaseLeases(now)); err != nil {
			return fmt.Errorf("recover: release leases: %w", err)
		}
	}
	b.recovery = RecoveryStats{Checkpoint: len(snap), Records: n, Bytes: replayed, Duration: time.Since(start), Salvaged: salvaged}
	if n > 0 || snap != nil {
		b.log.Info("recovered", "checkpoint bytes", len(snap), "records replayed", n, "took", b.recovery.Duration.Round(time.Millisecond))
	}
	return nil
}

// corrupt marks journal damage with ErrJournalCorrupt and says what to do.
func (b *Broker) corrupt(err error) error {
	err = wrapCorrupt(err)
	if !errors.Is(err, chute.ErrJournalCorrupt) {
		return err
	}
	return fmt.Errorf("%w\nrun `chute journal repair --dry-run %s` to see what would be lost, then `chute journal repair %s` to repair (damaged files are kept in %s/quarantine)",
		err, b.dir, b.dir, b.dir)
}

// checkBodies reads the bodies of the queued messages stored in segments
// with damage before the checkpoint (all segments with Options.Salvage)
// and deals with those that fail their checksum: an error naming them, or
// with Salvage a damaged record for each queue that holds any.
func (b *Broker) checkBodies(ckptSeg uint32) (int, error) {
	skipped := b.jrn.Skipped()
	units := map[uint32]bool{}
	for _, d := range skipped {
		units[d.Seg] = true
	}
	if b.opts.Salvage {
		for _, id := range b.jrn.Segments() {
			units[id] = true
		}
	}
	if len(units) == 0 {
		return 0, nil
	}
	bad := map[uint64]error{}
	for ref, size := range b.eng.Candidates(units, math.MaxInt64) {
		blob, err := b.jrn.ReadAt(ref, int(size))
		if err == nil {
			_, _, _, _, err = engine.DecodeBlob(blob)
		}
		if err != nil {
			bad[ref] = err
		}
	}
	for _, d := range skipped {
		b.log.Warn("damage before the checkpoint: no record there is needed",
			"file", d.File, "offset", d.Off, "bytes", d.End-d.Off, "reason", d.Reason, "damaged queued bodies", len(bad))
	}
	if len(bad) == 0 {
		return 0, nil
	}
	msgs := b.eng.Referring(mapKeys(bad))
	if !b.opts.Salvage {
		first := slices.Min(slices.Collect(maps.Keys(bad)))
		file, off := b.jrn.Location(first)
		var names []string
		for i, m := range msgs {
			if i == 10 {
				names = append(names, "…")
				break
			}
			names = append(names, fmt.Sprintf("%s seq %d", m.Queue, m.Seq))
		}
		return 0, fmt.Errorf("recover: %w", &chute.CorruptionError{File: file, Offset: off,
			Reason: fmt.Sprintf("the stored bodies of %d queued message(s) are damaged (%s): they would be lost; start with --salvage (Options.Salvage) to dead-letter them with reason damaged",
				len(msgs), strings.Join(names, ", "))})
	}
	return len(msgs), b.salvage(msgs, bad)
}

func mapKeys(m map[uint64]error) map[uint64]bool {
	out := make(map[uint64]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// salvage journals and applies one damaged record per queue.
func (b *Broker) salvage(msgs []engine.DamagedMsg, why map[uint64]error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch *journal.Batch
	for len(msgs) > 0 {
		q := msgs[0].Queue
		var seqs []uint64
		var stubs [][]byte
		for len(msgs) > 0 && msgs[0].Queue == q {
			m := msgs[0]
			msgs = msgs[1:]
			file, off := b.jrn.Location(m.Ref)
			b.log.Warn("salvage: dead-lettering a message whose body is damaged", "queue", q, "seq", m.Seq, "file", file, "offset", off, "err", why[m.Ref])
			seqs = append(seqs, m.Seq)
			stubs = append(stubs, damagedStub(file, off, why[m.Ref]))
		}
		r, err := b.eng.Damaged(b.nowLocked(), q, seqs, stubs)
		if err != nil {
			return fmt.Errorf("salvage: %w", err)
		}
		b.encBuf = r.Encode(b.encBuf[:0])
		pos, bt, err := b.jrn.Append(b.encBuf)
		if err != nil {
			return fmt.Errorf("salvage: %w", err)
		}
		if err := b.eng.Apply(r, pos); err != nil {
			return fmt.Errorf("salvage: %w", err)
		}
		batch = bt
	}
	b.mu.Unlock()
	defer b.mu.Lock()
	return wait(context.Background(), batch)
}

// damagedStub is the replacement blob of a damaged message: no body, and
// where the damage was.
func damagedStub(file string, off int64, why error) []byte {
	h := map[string]string{HeaderDamagedFile: file, HeaderDamagedOffset: strconv.FormatInt(off, 10)}
	if why != nil {
		h[HeaderDamagedError] = why.Error()
	}
	return engine.AppendBlob(nil, "", "", h, nil)
}

// Offline repair (`chute journal repair`).
//
// Repair keeps every intact record and every intact body, and says exactly
// what it could not keep. In order:
//
//  1. Take the directory's lock; survey every segment frame by frame,
//     resynchronising after each damaged region (journal.Survey).
//  2. Rebuild the state in a fresh engine: the checkpoint, then every
//     intact record after its position, in order, including those after a
//     damaged region. A record lost in the damage may leave later ones
//     that no longer fit (the ack of a message whose publish was lost, a
//     publish whose sequence follows lost ones): each item that does not
//     apply is skipped and listed, and the sequences of lost publishes are
//     skipped (engine.SkipTo) and listed as lost.
//  3. Check the body of every queued message stored in a damaged segment.
//     A damaged one is lost: its message is dead-lettered with reason
//     "damaged" (engine.Damaged). An intact one stored after the first
//     damage of its segment is copied forward, since the segment is cut
//     there.
//  4. Unless --dry-run: write a new segment holding the copies and the
//     damaged records, then a checkpoint after it, then move every
//     damaged file to DIR/quarantine/STAMP/ and put back each segment's
//     intact prefix. Repair never deletes: the quarantine keeps the
//     originals byte for byte.
//
// A torn tail of the last segment is not damage: Open cuts it, and repair
// leaves it to Open. If repair is interrupted, run it again: the new
// checkpoint is written before any file moves.

// RepairOptions configure Repair. The zero value works.
type RepairOptions struct {
	FS     vfs.FS // default the OS
	DryRun bool   // report only; change nothing
	Logger *slog.Logger
}

// RepairReport is what Repair found and did (or, with DryRun, would do).
type RepairReport struct {
	Dir    string
	DryRun bool
	// Damage lists every damaged region, and damaged or missing file.
	Damage []journal.Damage
	// Torn is a torn tail of the last segment (never confirmed; Open
	// cuts it), nil if none.
	Torn *journal.Damage
	// Lost lists the queued messages whose body was damaged: each is
	// dead-lettered with reason "damaged" (or discarded, if its queue has
	// no dead-letter queue).
	Lost []LostMessage
	// LostSeqs are sequence ranges of publishes whose record was lost:
	// those messages (of unknown queue) are gone.
	LostSeqs [][2]uint64
	// Skipped lists intact records, after damage, that no longer applied.
	Skipped []string
	// Carried is how many intact bodies were copied out of cut segments.
	Carried int
	// Quarantine is where the damaged files were moved.
	Quarantine string
	Moved      []string
	// Checkpoint is the position of the new checkpoint (0: none written).
	Checkpoint uint64
}

// Sound reports whether there was nothing to repair.
func (r *RepairReport) Sound() bool { return len(r.Damage) == 0 }

// LostMessage is one queued message repair could not keep.
type LostMessage struct {
	Queue string
	Seq   uint64
	File  string // where its body was
	Off   int64
	Why   string
}

// Repair rebuilds a damaged journal in dir; see above. It takes the
// directory's lock (a running broker makes it fail with *LockedError).
func Repair(dir string, o RepairOptions) (*RepairReport, error) {
	fs := o.FS
	if fs == nil {
		fs = vfs.OS
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lock, err := LockDir(fs, dir)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	rep := &RepairReport{Dir: dir, DryRun: o.DryRun}
	eng, from, badCkpt, err := repairStart(fs, dir, rep)
	if err != nil {
		return rep, err
	}
	infos, err := journal.Survey(fs, dir, func(pos uint64, payload []byte) error {
		if pos >= from {
			repairApply(eng, pos, payload, rep, dir)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	byID, units := repairDamage(infos, from, rep, dir)
	for _, u := range eng.LiveUnits() {
		if byID[u] == nil {
			units[u] = true // bodies in a segment that is gone
		}
	}
	if len(rep.Damage) == 0 {
		return rep, nil // sound, or only a torn tail that Open cuts
	}
	carry, bad := repairBodies(fs, dir, eng, units, byID)
	now := max(time.Now().UnixNano(), eng.Now())
	newID := uint32(1)
	for id := range byID {
		newID = max(newID, id+1)
	}
	for _, u := range eng.LiveUnits() {
		newID = max(newID, u+1)
	}
	payloads, recs, moved := repairRecords(eng, now, carry, bad, rep, dir)
	data, pos, end := journal.NewSegment(newID, now, payloads)
	moves := map[uint64]uint64{}
	for ref, i := range moved {
		moves[ref] = pos[0] + uint64(recs[0].Msgs[i].BlobOff)
	}
	eng.Relocate(moves)
	for i, r := range recs {
		if r.Type == engine.RecDamaged {
			if err := eng.Apply(r, pos[i]); err != nil {
				return rep, fmt.Errorf("repair: %w", err)
			}
		}
	}
	if o.DryRun {
		return rep, nil
	}
	journal.RemoveRepairLeftovers(fs, dir)
	if err := journal.WriteNewFile(fs, journal.SegmentName(dir, newID), data); err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	qdir := journal.QuarantineDir(dir, time.Now().UTC().Format("20060102T150405Z"))
	if badCkpt != "" { // moved before the new checkpoint would delete it
		if err := moveToQuarantine(fs, dir, qdir, badCkpt); err != nil {
			return rep, err
		}
		rep.Moved = append(rep.Moved, badCkpt)
	}
	if err := journal.WriteCheckpointTo(fs, dir, end, eng.Snapshot(1<<20)); err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	rep.Checkpoint = end
	for _, in := range infos {
		if !in.Damaged() {
			continue
		}
		if err := journal.Quarantine(fs, dir, qdir, in.File, in.Keep); err != nil {
			return rep, fmt.Errorf("repair: %w", err)
		}
		rep.Moved = append(rep.Moved, in.File)
	}
	if len(rep.Moved) > 0 {
		rep.Quarantine = qdir
	}
	log.Info("repaired", "dir", dir, "lost", len(rep.Lost), "carried", rep.Carried, "quarantine", qdir)
	return rep, nil
}

// repairStart restores the checkpoint. A damaged one is replaced by a full
// replay when every segment since the first is still there; otherwise the
// state cannot be rebuilt.
func repairStart(fs vfs.FS, dir string, rep *RepairReport) (*engine.Engine, uint64, string, error) {
	from, snap, err := journal.ReadCheckpoint(fs, dir)
	var eng *engine.Engine
	if err == nil && snap != nil {
		eng, err = engine.Restore(snap)
		if err != nil {
			names, _ := fs.List(dir)
			for _, n := range names {
				if strings.HasSuffix(n, ".ckpt") {
					err = &chute.CorruptionError{File: path.Join(dir, n), Reason: err.Error()}
				}
			}
		}
	}
	if err == nil {
		if eng == nil {
			eng = engine.New()
		}
		return eng, from, "", nil
	}
	var ce *chute.CorruptionError
	if !errors.As(err, &ce) {
		return nil, 0, "", err
	}
	f, statErr := fs.Open(journal.SegmentName(dir, 1))
	if statErr == nil {
		f.Close()
	} else {
		return nil, 0, "", fmt.Errorf("the checkpoint %s is damaged (%s) and the segments before it are gone: the state cannot be rebuilt from this directory; restore it from a backup", ce.File, ce.Reason)
	}
	rep.Damage = append(rep.Damage, journal.Damage{File: ce.File, Region: journal.Region{Reason: "checkpoint: " + ce.Reason}})
	return engine.New(), 0, ce.File, nil
}

// repairApply applies one intact record after the checkpoint, leniently.
func repairApply(eng *engine.Engine, pos uint64, payload []byte, rep *RepairReport, dir string) {
	where := fmt.Sprintf("%s offset %d", journal.SegmentName(dir, uint32(pos>>32)), pos&0xffffffff)
	r, err := engine.Decode(payload)
	if err != nil {
		rep.Skipped = append(rep.Skipped, fmt.Sprintf("record at %s: %v", where, err))
		return
	}
	pub := r
	if r.Type == engine.RecTx { // a transaction's first publish (tx.go)
		i := slices.IndexFunc(r.Parts, func(p *engine.Record) bool { return p.Type == engine.RecPublish })
		if i >= 0 {
			pub = r.Parts[i]
		}
	}
	if pub.Type == engine.RecPublish && pub.FirstSeq > eng.NextSeq() {
		rep.LostSeqs = append(rep.LostSeqs, [2]uint64{eng.NextSeq(), pub.FirstSeq - 1})
		eng.SkipTo(pub.FirstSeq)
	}
	if err := eng.Apply(r, pos); err != nil {
		rep.Skipped = append(rep.Skipped, fmt.Sprintf("%v %q at %s: %v", r.Type, r.Name, where, err))
	}
}

// repairDamage lists the damage the survey found and returns the segments
// by id and the ids of those whose bodies must be checked.
func repairDamage(infos []journal.SegmentInfo, from uint64, rep *RepairReport, dir string) (map[uint32]*journal.SegmentInfo, map[uint32]bool) {
	byID := map[uint32]*journal.SegmentInfo{}
	units := map[uint32]bool{}
	for i := range infos {
		in := &infos[i]
		byID[in.ID] = in
		if i > 0 && in.ID != infos[i-1].ID+1 && in.ID > uint32(from>>32) {
			for m := infos[i-1].ID + 1; m < in.ID; m++ {
				rep.Damage = append(rep.Damage, journal.Damage{File: journal.SegmentName(dir, m), Seg: m, Region: journal.Region{Reason: "segment missing"}})
			}
		}
		if !in.Damaged() {
			continue
		}
		if in.Torn {
			d := journal.Damage{File: in.File, Seg: in.ID, Region: journal.Region{Off: in.Keep, End: in.Size, Reason: "torn tail"}}
			rep.Torn = &d
			continue
		}
		units[in.ID] = true
		if in.HeaderErr != "" {
			rep.Damage = append(rep.Damage, journal.Damage{File: in.File, Seg: in.ID, Region: journal.Region{End: in.Size, Reason: "segment header: " + in.HeaderErr}})
		}
		for _, r := range in.Regions {
			rep.Damage = append(rep.Damage, journal.Damage{File: in.File, Seg: in.ID, Region: r})
		}
	}
	// A torn last segment is cut by repair too when it goes on (a new
	// segment follows it, and only the last may have a torn tail); its
	// frames after the cut were never applied.
	if rep.Torn != nil && len(rep.Damage) > 0 {
		units[rep.Torn.Seg] = true
	} else if rep.Torn != nil {
		byID[rep.Torn.Seg].Regions = nil // nothing to do: Open cuts it
	}
	return byID, units
}

// repairBodies reads every queued body stored in units: intact ones past
// their segment's intact prefix are to be carried forward, damaged ones
// are lost.
func repairBodies(fs vfs.FS, dir string, eng *engine.Engine, units map[uint32]bool, byID map[uint32]*journal.SegmentInfo) (map[uint64][]byte, map[uint64]error) {
	carry, bad := map[uint64][]byte{}, map[uint64]error{}
	for ref, size := range eng.Candidates(units, math.MaxInt64) {
		in := byID[uint32(ref>>32)]
		if in == nil {
			bad[ref] = errors.New("segment missing")
			continue
		}
		blob, err := journal.ReadFrom(fs, dir, ref, int(size))
		if err == nil {
			_, _, _, _, err = engine.DecodeBlob(blob)
		}
		switch {
		case err != nil:
			bad[ref] = err
		case int64(ref&0xffffffff)+int64(size) > in.Keep:
			carry[ref] = blob
		}
	}
	return carry, bad
}

// repairRecords builds the records of the new segment: a blobs record with
// the carried bodies (its index in recs is 0 when there is one; moved maps
// each old location to its message index there) and one damaged record
// per queue with lost messages.
func repairRecords(eng *engine.Engine, now int64, carry map[uint64][]byte, bad map[uint64]error, rep *RepairReport, dir string) ([][]byte, []*engine.Record, map[uint64]int) {
	var payloads [][]byte
	var recs []*engine.Record
	moved := map[uint64]int{}
	if len(carry) > 0 {
		r := &engine.Record{Type: engine.RecBlobs, Time: now}
		for _, ref := range slices.Sorted(maps.Keys(carry)) {
			moved[ref] = len(r.Msgs)
			r.Msgs = append(r.Msgs, engine.PubMsg{Blob: carry[ref]})
		}
		payloads = append(payloads, r.Encode(nil))
		recs = append(recs, r)
		rep.Carried = len(carry)
	}
	msgs := eng.Referring(mapKeys(bad))
	for len(msgs) > 0 {
		q := msgs[0].Queue
		var seqs []uint64
		var stubs [][]byte
		for len(msgs) > 0 && msgs[0].Queue == q {
			m := msgs[0]
			msgs = msgs[1:]
			file, off := journal.SegmentName(dir, uint32(m.Ref>>32)), int64(m.Ref&0xffffffff)
			rep.Lost = append(rep.Lost, LostMessage{Queue: q, Seq: m.Seq, File: file, Off: off, Why: bad[m.Ref].Error()})
			seqs = append(seqs, m.Seq)
			stubs = append(stubs, damagedStub(file, off, bad[m.Ref]))
		}
		r, err := eng.Damaged(now, q, seqs, stubs)
		if err != nil {
			continue // the queue exists: Referring found it there
		}
		payloads = append(payloads, r.Encode(nil))
		recs = append(recs, r)
	}
	return payloads, recs, moved
}

func moveToQuarantine(fs vfs.FS, dir, qdir, name string) error {
	if err := fs.MkdirAll(qdir); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if err := fs.Rename(name, path.Join(qdir, path.Base(name))); err != nil {
		return fmt.Errorf("quarantine %s: %w", name, err)
	}
	if err := fs.SyncDir(qdir); err != nil {
		return err
	}
	return fs.SyncDir(dir)
}
