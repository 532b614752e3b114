package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/chutemq/chute/internal/consensus"
	"github.com/chutemq/chute/internal/journal"
	"github.com/chutemq/chute/internal/vfs"
)

// Log is a node's Raft log and hard state, kept in chute's journal: the
// journal is the Raft log, with no second write of a command. Each Update
// is one journal record holding its entries and then its hard state, so
// the record's checksum makes it all-or-nothing: a crash cannot keep a
// hard state whose commit index names entries it lost. Entries replace
// those at their indexes and after, as the library requires, by being
// appended after them: replay applies records in order, and a later
// record's first index cuts the log there.
//
// The journal syncs every record before its batch completes (SyncAlways):
// the library's contract that hard state and entries are durable before
// the messages that depend on them are sent.
//
// A snapshot (SaveSnapshot) is a journal checkpoint: the snapshot, the
// hard state and the entries after the snapshot, stored at the journal's
// tail. Replay starts there, and the segments before it are released.
type Log struct {
	j *journal.Journal
	// hs is the last hard state saved and snap the index of the last
	// snapshot: with the entries the caller gives, what a checkpoint
	// written now must hold. (The entries themselves are the Raft node's
	// to keep in memory, not the log's a second time.)
	hs   consensus.HardState
	snap uint64
	// unsaved: hs moved the commit index since it was last written (Save).
	unsaved bool
	// bg: compactions' checkpoints are written by a goroutine of the
	// log's (LogOptions.Background); writing is the one being written
	// (nil: none), failed the first error one of them met.
	bg      bool
	writing *ckptWrite
	failed  error
}

// ckptWrite is a checkpoint being written off the caller's goroutine:
// done is closed once it is in place and the segments before it are
// released, or err is set.
type ckptWrite struct {
	done chan struct{}
	err  error
}

// ErrLogDamaged: a record of the log that passed the journal's checksum
// but does not fit (another format, or entries with a gap): the replica
// must be rebuilt from its peers, not salvaged.
var ErrLogDamaged = errors.New("replica: raft log damaged")

// logVersion is the first byte of every log record.
const logVersion = 1

// LogOptions configure OpenLog.
type LogOptions struct {
	// SegmentSize is the journal's segment size (0: the journal's default).
	SegmentSize int64
	Logger      *slog.Logger
	// ReclaimSlice is the journal's (journal.Options): 0 removes a
	// released segment at once, as the simulation needs.
	ReclaimSlice int64
	// FillAhead is the journal's (journal.Options): 0 writes no zeros
	// ahead of the tail (the simulation).
	FillAhead int64
	// Background: the checkpoint of a snapshot the node made from its own
	// state (Replica.Compact) is written and synced by a goroutine of the
	// log's, while the caller goes on appending (a server's node: writing
	// a checkpoint of 143 MB held its loop 1.2-1.5 s in the sixteenth
	// session's measurements, against an election timeout of 100-200 ms;
	// docs/replication.md). Off, every checkpoint is written by the
	// caller (the simulation, whose schedule is its seed's alone).
	Background bool
}

// OpenLog opens (or creates) the log in dir and returns what it holds. A
// torn tail is cut off (it was never synced, so never acknowledged);
// damage anywhere else is an error, *journal.CorruptionError or
// ErrLogDamaged.
func OpenLog(fs vfs.FS, dir string, opts LogOptions) (*Log, consensus.Durable, error) {
	j, err := journal.Open(journal.Options{FS: fs, Dir: dir, SegmentSize: opts.SegmentSize, Sync: journal.SyncAlways, Logger: opts.Logger, ReclaimSlice: opts.ReclaimSlice, FillAhead: opts.FillAhead})
	if err != nil {
		return nil, consensus.Durable{}, err
	}
	var d consensus.Durable
	from, ckpt, err := j.LoadCheckpoint()
	if err == nil && ckpt != nil {
		d, err = decodeCheckpoint(ckpt)
	}
	if err == nil {
		err = j.Replay(from, func(payload []byte, pos uint64) error {
			hs, es, err := decodeLogRecord(payload)
			if err == nil {
				err = replay(&d, hs, es)
			}
			if err != nil {
				return fmt.Errorf("%w: record at %#x: %v", ErrLogDamaged, pos, err)
			}
			return nil
		})
	}
	if err != nil {
		j.Close()
		return nil, consensus.Durable{}, err
	}
	l := &Log{j: j, hs: d.HardState, bg: opts.Background}
	if d.Snapshot != nil {
		l.snap = d.Snapshot.Index
	}
	return l, d, nil
}

// replay puts a saved hard state and entries into d: entries cut the log
// at their first index (those the snapshot covers are dropped).
func replay(d *consensus.Durable, hs *consensus.HardState, es []consensus.Entry) error {
	var base uint64 // the index the entries follow
	if d.Snapshot != nil {
		base = d.Snapshot.Index
	}
	for len(es) > 0 && es[0].Index <= base {
		es = es[1:]
	}
	if len(es) > 0 {
		rel := es[0].Index - base - 1
		if rel > uint64(len(d.Entries)) {
			return fmt.Errorf("entries from %d after a log to %d", es[0].Index, base+uint64(len(d.Entries)))
		}
		d.Entries = append(d.Entries[:rel], es...)
	}
	if hs != nil {
		d.HardState = *hs
	}
	return nil
}

// Save appends an Update's hard state (nil: unchanged) and entries as one
// record; the batch completes once it is synced.
//
// A hard state that only moves the commit index, with nothing to append,
// is not written: it is kept, and written with the next record (or
// checkpoint), and Save returns a nil batch. The library does not need a
// commit index synced (it is learnt again from the leader, and a leader
// commits again what a quorum holds), and writing it cost syncs of their
// own: the journal syncs whatever is written (a sixth of a node's syncs
// at 2,000 messages/s, one pair of runs; docs/replication.md, "The
// latency tail, sixth session").
func (l *Log) Save(hs *consensus.HardState, es []consensus.Entry) (*journal.Batch, error) {
	if len(es) == 0 && hs != nil && hs.Term == l.hs.Term && hs.Vote == l.hs.Vote && hs.Commit >= l.hs.Commit {
		l.hs, l.unsaved = *hs, true
		return nil, nil
	}
	if hs == nil && l.unsaved {
		kept := l.hs
		hs = &kept
	}
	_, b, err := l.j.Append(encodeLogRecord(hs, es))
	if err == nil && hs != nil {
		l.hs, l.unsaved = *hs, false
	}
	return b, err
}

// SaveSnapshot makes snap the log's start, durably, and releases the
// segments before it. after is the log's entries after snap's index: those
// of a snapshot the node made from its own state (a leader's snapshot
// replaces the whole log, as the library does: none). It waits for
// everything saved before it to be synced (the checkpoint stands for it),
// then writes the checkpoint. A checkpoint still being written in the
// background (Compact) is waited for first.
func (l *Log) SaveSnapshot(ctx context.Context, snap *consensus.Snapshot, after []consensus.Entry) error {
	return l.saveSnapshot(ctx, snap, nil, after, false)
}

// Compact is SaveSnapshot for a snapshot the node made from its own state,
// whose Data data returns: with LogOptions.Background, data is called,
// and the checkpoint written, by a goroutine of the log's, and Compact
// returns at once (ctx is then not the write's); snap.Data is set once
// Busy says the write is over.
//
// Meanwhile the caller goes on saving: records after the checkpoint's
// position are replayed on top of it, as they are once it is in place. A
// crash before it is in place finds the previous checkpoint and every
// segment since (none is released before the new checkpoint is synced),
// so what was durable stays durable. Busy says whether that write is
// still going on (Replica.Compact makes no second snapshot meanwhile);
// its error, if it failed, is the next SaveSnapshot's, Compact's or
// Busy's.
func (l *Log) Compact(ctx context.Context, snap *consensus.Snapshot, data func() []byte, after []consensus.Entry) error {
	if l.bg {
		ctx = context.Background() // the write outlives the call; Close waits for it
	}
	return l.saveSnapshot(ctx, snap, data, after, l.bg)
}

// Busy says whether a checkpoint is still being written in the background,
// or returns the error that one met.
func (l *Log) Busy() (bool, error) { return l.settle(false) }

// settle forgets the background checkpoint once it is written (waiting for
// it, if wait) and returns whether it is still being written, and the
// error it (or an earlier one) met.
func (l *Log) settle(wait bool) (busy bool, err error) {
	if w := l.writing; w != nil {
		if !wait {
			select {
			case <-w.done:
			default:
				return true, nil
			}
		}
		<-w.done
		l.writing = nil
		if w.err != nil && l.failed == nil {
			l.failed = w.err
		}
	}
	return false, l.failed
}

// saveSnapshot: data, if not nil, is called for snap.Data, on the
// goroutine that writes the checkpoint.
func (l *Log) saveSnapshot(ctx context.Context, snap *consensus.Snapshot, data func() []byte, after []consensus.Entry, background bool) error {
	if _, err := l.settle(true); err != nil {
		return fmt.Errorf("replica: snapshot: an earlier checkpoint: %w", err)
	}
	if snap.Index <= l.snap {
		return nil // not newer than the one in place
	}
	// A restart must not find a commit index below the snapshot's.
	l.hs.Commit = max(l.hs.Commit, snap.Index)
	seg, off := l.j.Tail()
	pos := uint64(seg)<<32 | uint64(off)
	hs := l.hs
	// The hard state is in the checkpoint; should the checkpoint fail, so
	// does the log (settle), and the commit index is learnt again.
	l.snap, l.unsaved = snap.Index, false
	write := func() error {
		if data != nil {
			snap.Data = data()
		}
		ckpt := encodeCheckpoint(consensus.Durable{HardState: hs, Snapshot: snap, Entries: after})
		if err := l.j.Sync(ctx); err != nil {
			return fmt.Errorf("replica: snapshot: %w", err)
		}
		if err := l.j.WriteCheckpoint(pos, ckpt); err != nil {
			return fmt.Errorf("replica: snapshot: %w", err)
		}
		for _, id := range l.j.Segments() {
			if id >= seg {
				break
			}
			if err := l.j.Release(id); err != nil {
				return fmt.Errorf("replica: release segment %d: %w", id, err)
			}
		}
		return nil
	}
	if !background {
		err := write()
		if err != nil {
			l.failed = err
		}
		return err
	}
	w := &ckptWrite{done: make(chan struct{})}
	l.writing = w
	go func() {
		defer close(w.done)
		w.err = write()
	}()
	return nil
}

// Segments is how many journal segments the log holds.
func (l *Log) Segments() int { return len(l.j.Segments()) }

// Stats are the log's journal's counters.
func (l *Log) Stats() journal.Stats { return l.j.Stats() }

// encodeCheckpoint: version, the snapshot (index, term, voters, learners,
// data), then the entries and hard state as a log record; in pieces, so
// that the snapshot's data, which can be hundreds of MB
// (Shard.Snapshot), is written from where it is and not copied.
func encodeCheckpoint(d consensus.Durable) [][]byte {
	s := d.Snapshot
	buf := []byte{logVersion}
	buf = binary.AppendUvarint(buf, s.Index)
	buf = binary.AppendUvarint(buf, s.Term)
	for _, ids := range [][]uint64{s.Voters, s.Learners} {
		buf = binary.AppendUvarint(buf, uint64(len(ids)))
		for _, id := range ids {
			buf = binary.AppendUvarint(buf, id)
		}
	}
	buf = binary.AppendUvarint(buf, uint64(len(s.Data)))
	return [][]byte{buf, s.Data, encodeLogRecord(&d.HardState, d.Entries)}
}

func decodeCheckpoint(b []byte) (consensus.Durable, error) {
	dec := decoder{b: b}
	if v := dec.byte(); v != logVersion && dec.err == nil {
		return consensus.Durable{}, fmt.Errorf("%w: checkpoint version %d", ErrLogDamaged, v)
	}
	s := &consensus.Snapshot{Index: dec.uvarint(), Term: dec.uvarint()}
	for _, ids := range []*[]uint64{&s.Voters, &s.Learners} {
		*ids = make([]uint64, dec.count(1))
		for i := range *ids {
			(*ids)[i] = dec.uvarint()
		}
	}
	s.Data = append([]byte(nil), dec.bytes()...)
	if dec.err != nil {
		return consensus.Durable{}, fmt.Errorf("%w: checkpoint: %v", ErrLogDamaged, dec.err)
	}
	hs, es, err := decodeLogRecord(dec.b)
	if err != nil || hs == nil || len(es) > 0 && es[0].Index != s.Index+1 {
		return consensus.Durable{}, fmt.Errorf("%w: checkpoint: entries or hard state: %v", ErrLogDamaged, err)
	}
	return consensus.Durable{HardState: *hs, Snapshot: s, Entries: es}, nil
}

// Close waits for a checkpoint being written in the background, then
// closes the journal.
func (l *Log) Close() error {
	l.settle(true)
	return l.j.Close()
}

// encodeLogRecord: version, the entries (count, then index, term, kind and
// data of each), then a hard-state flag and the hard state.
func encodeLogRecord(hs *consensus.HardState, es []consensus.Entry) []byte {
	n := 16
	for _, e := range es {
		n += 24 + len(e.Data)
	}
	buf := make([]byte, 0, n)
	buf = append(buf, logVersion)
	buf = binary.AppendUvarint(buf, uint64(len(es)))
	for _, e := range es {
		buf = binary.AppendUvarint(buf, e.Index)
		buf = binary.AppendUvarint(buf, e.Term)
		buf = append(buf, byte(e.Kind))
		buf = binary.AppendUvarint(buf, uint64(len(e.Data)))
		buf = append(buf, e.Data...)
	}
	if hs == nil {
		return append(buf, 0)
	}
	buf = append(buf, 1)
	buf = binary.AppendUvarint(buf, hs.Term)
	buf = binary.AppendUvarint(buf, hs.Vote)
	return binary.AppendUvarint(buf, hs.Commit)
}

// decodeLogRecord reads a record; entries' data is copied (the journal's
// buffer is reused).
func decodeLogRecord(b []byte) (*consensus.HardState, []consensus.Entry, error) {
	d := decoder{b: b}
	if v := d.byte(); v != logVersion && d.err == nil {
		return nil, nil, fmt.Errorf("version %d", v)
	}
	es := make([]consensus.Entry, d.count(4))
	for i := range es {
		e := &es[i]
		e.Index, e.Term = d.uvarint(), d.uvarint()
		e.Kind = consensus.EntryKind(d.byte())
		e.Data = append([]byte(nil), d.bytes()...)
		if i > 0 && e.Index != es[i-1].Index+1 && d.err == nil {
			d.fail("entries %d then %d", es[i-1].Index, e.Index)
		}
	}
	var hs *consensus.HardState
	if d.byte() == 1 {
		hs = &consensus.HardState{Term: d.uvarint(), Vote: d.uvarint(), Commit: d.uvarint()}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the record", len(d.b))
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	return hs, es, nil
}
