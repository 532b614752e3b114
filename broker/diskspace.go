package broker

import (
	"context"
	"fmt"
	"math"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/vfs"
)

// Disk full (issue 8).
//
// A full disk must cost availability, never data, and must pass by
// itself. Three mechanisms, from the gentlest:
//
//  1. A floor (Options.MinFreeDisk; default 5% of the volume, at most
//     256 MiB). Below it, publishes are refused with chute.ErrDiskFull
//     (retryable: RESOURCE_EXHAUSTED over the API). Below half of it,
//     receives are refused too: a delivery writes a record, and a consumer
//     that receives and nacks in a loop would otherwise eat the last
//     space. Acks, nacks, extends, admin calls, stats and checkpoints are
//     never refused: they are how space comes back (a checkpoint deletes
//     the segments whose messages are all settled). Free space is measured
//     with statfs (vfs.FS.Free) at most every DiskCheckInterval, and
//     between samples the bytes the journal appended are subtracted, so
//     the check costs a few atomic loads.
//  2. A reserve: DIR/RESERVE, a file of really allocated blocks
//     (vfs.Allocate: fallocate, or written), sized for what the broker
//     needs to get out of a full disk on its own — a checkpoint of the
//     current index, twice (the new one is written before the old one goes,
//     and the index may grow meanwhile), plus a settlement record for every
//     queued message, plus 1 MiB:
//
//     reserve = 2 × max(last checkpoint, 48 B × queued) + 64 B × queued + 1 MiB
//
//     rounded up to 64 KiB, and resized when it is off by a quarter (up)
//     or a half (down). When free space drops below the receive floor, or
//     a journal write finds no space at all, the reserve is deleted, and
//     acks and the next checkpoint have room even if something else filled
//     the volume. The released bytes still count as used for the floors
//     (free is measured minus what was released), so that deliveries and
//     publishes do not spend the reserve; once free space is back above
//     the floor with the reserve counted, the reserve is made again.
//     While it is released, publishes are refused, and receives below
//     64 KiB of (so counted) free space, floor or no floor.
//  3. A write that finds no space (ENOSPC) undoes its batch
//     (internal/journal/nospace.go): its callers get ErrDiskFull, the
//     segment is cut back, and the journal suspends appends. The broker
//     has applied those records to the engine already, so it rebuilds the
//     engine from the journal — the newest checkpoint plus the records
//     after it, as a restart would, minus the restart: leases granted by
//     records that survived are still held — and resumes the journal. The
//     rebuild holds ckptMu (no checkpoint may release a segment the replay
//     reads) and b.mu (no call sees the engine half built). Until samples
//     show free space (the reserve not counted) risen by max(floor,
//     128 KiB) above the least seen since, publishes are refused (a quota
//     that statfs does not show is tried again after 100 sampling
//     intervals, 10 s by default); receives answer to their floor.
//
// While the volume is short of space, new segments are not preallocated
// and checkpoints do not compact (both take space before they give any
// back), and the broker checkpoints on its own whenever anything was
// settled since the last checkpoint (at most once a second, and never
// more than half the time), so that space comes back without waiting for
// the usual checkpoint trigger, which counts appended bytes.

// Disk-space tuning. The floors are scaled to the volume; these minimums
// matter only on tiny volumes and when the floor is switched off.
const (
	defaultFloorMax   = 256 << 20 // the default floor, at most
	defaultFloorShare = 20        // the default floor, at most 1/20 (5%) of the volume
	minCritical       = 64 << 10  // release the reserve below max(floor/2, this)
	minRoom           = 128 << 10 // space is back at max(floor, this)

	reserveName          = "RESERVE"
	reserveBase          = 1 << 20
	reserveGrain         = 64 << 10
	snapshotBytesPerMsg  = 48 // a checkpoint's bytes per queued message, with slack (22 measured without IDs; IDs in the de-dup window add theirs)
	settleBytesPerMsg    = 64 // a deliver and an ack record's share per message
	diskHousekeepingTick = time.Second
	fullRetryIntervals   = 100 // after a write found no space that statfs did not show: 10 s by default
)

// spaceKind is what a call would write, for the floors.
type spaceKind uint8

const (
	spacePublish spaceKind = iota // publishes: refused below the floor
	spaceDeliver                  // receives: refused below half of it
)

func (k spaceKind) String() string {
	if k == spaceDeliver {
		return "receives"
	}
	return "publishes"
}

// diskState is the broker's view of the volume under its data directory.
// The fields read on every publish and receive are atomics; the reserve
// is guarded by mu, which is held across the reserve's file I/O and never
// taken with b.mu held.
type diskState struct {
	fs       vfs.FS
	dir      string
	off      bool // in-memory broker: no volume to watch
	interval time.Duration
	epoch    time.Time // sample times are monotonic nanoseconds since it

	sampledAt atomic.Int64 // when the last sample was taken (staleSample: take one now)
	sampling  atomic.Bool  // a sample is being taken
	free      atomic.Int64 // measured free bytes minus the released reserve, at the sample
	total     atomic.Int64 // the volume's size
	appended  atomic.Int64 // journal bytes appended at the sample
	floor     atomic.Int64 // the publish floor in bytes (0: none)
	noMeasure atomic.Bool  // the FS cannot measure free space (logged once)

	full     atomic.Bool  // a write found no space: refuse until a sample shows room
	fullGen  atomic.Int64 // bumped each time full is set, so a stale sample cannot clear it
	fullAt   atomic.Int64 // when full was set
	fullMin  atomic.Int64 // the least free space sampled since full was set
	released atomic.Int64 // bytes of reserve released and not made again

	rebuilds atomic.Int64    // engine rebuilds after a batch was undone
	refused  [2]atomic.Int64 // calls refused, by spaceKind
	kick     chan struct{}   // a batch was undone (journal OnNoSpace)

	mu         sync.Mutex
	reserve    int64 // guarded by mu: bytes of RESERVE on disk
	reserveErr int64 // guarded by mu: when making it last failed (d.now), 0: never
}

const staleSample = math.MinInt64 / 2

func (d *diskState) now() int64  { return int64(time.Since(d.epoch)) }
func (d *diskState) invalidate() { d.sampledAt.Store(staleSample) }

// room is the free space at which a full disk counts as recovered;
// critical the one below which the reserve is released.
func (d *diskState) room() int64     { return max(d.floor.Load(), minRoom) }
func (d *diskState) critical() int64 { return max(d.floor.Load()/2, minCritical) }

// DiskStats describes the volume under the data directory as the broker
// sees it.
type DiskStats struct {
	Free      int64 // bytes free at the last sample, minus the released reserve
	Total     int64 // the volume's size
	Floor     int64 // publishes are refused below it, receives below half (0: none)
	Reserve   int64 // bytes held in DIR/RESERVE
	Released  int64 // bytes of reserve given up and not yet made again
	Full      bool  // a journal write found no space, and no room since
	Rebuilds  int64 // engine rebuilds after a write found no space
	Refused   int64 // publishes and receives refused with ErrDiskFull
	Measuring bool  // false when the platform cannot measure free space
	Suspended bool  // a batch was undone and the engine is not rebuilt yet
}

// DiskStats returns the broker's view of its volume.
func (b *Broker) DiskStats() DiskStats {
	d := &b.disk
	d.mu.Lock()
	reserve := d.reserve
	d.mu.Unlock()
	return DiskStats{
		Free: d.free.Load(), Total: d.total.Load(), Floor: d.floor.Load(),
		Reserve: reserve, Released: d.released.Load(), Full: d.full.Load(),
		Rebuilds: d.rebuilds.Load(), Refused: d.refused[0].Load() + d.refused[1].Load(),
		Measuring: !d.off && !d.noMeasure.Load(), Suspended: b.jrn.Suspended() != nil,
	}
}

// initDisk runs in Open once the journal is open and before recovery
// writes anything: it finds the reserve left by the last run and, if the
// volume is already (nearly) full, releases it, so that the recovery's
// records and the first checkpoint have room.
func (b *Broker) initDisk(fs vfs.FS, dir string) {
	d := &b.disk
	d.fs, d.dir, d.off = fs, dir, b.mem
	d.interval, d.epoch = b.opts.DiskCheckInterval, time.Now()
	d.kick = make(chan struct{}, 1)
	d.invalidate()
	if d.off {
		return
	}
	if f, err := fs.Open(path.Join(dir, reserveName)); err == nil {
		d.reserve, _ = f.Size()
		f.Close()
	}
	b.sampleDisk()
	if d.reserve > 0 && !d.noMeasure.Load() && d.free.Load() < d.critical() {
		b.releaseReserve("the volume was full at start")
	}
}

// checkSpace refuses a publish or a receive with chute.ErrDiskFull while
// free space is below its floor, or a write found no space and none came
// back. It is called first thing, without locks.
func (b *Broker) checkSpace(k spaceKind) error {
	d := &b.disk
	if err := b.jrn.Suspended(); err != nil {
		b.kickRebuild()
		d.refused[k].Add(1)
		return err
	}
	if d.off {
		return nil
	}
	if d.now()-d.sampledAt.Load() >= int64(d.interval) {
		b.sampleDisk()
	}
	if k == spacePublish {
		// (Receives answer to their floor: on a full volume the measured
		// space is below it anyway.)
		switch {
		case d.full.Load():
			d.refused[k].Add(1)
			return fmt.Errorf("%w: a journal write found no space left on the volume of %s: %s are refused until space is freed",
				chute.ErrDiskFull, b.dir, k)
		case d.released.Load() > 0:
			d.refused[k].Add(1)
			return fmt.Errorf("%w: the volume of %s filled up and its reserve was given to acks and checkpoints: %s are refused until space is freed",
				chute.ErrDiskFull, b.dir, k)
		}
	}
	floor := d.floor.Load()
	if k == spaceDeliver {
		floor /= 2
		if d.released.Load() > 0 {
			// The reserve was given up for acks and checkpoints: receives
			// must not spend it, floor or no floor.
			floor = max(floor, minCritical)
		}
	}
	if floor <= 0 {
		return nil
	}
	free := d.free.Load() - (b.jrn.Appended() - d.appended.Load())
	if free >= floor {
		return nil
	}
	d.refused[k].Add(1)
	return fmt.Errorf("%w: %s free on the volume of %s, below the %s floor for %s (MinFreeDisk, --min-free-disk): refused until space is freed",
		chute.ErrDiskFull, fmtBytes(free), b.dir, fmtBytes(floor), k)
}

// sampleDisk measures free space. Concurrent callers do not wait: one
// measures, the others go on with the last sample.
func (b *Broker) sampleDisk() {
	d := &b.disk
	if d.off || !d.sampling.CompareAndSwap(false, true) {
		return
	}
	defer d.sampling.Store(false)
	gen := d.fullGen.Load()
	appended := b.jrn.Appended()
	free, total, err := d.fs.Free(d.dir)
	if err != nil {
		if !d.noMeasure.Swap(true) {
			b.log.Warn("cannot measure free disk space: no free-space floor (a write that finds the disk full is still undone)", "dir", d.dir, "err", err)
		}
		d.floor.Store(0)
		d.sampledAt.Store(d.now())
		// With no measure of the volume, a full disk is retried (by the
		// next publish) once a second instead.
		if d.full.Load() && d.now()-d.fullAt.Load() >= int64(time.Second) && d.fullGen.Load() == gen {
			d.full.Store(false)
		}
		return
	}
	if d.noMeasure.Swap(false) {
		b.log.Info("free disk space measured again", "dir", d.dir)
	}
	eff := free - d.released.Load()
	d.free.Store(eff)
	d.total.Store(total)
	d.appended.Store(appended)
	d.floor.Store(floorFor(b.opts.MinFreeDisk, total))
	d.sampledAt.Store(d.now())
	if d.full.Load() && d.fullGen.Load() == gen {
		// Space is back once free space rose by room from the least seen
		// since the write failed (so a statfs that cannot see the limit
		// the write hit, a quota's, does not clear it at once), or, to
		// try again, after fullRetryIntervals samples' time.
		low := min(d.fullMin.Load(), eff)
		d.fullMin.Store(low)
		retry := d.now()-d.fullAt.Load() >= fullRetryIntervals*int64(d.interval)
		if eff >= d.room() && (eff >= low+d.room() || retry) {
			d.full.Store(false)
			b.log.Info("disk space is back: publishes resume", "free", fmtBytes(eff))
		}
	}
	b.jrn.SetPreallocate(!b.diskShort())
}

// diskShort reports whether the volume is short of space: below the
// floor, full, or the reserve given up. Then new segments are not
// preallocated and checkpoints do not compact: both take space before
// they give any back.
func (b *Broker) diskShort() bool {
	d := &b.disk
	if d.off {
		return false
	}
	return d.full.Load() || d.released.Load() > 0 || d.free.Load()-(b.jrn.Appended()-d.appended.Load()) < d.floor.Load()
}

// floorFor resolves Options.MinFreeDisk for a volume of total bytes.
func floorFor(opt, total int64) int64 {
	switch {
	case opt < 0:
		return 0
	case opt > 0:
		return opt
	}
	return min(defaultFloorMax, total/defaultFloorShare)
}

// onNoSpace is the journal's OnNoSpace: a batch was undone. It runs on
// the journal's writer, so it only marks the disk full and wakes the
// disk loop, which rebuilds the engine.
func (b *Broker) onNoSpace() {
	d := &b.disk
	d.fullGen.Add(1)
	d.fullAt.Store(d.now())
	d.fullMin.Store(math.MaxInt64)
	d.full.Store(true)
	d.invalidate()
	b.jrn.SetPreallocate(false)
	b.kickRebuild()
}

func (b *Broker) kickRebuild() {
	select {
	case b.disk.kick <- struct{}{}:
	default:
	}
}

// startDisk runs at the end of Open: it makes the reserve (if the volume
// has room for it) before Open returns, then starts the disk loop.
func (b *Broker) startDisk() {
	b.housekeepDisk()
	b.goFunc(b.diskLoop)
}

// diskLoop rebuilds the engine when the journal undid a batch, and once a
// second (ten sampling intervals, if that is less) looks after the
// reserve and checkpoints early while the disk is short of space.
func (b *Broker) diskLoop() {
	t := time.NewTicker(min(diskHousekeepingTick, max(10*b.disk.interval, 10*time.Millisecond)))
	defer t.Stop()
	for {
		select {
		case <-b.disk.kick:
			b.releaseReserve("a journal write found no space")
			b.rebuildAfterNoSpace()
		case <-t.C:
		case <-b.done:
			return
		}
		b.housekeepDisk()
	}
}

// housekeepDisk samples the disk and releases, makes or resizes the
// reserve, and checkpoints early when that gives space back.
func (b *Broker) housekeepDisk() {
	d := &b.disk
	if b.jrn.Suspended() != nil {
		b.rebuildAfterNoSpace()
	}
	if d.off || b.jrn.Err() != nil {
		return
	}
	b.sampleDisk()
	if d.noMeasure.Load() {
		// Blind: keep a reserve (made if missing), release it on ENOSPC.
		if !d.full.Load() {
			b.resizeReserve(math.MaxInt64 / 4)
		} else {
			b.checkpointForSpace()
		}
		return
	}
	free := d.free.Load() - (b.jrn.Appended() - d.appended.Load())
	if free < d.critical() {
		b.releaseReserve(fmt.Sprintf("%s free, below the critical %s", fmtBytes(free), fmtBytes(d.critical())))
	} else if !d.full.Load() {
		b.resizeReserve(free)
	}
	if d.full.Load() || free < d.floor.Load() {
		b.checkpointForSpace()
	}
}

// reserveFor is the reserve's automatic size (see the essay above).
func reserveFor(entries, lastCheckpoint int64) int64 {
	ckpt := max(lastCheckpoint, entries*snapshotBytesPerMsg)
	r := 2*ckpt + entries*settleBytesPerMsg + reserveBase
	return (r + reserveGrain - 1) &^ (reserveGrain - 1)
}

// wantReserve is the size the reserve should have now.
func (b *Broker) wantReserve() int64 {
	switch o := b.opts.DiskReserve; {
	case o < 0:
		return 0
	case o > 0:
		return o
	}
	b.mu.Lock()
	entries := b.eng.Entries()
	b.mu.Unlock()
	return reserveFor(entries, b.ckptLastSize.Load())
}

// resizeReserve makes the reserve, or resizes it, if the volume has room
// for it above the floor; free is the current estimate (released bytes
// already taken off).
func (b *Broker) resizeReserve(free int64) {
	d := &b.disk
	want := b.wantReserve()
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, released := d.reserve, d.released.Load()
	switch {
	case want == cur && released == 0:
		return
	case cur > 0 && want > cur && want <= cur+cur/4, cur > 0 && want < cur && want >= cur/2:
		return // near enough: not worth rewriting
	case want > 0 && free+released+cur-want < d.room():
		return // no room for it yet
	case d.reserveErr != 0 && d.now()-d.reserveErr < int64(time.Minute):
		return // it failed lately for want of anything but room: a minute later
	}
	if err := b.makeReserveLocked(want); err != nil {
		if !vfs.IsNoSpace(err) {
			// Not for lack of room (for that, the next round tries again:
			// a quota or a thin volume may say there is room when there is
			// none). Go on without one rather than refuse publishes until
			// it can be made.
			b.log.Warn("make the disk-space reserve", "file", path.Join(d.dir, reserveName), "bytes", want, "err", err)
			d.reserveErr = d.now()
			d.released.Store(0)
		}
		return
	}
	d.reserveErr = 0
	if released > 0 {
		b.log.Info("disk-space reserve made again", "bytes", want)
	}
}

// makeReserveLocked (re)creates RESERVE with size bytes (none for 0).
func (b *Broker) makeReserveLocked(size int64) error {
	d := &b.disk
	name := path.Join(d.dir, reserveName)
	defer d.invalidate()
	if size == 0 {
		d.reserve = 0
		d.released.Store(0)
		if err := d.fs.Remove(name); err != nil && !vfs.IsNotExist(err) {
			return err
		}
		return nil
	}
	f, err := d.fs.Create(name) // gives the old one's space back first
	if err != nil {
		return err
	}
	d.reserve = 0
	err = vfs.Allocate(f, size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.fs.SyncDir(d.dir)
	}
	if err != nil {
		d.fs.Remove(name)
		return err
	}
	d.reserve = size
	d.released.Store(0)
	return nil
}

// releaseReserve deletes RESERVE, so that acks and checkpoints find room.
func (b *Broker) releaseReserve(why string) {
	d := &b.disk
	if d.off {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reserve == 0 {
		return
	}
	// Counted as released before the space shows as free: a sample in
	// between must not take it for space come back.
	d.released.Add(d.reserve)
	if err := d.fs.Remove(path.Join(d.dir, reserveName)); err != nil && !vfs.IsNotExist(err) {
		d.released.Add(-d.reserve)
		b.log.Error("release the disk-space reserve", "err", err)
		return
	}
	b.log.Warn("disk full: released the disk-space reserve, so that acks and checkpoints have room",
		"bytes", d.reserve, "why", why)
	d.reserve = 0
	d.invalidate()
	b.jrn.SetPreallocate(false)
}

// checkpointForSpace writes a checkpoint while the disk is short of space
// if anything was appended (settled) since the last one and the last one
// ended at least a second ago (and longer ago than it took): it is what
// deletes the segments that acks emptied.
func (b *Broker) checkpointForSpace() {
	if b.opts.CheckpointBytes < 0 || b.jrn.Appended() == b.ckptAppendedAt.Load() {
		return
	}
	since := time.Duration(time.Now().UnixNano() - b.ckptEndedAt.Load())
	if since < time.Second || since < time.Duration(b.ckptTook.Load()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Checkpoint(ctx); err != nil {
		b.log.Warn("checkpoint to free disk space", "err", err)
	}
}

// fmtBytes prints a byte count for an operator.
func fmtBytes(n int64) string {
	switch {
	case n < 0:
		return "-" + fmtBytes(-n)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
