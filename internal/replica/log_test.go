package replica

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/consensus"
	"github.com/chutemq/chute/internal/journal"
	"github.com/chutemq/chute/internal/vfs"
)

// logModel is what a Log must hold after a sequence of saves. kept is a
// hard state that moved the commit index alone, which the log keeps and
// writes with its next record (Log.Save).
type logModel struct {
	d    consensus.Durable
	kept *consensus.HardState
}

// last is the hard state the log was last given.
func (m *logModel) lastHS() consensus.HardState {
	if m.kept != nil {
		return *m.kept
	}
	return m.d.HardState
}

func (m *logModel) base() uint64 {
	if m.d.Snapshot != nil {
		return m.d.Snapshot.Index
	}
	return 0
}

func (m *logModel) last() uint64 { return m.base() + uint64(len(m.d.Entries)) }

func (m *logModel) save(hs *consensus.HardState, es []consensus.Entry) {
	if last := m.lastHS(); len(es) == 0 && hs != nil && hs.Term == last.Term && hs.Vote == last.Vote && hs.Commit >= last.Commit {
		m.kept = hs
		return
	}
	if hs == nil {
		hs = m.kept
	}
	m.kept = nil
	if len(es) > 0 {
		rel := es[0].Index - m.base() - 1
		m.d.Entries = append(m.d.Entries[:rel:rel], es...)
	}
	if hs != nil {
		m.d.HardState = *hs
	}
}

func (m *logModel) snapshot(s *consensus.Snapshot, replace bool) {
	if replace {
		m.d.Entries = nil
	} else {
		m.d.Entries = m.d.Entries[s.Index-m.base():]
	}
	m.d.Snapshot = s
	m.d.HardState, m.kept = m.lastHS(), nil
	m.d.HardState.Commit = max(m.d.HardState.Commit, s.Index)
}

func (m *logModel) clone() consensus.Durable {
	return consensus.Durable{HardState: m.d.HardState, Snapshot: m.d.Snapshot, Entries: append([]consensus.Entry(nil), m.d.Entries...)}
}

func sameDurable(a, b consensus.Durable) bool {
	if a.HardState != b.HardState || len(a.Entries) != len(b.Entries) || (a.Snapshot == nil) != (b.Snapshot == nil) {
		return false
	}
	if s, t := a.Snapshot, b.Snapshot; s != nil && (s.Index != t.Index || s.Term != t.Term || string(s.Data) != string(t.Data) ||
		!slices.Equal(s.Voters, t.Voters) || !slices.Equal(s.Learners, t.Learners)) {
		return false
	}
	for i := range a.Entries {
		x, y := a.Entries[i], b.Entries[i]
		if x.Index != y.Index || x.Term != y.Term || x.Kind != y.Kind || string(x.Data) != string(y.Data) {
			return false
		}
	}
	return true
}

// genSave draws one Update's worth: entries from an index at most one
// past the log (a conflict cuts the log there), and maybe a hard state.
func genSave(t *rapid.T, m *logModel, term *uint64) (*consensus.HardState, []consensus.Entry) {
	last := m.last()
	var es []consensus.Entry
	if n := rapid.IntRange(0, 4).Draw(t, "n"); n > 0 {
		// From the entry after the last, or up to three back (not into
		// the snapshot).
		lo := max(m.base()+1, last-min(last, 3)+1)
		first := rapid.Uint64Range(min(lo, last+1), last+1).Draw(t, "first")
		*term += rapid.Uint64Range(0, 1).Draw(t, "termUp")
		for i := range n {
			es = append(es, consensus.Entry{Index: first + uint64(i), Term: *term,
				Kind: consensus.EntryKind(rapid.IntRange(0, 1).Draw(t, "kind")),
				Data: rapid.SliceOfN(rapid.Byte(), 1, 300).Draw(t, "data")})
		}
	}
	var hs *consensus.HardState
	if rapid.Bool().Draw(t, "hs") || len(es) == 0 {
		hs = &consensus.HardState{Term: *term, Vote: rapid.Uint64Range(0, 5).Draw(t, "vote"), Commit: max(m.d.HardState.Commit, m.base())}
	}
	return hs, es
}

// TestLogCrash: after any sequence of saves and a power loss at any
// moment, the log reopens as it was after some prefix of the saves that
// contains every save whose batch had completed (synced): nothing
// acknowledged is lost, nothing is invented, a torn tail is cut.
func TestLogCrash(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		fs := vfs.NewMemFS()
		seg := int64(rapid.IntRange(512, 4096).Draw(t, "segment"))
		l, d, err := OpenLog(fs, "log", LogOptions{SegmentSize: seg})
		if err != nil {
			t.Fatal(err)
		}
		if !sameDurable(d, consensus.Durable{}) {
			t.Fatalf("a new log holds %+v", d)
		}
		var m logModel
		states := []consensus.Durable{m.clone()}
		term, synced := uint64(1), 0
		saves := rapid.IntRange(1, 30).Draw(t, "saves")
		async := rapid.IntRange(0, 3).Draw(t, "async") // the last saves are not waited for
		var batches []*journal.Batch
		for i := range saves {
			if i < saves-async && rapid.IntRange(0, 5).Draw(t, "snap?") == 0 {
				// A snapshot: of the node's own state up to an index it has,
				// or one from a leader, which may be ahead of its log.
				replace := rapid.Bool().Draw(t, "replace")
				hi := m.last()
				if replace {
					hi += 5
				}
				if hi > m.base() {
					snap := &consensus.Snapshot{Index: rapid.Uint64Range(m.base()+1, hi).Draw(t, "at"), Term: term,
						Voters: []uint64{1, 2, 3}, Data: rapid.SliceOfN(rapid.Byte(), 1, 100).Draw(t, "state")}
					var after []consensus.Entry // a leader's snapshot replaces the log
					if !replace {
						after = m.d.Entries[snap.Index-m.base():]
					}
					if err := l.SaveSnapshot(context.Background(), snap, after); err != nil {
						t.Fatal(err)
					}
					m.snapshot(snap, replace)
					states = append(states, m.clone())
					batches = append(batches, nil)
					synced = len(states) - 1
					continue
				}
			}
			hs, es := genSave(t, &m, &term)
			m.save(hs, es)
			states = append(states, m.clone())
			b, err := l.Save(hs, es)
			if err != nil {
				t.Fatal(err)
			}
			batches = append(batches, b)
			if b == nil { // a commit index alone, kept: nothing written
				if !sameDurable(m.d, states[len(states)-2]) {
					t.Fatalf("save %d wrote nothing, but the model moved", i)
				}
				if i < saves-async && synced == len(states)-2 {
					synced = len(states) - 1
				}
				continue
			}
			if i < saves-async {
				if err := b.Wait(context.Background()); err != nil {
					t.Fatal(err)
				}
				synced = len(states) - 1
			}
		}
		crashed := fs.CrashClone(rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 1)))
		for _, b := range batches {
			if b != nil {
				b.Wait(context.Background())
			}
		}
		l.Close()
		l2, got, err := OpenLog(crashed, "log", LogOptions{SegmentSize: seg})
		if err != nil {
			t.Fatalf("reopen after the crash: %v", err)
		}
		defer l2.Close()
		for k := synced; k < len(states); k++ {
			if sameDurable(got, states[k]) {
				return
			}
		}
		t.Fatalf("reopened as %+v: not the state after any of saves %d..%d", got, synced, len(states)-1)
	})
}

// TestLogReopen: a log closed cleanly reopens with every save, entries
// replaced where a later save cut the log.
func TestLogReopen(t *testing.T) {
	fs := vfs.NewMemFS()
	l, _, err := OpenLog(fs, "log", LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	save := func(hs *consensus.HardState, es ...consensus.Entry) {
		b, err := l.Save(hs, es)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	save(&consensus.HardState{Term: 1, Vote: 1}, consensus.Entry{Index: 1, Term: 1, Kind: consensus.Membership, Data: []byte{1, 2}},
		consensus.Entry{Index: 2, Term: 1, Data: []byte("a")}, consensus.Entry{Index: 3, Term: 1, Data: []byte("b")})
	save(nil, consensus.Entry{Index: 3, Term: 2, Data: []byte("c")}) // cuts "b"
	save(&consensus.HardState{Term: 2, Vote: 3, Commit: 3})
	l.Close()
	l, got, err := OpenLog(fs, "log", LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	want := consensus.Durable{HardState: consensus.HardState{Term: 2, Vote: 3, Commit: 3}, Entries: []consensus.Entry{
		{Index: 1, Term: 1, Kind: consensus.Membership, Data: []byte{1, 2}}, {Index: 2, Term: 1, Data: []byte("a")}, {Index: 3, Term: 2, Data: []byte("c")}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened as %+v, want %+v", got, want)
	}
}

// TestLogDamage: a bit flipped in a sealed segment is damage, reported
// with its file, never replayed as a log.
func TestLogDamage(t *testing.T) {
	fs := vfs.NewMemFS()
	l, _, err := OpenLog(fs, "log", LogOptions{SegmentSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		b, err := l.Save(nil, []consensus.Entry{{Index: uint64(i + 1), Term: 1, Data: make([]byte, 100)}})
		if err != nil {
			t.Fatal(err)
		}
		b.Wait(context.Background())
	}
	l.Close()
	name := journal.SegmentName("log", 1)
	data, err := fs.Bytes(name)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x10
	if err := fs.SetBytes(name, data); err != nil {
		t.Fatal(err)
	}
	_, _, err = OpenLog(fs, "log", LogOptions{SegmentSize: 512})
	var ce *chute.CorruptionError
	if !errors.As(err, &ce) {
		t.Fatalf("open over a flipped bit: %v", err)
	}
}

// TestLogSnapshotReleases: a snapshot lets the segments before it go,
// and the log reopens from it with the entries saved after it.
func TestLogSnapshotReleases(t *testing.T) {
	fs := vfs.NewMemFS()
	l, _, err := OpenLog(fs, "log", LogOptions{SegmentSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	save := func(from, to uint64) {
		for i := from; i <= to; i++ {
			b, err := l.Save(&consensus.HardState{Term: 1, Commit: i}, []consensus.Entry{{Index: i, Term: 1, Data: make([]byte, 100)}})
			if err != nil {
				t.Fatal(err)
			}
			b.Wait(context.Background())
		}
	}
	save(1, 50)
	before := l.Segments()
	snap := &consensus.Snapshot{Index: 45, Term: 1, Voters: []uint64{1}, Data: []byte("state at 45")}
	after := make([]consensus.Entry, 5) // entries 46–50, still in the log
	for i := range after {
		after[i] = consensus.Entry{Index: uint64(46 + i), Term: 1, Data: make([]byte, 100)}
	}
	if err := l.SaveSnapshot(context.Background(), snap, after); err != nil {
		t.Fatal(err)
	}
	if after := l.Segments(); before < 10 || after > 1 {
		t.Fatalf("segments: %d before the snapshot, %d after (want at most 1)", before, after)
	}
	save(51, 52)
	l.Close()
	l, got, err := OpenLog(fs, "log", LogOptions{SegmentSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got.Snapshot == nil || got.Snapshot.Index != 45 || string(got.Snapshot.Data) != "state at 45" || got.HardState.Commit != 52 {
		t.Fatalf("reopened with snapshot %+v, hard state %+v", got.Snapshot, got.HardState)
	}
	if len(got.Entries) != 7 || got.Entries[0].Index != 46 || got.Entries[6].Index != 52 {
		t.Fatalf("reopened with %d entries from %d", len(got.Entries), got.Entries[0].Index)
	}
}

// TestLogKeepsCommit: a hard state that moves the commit index alone is
// not written (no batch, no sync); the next record carries it, and a
// restart before then finds the commit index of the last record.
func TestLogKeepsCommit(t *testing.T) {
	fs := vfs.NewMemFS()
	open := func() (*Log, consensus.Durable) {
		l, d, err := OpenLog(fs, "log", LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return l, d
	}
	l, _ := open()
	save := func(hs *consensus.HardState, es ...consensus.Entry) *journal.Batch {
		b, err := l.Save(hs, es)
		if err != nil {
			t.Fatal(err)
		}
		if b != nil {
			if err := b.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	e := func(i uint64) consensus.Entry { return consensus.Entry{Index: i, Term: 1, Data: []byte{byte(i)}} }
	save(&consensus.HardState{Term: 1, Vote: 1}, e(1), e(2))
	syncs := l.Stats().Syncs
	if b := save(&consensus.HardState{Term: 1, Vote: 1, Commit: 2}); b != nil {
		t.Fatal("a commit index alone was written")
	}
	if got := l.Stats().Syncs; got != syncs {
		t.Fatalf("%d syncs for a commit index alone", got-syncs)
	}
	l.Close()
	l, d := open()
	if d.HardState.Commit != 0 || len(d.Entries) != 2 {
		t.Fatalf("after a restart: commit %d, %d entries; want 0 and 2", d.HardState.Commit, len(d.Entries))
	}
	save(&consensus.HardState{Term: 1, Vote: 1, Commit: 2})
	save(nil, e(3)) // carries the kept commit index
	l.Close()
	l, d = open()
	if d.HardState.Commit != 2 || len(d.Entries) != 3 {
		t.Fatalf("after the next record: commit %d, %d entries; want 2 and 3", d.HardState.Commit, len(d.Entries))
	}
	// A new term or vote is written at once.
	if b := save(&consensus.HardState{Term: 2, Vote: 3, Commit: 2}); b == nil {
		t.Fatal("a new term was kept, not written")
	}
	l.Close()
	l, d = open()
	defer l.Close()
	if d.HardState.Term != 2 {
		t.Fatalf("term %d after a restart, want 2", d.HardState.Term)
	}
}

// TestLogCompactBackground: with LogOptions.Background, Compact returns
// while its checkpoint is still being written; the caller goes on saving
// meanwhile; a crash before the checkpoint is in place finds everything
// saved, from the earlier state; once it is in place the segments before
// it are gone and the log reopens from it with every later save. A
// checkpoint that fails fails the log: Busy and the next snapshot say so,
// and the disk still holds the earlier state whole.
func TestLogCompactBackground(t *testing.T) {
	entry := func(i uint64) consensus.Entry { return consensus.Entry{Index: i, Term: 1, Data: make([]byte, 100)} }
	open := func(fs vfs.FS) (*Log, consensus.Durable) {
		t.Helper()
		l, d, err := OpenLog(fs, "log", LogOptions{SegmentSize: 512, Background: true})
		if err != nil {
			t.Fatal(err)
		}
		return l, d
	}
	save := func(l *Log, from, to uint64) {
		t.Helper()
		for i := from; i <= to; i++ {
			b, err := l.Save(&consensus.HardState{Term: 1, Commit: i}, []consensus.Entry{entry(i)})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(d consensus.Durable, snap, last uint64) {
		t.Helper()
		if snap == 0 && d.Snapshot != nil || snap != 0 && (d.Snapshot == nil || d.Snapshot.Index != snap) {
			t.Fatalf("reopened with snapshot %+v, want one at %d", d.Snapshot, snap)
		}
		if len(d.Entries) != int(last-snap) || len(d.Entries) > 0 && (d.Entries[0].Index != snap+1 || d.Entries[len(d.Entries)-1].Index != last) {
			t.Fatalf("reopened with %d entries, want %d..%d", len(d.Entries), snap+1, last)
		}
		if d.HardState.Commit != last {
			t.Fatalf("reopened with commit %d, want %d", d.HardState.Commit, last)
		}
		if snap != 0 && string(d.Snapshot.Data) != "state at 45" {
			t.Fatalf("reopened with snapshot data %q", d.Snapshot.Data)
		}
	}
	snapAt45 := func() (*consensus.Snapshot, []consensus.Entry) {
		var after []consensus.Entry
		for i := uint64(46); i <= 50; i++ {
			after = append(after, entry(i))
		}
		return &consensus.Snapshot{Index: 45, Term: 1, Voters: []uint64{1}}, after
	}
	state45 := func() []byte { return []byte("state at 45") } // assembled by the log's goroutine
	isCkpt := func(op vfs.Op, name string) bool { return op == vfs.OpSync && strings.HasSuffix(name, ".ckpt.tmp") }

	{ // written meanwhile
		mem := vfs.NewMemFS()
		gate, entered := make(chan struct{}), make(chan struct{}, 1)
		fs := vfs.NewFaulty(mem, func(op vfs.Op, name string) error {
			if isCkpt(op, name) {
				entered <- struct{}{}
				<-gate
			}
			return nil
		})
		l, _ := open(fs)
		save(l, 1, 50)
		before := l.Segments()
		seg, _ := l.j.Tail()
		snap, after := snapAt45()
		if err := l.Compact(context.Background(), snap, state45, after); err != nil {
			t.Fatal(err)
		}
		<-entered // the checkpoint is written, its sync held
		if busy, err := l.Busy(); !busy || err != nil {
			t.Fatalf("Busy while the checkpoint's sync is held: %v, %v", busy, err)
		}
		save(l, 51, 60) // the caller is not held
		if n := l.Segments(); n < before {
			t.Fatalf("%d segments released before the checkpoint is synced", before-n)
		}
		crashed, d := open(mem.CrashClone(nil))
		check(d, 0, 60)
		crashed.Close()
		close(gate)
		if busy, err := l.settle(true); busy || err != nil {
			t.Fatalf("the checkpoint: busy %v, %v", busy, err)
		}
		if string(snap.Data) != "state at 45" {
			t.Fatalf("the snapshot's data after its checkpoint: %q", snap.Data)
		}
		if ids := l.j.Segments(); ids[0] < seg {
			t.Fatalf("segments %v left, the checkpoint is at segment %d", ids, seg)
		}
		save(l, 61, 62)
		l.Close()
		l, d = open(mem)
		check(d, 45, 62)
		l.Close()
	}

	{ // failed
		mem := vfs.NewMemFS()
		fs := vfs.NewFaulty(mem, func(op vfs.Op, name string) error {
			if isCkpt(op, name) {
				return vfs.ErrInjected
			}
			return nil
		})
		l, _ := open(fs)
		save(l, 1, 50)
		snap, after := snapAt45()
		if err := l.Compact(context.Background(), snap, state45, after); err != nil {
			t.Fatal(err) // the write is the goroutine's
		}
		if _, err := l.settle(true); !errors.Is(err, vfs.ErrInjected) {
			t.Fatalf("the failed checkpoint: %v", err)
		}
		if busy, err := l.Busy(); busy || !errors.Is(err, vfs.ErrInjected) {
			t.Fatalf("Busy after a failed checkpoint: %v, %v", busy, err)
		}
		snap.Index = 48
		if err := l.SaveSnapshot(context.Background(), snap, after[3:]); !errors.Is(err, vfs.ErrInjected) {
			t.Fatalf("a snapshot after a failed checkpoint: %v", err)
		}
		l.Close()
		l, d := open(mem)
		check(d, 0, 50)
		l.Close()
	}
}
