package sim

import (
	"errors"
	"math/rand/v2"
	"path"
	"sync/atomic"

	"github.com/chutemq/chute/internal/consensus"
	"github.com/chutemq/chute/internal/journal"
	"github.com/chutemq/chute/internal/replica"
	"github.com/chutemq/chute/internal/vfs"
)

// A node's disk is an in-memory filesystem (vfs.MemFS), and its Raft log
// is the real thing on it: replica.Log over chute's journal. A power loss
// is MemFS.CrashClone: what was synced survives, and a random part of the
// rest, possibly with a torn end.
//
// The journal writes and syncs from a goroutine of its own; the simulation
// is one goroutine and must stay deterministic. So every sync of a node's
// files passes through a gate while the node saves: the simulation saves,
// then waits until the journal's writer is parked in a sync (everything
// before it written, not yet synced), and lets the sync go on only when
// the simulated disk latency has passed. A crash in between finds the
// record written and not synced. Between events every writer is parked or
// idle, so no goroutine changes a disk while the simulation runs.

// errCrashed fails the syncs of a crashed node's journal, which is then
// closed; its disk is the crash clone from then on.
var errCrashed = errors.New("sim: the node crashed")

type gate struct {
	armed    atomic.Bool   // syncs wait for an answer (the node is saving)
	dead     atomic.Bool   // syncs fail (the node crashed)
	lying    bool          // syncs succeed without syncing (bugLyingSync)
	requests chan struct{} // a sync is waiting
	answers  chan error    // what it gets
}

func newGate(lying bool) *gate {
	return &gate{lying: lying, requests: make(chan struct{}), answers: make(chan error)}
}

type gateFS struct {
	vfs.FS
	g *gate
}

func (f gateFS) Create(name string) (vfs.File, error) {
	fl, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return gateFile{fl, f.g}, nil
}

func (f gateFS) Open(name string) (vfs.File, error) {
	fl, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return gateFile{fl, f.g}, nil
}

type gateFile struct {
	vfs.File
	g *gate
}

func (f gateFile) Sync() error {
	if f.g.dead.Load() {
		return errCrashed
	}
	if f.g.armed.Load() {
		f.g.requests <- struct{}{}
		if err := <-f.g.answers; err != nil {
			return err
		}
	}
	if f.g.lying {
		return nil
	}
	return f.File.Sync()
}

// disk is a node's storage across its lives: the filesystem survives a
// crash (as its clone); the journal open on it does not.
type disk struct {
	fs   *vfs.MemFS
	gate *gate
	// rep is the replica opened on the disk, its shard still readable
	// after a crash closed its log.
	rep    *replica.Replica
	closed bool
	parked bool // the journal's writer waits in a sync for an answer
}

const logDir = "raft"

// open opens the replica (its log, and its shard from the log's
// snapshot) on the disk, at the start and after a crash, and returns what
// the log holds.
func (d *disk) open(lying bool) (consensus.Durable, error) {
	if d.fs == nil {
		d.fs = vfs.NewMemFS()
	}
	d.gate = newGate(lying)
	// Small segments, so that a run seals many of them.
	rep, dur, err := replica.OpenReplica(gateFS{d.fs, d.gate}, logDir, replica.LogOptions{SegmentSize: 16 << 10}, compactEvery)
	if err != nil {
		return consensus.Durable{}, err
	}
	rep.SetCompactBytes(compactBytes)
	d.rep, d.closed = rep, false
	return dur, nil
}

// save starts writing an Update's record and returns once the journal's
// writer is parked in its sync (or done, if it needed none); nil when the
// log wrote nothing (a commit index alone).
func (d *disk) save(hs *consensus.HardState, es []consensus.Entry) *journal.Batch {
	d.gate.armed.Store(true)
	b, err := d.rep.Log().Save(hs, es)
	if err != nil {
		panic("sim: save: " + err.Error())
	}
	if b == nil {
		d.gate.armed.Store(false)
		return nil
	}
	select {
	case <-d.gate.requests:
		d.parked = true
	case <-b.Done():
		d.gate.armed.Store(false)
	}
	return b
}

// synced lets the parked sync (and any other the batch needs) go on and
// waits for the batch.
func (d *disk) synced(b *journal.Batch) error {
	if d.parked {
		d.parked = false
		d.gate.answers <- nil
	}
	for {
		select {
		case <-b.Done():
			d.gate.armed.Store(false)
			return b.Err()
		case <-d.gate.requests:
			d.gate.answers <- nil
		}
	}
}

// crash is a power loss: the disk becomes what it would hold, and the
// journal that was open on it is stopped.
func (d *disk) crash(rng *rand.Rand) {
	clone := d.fs.CrashClone(rng)
	d.close()
	d.fs = clone
}

// close stops the journal: a parked sync fails, and so does any later one.
func (d *disk) close() {
	if d.rep == nil || d.closed {
		return
	}
	d.gate.dead.Store(true)
	if d.parked {
		d.parked = false
		d.gate.answers <- errCrashed
	}
	d.rep.Close()
	d.closed = true
}

// flip flips one bit in a sealed file that the log reads when it opens —
// its newest checkpoint, or a segment after the checkpoint's that is not
// the last — and reports whether there was one. (Older checkpoints and
// segments before the checkpoint's are garbage a crash may have brought
// back, since removals are not synced: a flip there harms nothing.)
func (d *disk) flip(rng *rand.Rand) bool {
	if d.fs == nil {
		return false
	}
	names, err := d.fs.List(logDir)
	if err != nil {
		return false
	}
	var ckpt string
	var from uint32
	var segs []string
	for _, name := range names {
		if pos, ok := journal.ParseCheckpointFile(name); ok && (ckpt == "" || uint32(pos>>32) >= from) {
			ckpt, from = name, uint32(pos>>32)
		}
	}
	for _, name := range names {
		if id, ok := journal.ParseSegmentFile(name); ok && (ckpt == "" || id > from) {
			segs = append(segs, name)
		}
	}
	var sealed []string
	if ckpt != "" {
		sealed = append(sealed, ckpt)
	}
	if len(segs) > 1 {
		sealed = append(sealed, segs[:len(segs)-1]...) // List is sorted: the last is the tail
	}
	if len(sealed) == 0 {
		return false
	}
	name := path.Join(logDir, sealed[rng.IntN(len(sealed))])
	b, err := d.fs.Bytes(name)
	if err != nil || len(b) == 0 {
		return false
	}
	b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
	return d.fs.SetBytes(name, b) == nil
}
