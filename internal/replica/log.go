package replica

import (
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
type Log struct {
	j *journal.Journal
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
}

// OpenLog opens (or creates) the log in dir and returns what it holds. A
// torn tail is cut off (it was never synced, so never acknowledged);
// damage anywhere else is an error, *journal.CorruptionError or
// ErrLogDamaged.
func OpenLog(fs vfs.FS, dir string, opts LogOptions) (*Log, consensus.Durable, error) {
	j, err := journal.Open(journal.Options{FS: fs, Dir: dir, SegmentSize: opts.SegmentSize, Sync: journal.SyncAlways, Logger: opts.Logger})
	if err != nil {
		return nil, consensus.Durable{}, err
	}
	var d consensus.Durable
	err = j.Replay(0, func(payload []byte, pos uint64) error {
		hs, es, err := decodeLogRecord(payload)
		if err != nil {
			return fmt.Errorf("%w: record at %#x: %v", ErrLogDamaged, pos, err)
		}
		if len(es) > 0 {
			first := es[0].Index
			if first == 0 || first-1 > uint64(len(d.Entries)) {
				return fmt.Errorf("%w: record at %#x: entries from %d after a log of %d", ErrLogDamaged, pos, first, len(d.Entries))
			}
			d.Entries = append(d.Entries[:first-1], es...)
		}
		if hs != nil {
			d.HardState = *hs
		}
		return nil
	})
	if err != nil {
		j.Close()
		return nil, consensus.Durable{}, err
	}
	return &Log{j: j}, d, nil
}

// Save appends an Update's hard state (nil: unchanged) and entries as one
// record; the batch completes once it is synced.
func (l *Log) Save(hs *consensus.HardState, es []consensus.Entry) (*journal.Batch, error) {
	_, b, err := l.j.Append(encodeLogRecord(hs, es))
	return b, err
}

// Close closes the journal.
func (l *Log) Close() error { return l.j.Close() }

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
