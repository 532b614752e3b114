package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/journal"
	"github.com/chutemq/chute/internal/vfs"
)

// bkBackupTo takes a live backup of b into a new directory.
func bkBackupTo(t *testing.T, b *broker.Broker, out string) *broker.BackupManifest {
	t.Helper()
	w, err := broker.CreateBackupDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := b.Backup(chutetest.Ctx(t), w); err != nil {
		t.Fatalf("backup: %v", err)
	}
	m, err := w.Finish()
	if err != nil {
		t.Fatalf("finish backup: %v", err)
	}
	return m
}

// bkDrain receives every message of queue (leasing it) and returns their
// bodies by ID (by the body's first word for a message without one); a
// message received twice fails the test.
func bkDrain(t *testing.T, api chute.API, queue string) map[string]string {
	t.Helper()
	ctx := chutetest.Ctx(t)
	got := map[string]string{}
	for {
		ds, err := api.Receive(ctx, queue, chute.ReceiveOptions{Max: 1000, Wait: -1, Lease: time.Hour})
		if err != nil {
			t.Fatalf("receive %s: %v", queue, err)
		}
		if len(ds) == 0 {
			return got
		}
		for _, d := range ds {
			id := bkID(d)
			if _, dup := got[id]; dup {
				t.Fatalf("%s: message %s delivered twice", queue, id)
			}
			got[id] = string(d.Body)
		}
	}
}

// bkID names a delivered message: its ID, or its body's first word.
func bkID(d chute.Delivery) string {
	if d.ID != "" {
		return d.ID
	}
	id, _, _ := strings.Cut(string(d.Body), " ")
	return id
}

// bkRestoreOpen restores backup into a new directory and opens a broker on it.
func bkRestoreOpen(t *testing.T, backup string) (*broker.Broker, *broker.RestoreReport) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	rep, err := broker.Restore(backup, dir, broker.RestoreOptions{})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	return chutetest.MustOpen(t, dir, nil), rep
}

// bkLoadLog records, for every message, when its publish was called and
// confirmed, and when its ack was called and confirmed.
type bkLoadLog struct {
	mu     sync.Mutex
	pubs   map[string]bkSpan
	acks   map[string]bkSpan
	bodies map[string]string
}

type bkSpan struct{ start, end time.Time }

func (l *bkLoadLog) pub(id, body string, s bkSpan) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pubs[id], l.bodies[id] = s, body
}

type bkCounts struct{ pubs, acks int }

func (l *bkLoadLog) counts() bkCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bkCounts{len(l.pubs), len(l.acks)}
}

// waitFor waits until at least pubs publishes and acks acks are confirmed.
func (l *bkLoadLog) waitFor(t *testing.T, pubs, acks int) {
	t.Helper()
	chutetest.Eventually(t, fmt.Sprintf("%d publishes and %d acks", pubs, acks), func() bool {
		c := l.counts()
		return c.pubs >= pubs && c.acks >= acks
	})
}

func (l *bkLoadLog) ack(ids []string, s bkSpan) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.acks[id] = s
	}
}

// TestBackupUnderLoad takes a backup while publishers and acking consumers
// run, restores it, and checks the restored queue against what the
// broker had confirmed when the backup began and ended. The backup point
// P lies somewhere inside the Backup call, so:
//
//   - a publish confirmed before the call is in the backup, unless its ack
//     was called before the call returned (that ack may precede P);
//   - a message whose ack was confirmed before the call is not;
//   - a message whose publish was called after the call returned is not;
//   - nothing is in it twice, and every body is the one published.
//
// It also measures the publish pause: the time the backup held the
// broker's lock, and the longest publish latency during the backup next
// to the longest before it (CHUTE_BACKUP_PRELOAD sets the backlog, and so
// the snapshot's size; default 20000).
func TestBackupUnderLoad(t *testing.T) {
	preload := 20000
	if s := os.Getenv("CHUTE_BACKUP_PRELOAD"); s != "" {
		preload, _ = strconv.Atoi(s)
	}
	ctx := chutetest.Ctx(t)
	// Small segments and frequent checkpoints: segments roll, and are
	// released by checkpoints, while the backup copies them.
	b := chutetest.MustOpen(t, t.TempDir(), &broker.Options{SegmentSize: 256 << 10, CheckpointBytes: 1 << 20})
	if err := b.CreateQueue(ctx, "load", chute.QueueConfig{VisibilityTimeout: time.Hour, MaxDeliveries: -1}); err != nil {
		t.Fatal(err)
	}
	log := &bkLoadLog{pubs: map[string]bkSpan{}, acks: map[string]bkSpan{}, bodies: map[string]string{}}
	for i := 0; i < preload; i += 1000 {
		var msgs []chute.Message
		for k := i; k < min(i+1000, preload); k++ {
			// No producer ID: the backlog is the index, not a de-dup
			// window as large (the body names the message).
			msgs = append(msgs, chute.Message{Body: []byte(fmt.Sprintf("pre-%d preloaded", k))})
		}
		s := bkSpan{start: time.Now()}
		if _, err := b.Publish(ctx, "load", msgs...); err != nil {
			t.Fatal(err)
		}
		s.end = time.Now()
		for _, m := range msgs {
			id, _, _ := strings.Cut(string(m.Body), " ")
			log.pub(id, string(m.Body), s)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("p%d-%d", w, i)
				body := fmt.Sprintf("%s %x %s", id, rng.Uint64(), strings.Repeat("l", rng.IntN(1000)))
				s := bkSpan{start: time.Now()}
				if _, err := b.Publish(ctx, "load", chute.Message{ID: id, Body: []byte(body)}); err != nil {
					errc <- fmt.Errorf("publish %s: %w", id, err)
					return
				}
				s.end = time.Now()
				log.pub(id, body, s)
			}
		})
	}
	for c := range 2 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				ds, err := b.Receive(ctx, "load", chute.ReceiveOptions{Max: 20, Wait: 5 * time.Millisecond})
				if err != nil {
					errc <- fmt.Errorf("receive: %w", err)
					return
				}
				var ids, receipts []string
				for i, d := range ds {
					if (n+i+c)%10 == 0 {
						continue // left leased: a lease does not survive a restore, the message does
					}
					ids, receipts = append(ids, bkID(d)), append(receipts, d.Receipt)
				}
				if len(receipts) == 0 {
					continue
				}
				s := bkSpan{start: time.Now()}
				if err := b.Ack(ctx, "load", receipts...); err != nil {
					errc <- fmt.Errorf("ack: %w", err)
					return
				}
				s.end = time.Now()
				log.ack(ids, s)
			}
		})
	}

	loadStart := time.Now()
	// Let the load get going (publishes and acks confirmed before the
	// backup begins), back up, then let it go on past the backup's end:
	// counted in confirmations, not in time.
	log.waitFor(t, 200, 50)
	out := filepath.Join(t.TempDir(), "backup")
	bStart := time.Now()
	m := bkBackupTo(t, b, out)
	bEnd := time.Now()
	log.waitFor(t, log.counts().pubs+100, 0)
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	r, rep := bkRestoreOpen(t, out)
	got := bkDrain(t, r, "load")
	if rep.Messages != int64(len(got)) || rep.Queues != 2 { // load and its dead-letter queue
		t.Errorf("restore report: %d queues, %d messages; drained %d", rep.Queues, rep.Messages, len(got))
	}
	var confirmedBefore, ackedBefore, leased, wrong int
	for id, p := range log.pubs {
		a, acked := log.acks[id]
		_, in := got[id]
		var why string
		switch {
		case p.end.Before(bStart) && !in && !(acked && a.start.Before(bEnd)):
			why = "confirmed before the backup, never acked before it ended, missing from it"
		case acked && a.end.Before(bStart) && in:
			why = "acked before the backup began, but in it"
		case p.start.After(bEnd) && in:
			why = "published after the backup ended, but in it"
		}
		if why != "" {
			if wrong++; wrong <= 10 {
				t.Errorf("%s: %s", id, why)
			}
		}
		if p.end.Before(bStart) {
			confirmedBefore++
		}
		if acked && a.end.Before(bStart) {
			ackedBefore++
		}
		if !acked && in {
			leased++
		}
	}
	for id, body := range got {
		if want, ok := log.bodies[id]; !ok || body != want {
			if wrong++; wrong <= 10 {
				t.Errorf("%s in the backup with body %q; published %v with %q", id, body, ok, want)
			}
		}
	}
	if wrong > 10 {
		t.Errorf("… %d wrong in all", wrong)
	}

	var before, during []time.Duration
	for _, p := range log.pubs {
		switch lat := p.end.Sub(p.start); {
		case p.start.After(loadStart) && p.end.Before(bStart):
			before = append(before, lat)
		case p.end.After(bStart) && p.start.Before(bEnd):
			during = append(during, lat)
		}
	}
	t.Logf("backlog %d + load: %d publishes confirmed and %d acked before the backup; backup: %d files, %d bytes, position %s, took %v",
		preload, confirmedBefore, ackedBefore, len(m.Files)+1, m.Bytes(), m.Position, bEnd.Sub(bStart).Round(time.Millisecond))
	t.Logf("restored %d messages (%d of them never acked); publish pause (broker lock held for the snapshot): %v", len(got), leased, m.Pause())
	t.Logf("publish latency: before the backup max %v p99 %v (%d publishes); during it max %v p99 %v (%d publishes)",
		bkMax(before), bkP99(before), len(before), bkMax(during), bkP99(during), len(during))
	if m.Pause() <= 0 || m.Kind != broker.BackupLive {
		t.Errorf("manifest: kind %s, pause %v", m.Kind, m.Pause())
	}
}

func bkMax(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

func bkP99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// TestBackupSegmentsNeeded: a backup holds the checkpoint, the segments
// that live messages' bodies are in, and the tail up to P, nothing else;
// the restored broker has the same messages and bodies, also across a
// gap in the segments, and goes on from there.
func TestBackupSegmentsNeeded(t *testing.T) {
	ctx := chutetest.Ctx(t)
	b := chutetest.MustOpen(t, t.TempDir(), &broker.Options{SegmentSize: 64 << 10, CheckpointBytes: -1})
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{VisibilityTimeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("x", 4000)
	keep := map[string]string{}
	for i := range 100 { // ~6 segments; keep the messages of the first and the last ones
		id := fmt.Sprintf("m%03d", i)
		if _, err := b.Publish(ctx, "q", chute.Message{ID: id, Body: []byte(id + body)}); err != nil {
			t.Fatal(err)
		}
		if i < 5 || i >= 95 {
			keep[id] = id + body
		}
	}
	for {
		ds, err := b.Receive(ctx, "q", chute.ReceiveOptions{Max: 100, Wait: -1})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			if _, ok := keep[d.ID]; !ok {
				if err := b.Ack(ctx, "q", d.Receipt); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	out := filepath.Join(t.TempDir(), "backup")
	m := bkBackupTo(t, b, out)
	var segs []string
	for _, f := range m.Files {
		if strings.HasSuffix(f.Name, ".seg") {
			segs = append(segs, f.Name)
		}
	}
	pos := m.Position
	tail := pos[:8] + ".seg"
	if len(segs) < 2 || segs[0] != "00000001.seg" || segs[len(segs)-1] != tail || slices.Contains(segs, "00000003.seg") {
		t.Fatalf("backup segments %v (position %s): want the first, the last and no dead one in between", segs, pos)
	}
	for _, f := range m.Files {
		if f.Name == tail {
			off, _ := strconv.ParseUint(pos[9:], 16, 32)
			if f.Size != int64(off) {
				t.Errorf("tail segment %s: %d bytes in the backup, P is at %d", tail, f.Size, off)
			}
		}
	}
	// The broker goes on; none of it is in the backup.
	if _, err := b.Publish(ctx, "q", chute.Message{ID: "after", Body: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	r, _ := bkRestoreOpen(t, out)
	got := bkDrain(t, r, "q")
	if len(got) != len(keep) {
		t.Errorf("restored %d messages, want %d", len(got), len(keep))
	}
	for id, body := range keep {
		if got[id] != body {
			t.Errorf("%s: restored body of %d bytes, want %d", id, len(got[id]), len(body))
		}
	}
	// The restored broker appends after P and restarts cleanly.
	if _, err := r.Publish(ctx, "q", chute.Message{ID: "new", Body: []byte("new")}); err != nil {
		t.Fatal(err)
	}
}

// TestBackupMemoryBroker: an in-memory broker backs up too.
func TestBackupMemoryBroker(t *testing.T) {
	ctx := chutetest.Ctx(t)
	b := chutetest.MustOpen(t, "", nil)
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "q", chute.Message{ID: "a", Body: []byte("A")}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backup")
	bkBackupTo(t, b, out)
	r, _ := bkRestoreOpen(t, out)
	if got := bkDrain(t, r, "q"); len(got) != 1 || got["a"] != "A" {
		t.Fatalf("restored %v", got)
	}
}

// TestBackupEmptyBroker: a broker that never wrote a record backs up and
// restores to an empty broker.
func TestBackupEmptyBroker(t *testing.T) {
	b := chutetest.MustOpen(t, t.TempDir(), nil)
	out := filepath.Join(t.TempDir(), "backup")
	m := bkBackupTo(t, b, out)
	if len(m.Files) != 1 {
		t.Fatalf("files %+v", m.Files)
	}
	r, rep := bkRestoreOpen(t, out)
	if qs, err := r.Queues(context.Background()); err != nil || len(qs) != 0 || rep.Queues != 0 {
		t.Fatalf("restored queues %v, %v", qs, err)
	}
}

// bkSmallBackup makes a backup of a broker with a few messages.
func bkSmallBackup(t *testing.T) (string, *broker.BackupManifest) {
	t.Helper()
	ctx := chutetest.Ctx(t)
	b := chutetest.MustOpen(t, t.TempDir(), nil)
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := b.Publish(ctx, "q", chute.Message{ID: strconv.Itoa(i), Body: []byte("body")}); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "backup")
	return out, bkBackupTo(t, b, out)
}

// TestRestoreRefusesDamage: a backup whose files do not match its
// manifest is refused before anything is written, naming the file.
func TestRestoreRefusesDamage(t *testing.T) {
	seg := "00000001.seg"
	cases := map[string]struct {
		damage func(t *testing.T, dir string, m *broker.BackupManifest)
		file   string
	}{
		"flipped byte": {func(t *testing.T, dir string, _ *broker.BackupManifest) {
			bkFlip(t, filepath.Join(dir, seg), 100)
		}, seg},
		"truncated": {func(t *testing.T, dir string, _ *broker.BackupManifest) {
			if err := os.Truncate(filepath.Join(dir, seg), 50); err != nil {
				t.Fatal(err)
			}
		}, seg},
		"missing file": {func(t *testing.T, dir string, m *broker.BackupManifest) {
			if err := os.Remove(filepath.Join(dir, m.Files[0].Name)); err != nil {
				t.Fatal(err)
			}
		}, ".ckpt"},
		"manifest mismatch": {func(t *testing.T, dir string, m *broker.BackupManifest) {
			bkEditManifest(t, dir, func(s string) string {
				return strings.Replace(s, m.Files[1].SHA256, strings.Repeat("0", 64), 1)
			})
		}, seg},
		"manifest unreadable": {func(t *testing.T, dir string, _ *broker.BackupManifest) {
			bkEditManifest(t, dir, func(s string) string { return s[:len(s)/2] })
		}, broker.ManifestFile},
		"no manifest": {func(t *testing.T, dir string, _ *broker.BackupManifest) {
			if err := os.Remove(filepath.Join(dir, broker.ManifestFile)); err != nil {
				t.Fatal(err)
			}
		}, broker.ManifestFile},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			out, m := bkSmallBackup(t)
			c.damage(t, out, m)
			target := filepath.Join(t.TempDir(), "restored")
			_, err := broker.Restore(out, target, broker.RestoreOptions{})
			var be *broker.BackupError
			if !errors.As(err, &be) || !errors.Is(err, broker.ErrBackupDamaged) || !errors.Is(err, chute.ErrJournalCorrupt) ||
				!strings.Contains(be.File, c.file) {
				t.Fatalf("restore: %v, want a BackupError naming %s", err, c.file)
			}
			if _, serr := os.Stat(target); !os.IsNotExist(serr) {
				t.Errorf("the target exists after a refused restore: %v", serr)
			}
		})
	}
}

func bkFlip(t *testing.T, name string, off int) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0x40
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func bkEditManifest(t *testing.T, dir string, edit func(string) string) {
	t.Helper()
	name := filepath.Join(dir, broker.ManifestFile)
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(edit(string(data))), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreTarget: a non-empty directory is refused unless Force, which
// replaces its journal and keeps other files; a directory in use is
// refused; the result opens.
func TestRestoreTarget(t *testing.T) {
	out, _ := bkSmallBackup(t)
	dir := t.TempDir()
	old := chutetest.MustOpen(t, dir, nil)
	if err := old.CreateQueue(context.Background(), "other", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := broker.Restore(out, dir, broker.RestoreOptions{Force: true}); !errors.Is(err, broker.ErrLocked) {
		t.Fatalf("restore into a directory in use: %v", err)
	}
	old.Close()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := broker.Restore(out, dir, broker.RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty directory: %v", err)
	}
	rep, err := broker.Restore(out, dir, broker.RestoreOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) == 0 || rep.Queues != 2 || rep.Messages != 10 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("--force removed a file that is not the journal's: %v", err)
	}
	b := chutetest.MustOpen(t, dir, nil)
	if _, err := b.QueueStats(context.Background(), "other"); !errors.Is(err, chute.ErrQueueNotFound) {
		t.Errorf("the replaced journal's queue: %v", err)
	}
	if got := bkDrain(t, b, "q"); len(got) != 10 {
		t.Errorf("restored %d messages", len(got))
	}
}

// TestBackupStopped: a stopped broker's directory is copied (or its sealed
// segments linked) under its lock; a running one's is refused, naming the
// holder.
func TestBackupStopped(t *testing.T) {
	ctx := chutetest.Ctx(t)
	dir := t.TempDir()
	b, err := broker.Open(dir, &broker.Options{SegmentSize: 64 << 10, CheckpointBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := b.Publish(ctx, "q", chute.Message{ID: strconv.Itoa(i), Body: []byte(strings.Repeat("s", 4000))}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = broker.BackupStoppedDir(dir, filepath.Join(t.TempDir(), "x"), broker.BackupStoppedOptions{})
	var le *broker.LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("backup of a running broker's directory: %v", err)
	}
	// A crashed broker's directory: its files as they are, with records
	// after the last checkpoint, which the backup carries too.
	if err := b.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "q", chute.Message{ID: "late", Body: []byte("after the checkpoint")}); err != nil {
		t.Fatal(err)
	}
	crashed := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "LOCK" {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(crashed, e.Name()), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		dir  string
		link bool
	}{{"closed", dir, false}, {"closed-link", dir, true}, {"crashed", crashed, false}} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "backup")
			m, err := broker.BackupStoppedDir(c.dir, out, broker.BackupStoppedOptions{Link: c.link})
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind != broker.BackupStopped || m.Pause() != 0 {
				t.Errorf("manifest kind %s pause %v", m.Kind, m.Pause())
			}
			var segs []string
			for _, f := range m.Files {
				if _, ok := journal.ParseSegmentFile(f.Name); ok {
					segs = append(segs, f.Name)
				}
			}
			sort.Strings(segs)
			if len(segs) < 3 {
				t.Fatalf("segments %v", segs)
			}
			for i, name := range segs {
				a, _ := os.Stat(filepath.Join(c.dir, name))
				o, _ := os.Stat(filepath.Join(out, name))
				if want := c.link && i < len(segs)-1; os.SameFile(a, o) != want {
					t.Errorf("%s: linked %v, want %v", name, !want, want)
				}
			}
			r, _ := bkRestoreOpen(t, out)
			if got := bkDrain(t, r, "q"); len(got) != 41 || got["late"] != "after the checkpoint" {
				t.Errorf("restored %d messages", len(got))
			}
		})
	}
}

// TestBackupDirRefuses: the receiving side takes only the names a backup
// holds, in order, and checks every file against the manifest.
func TestBackupDirRefuses(t *testing.T) {
	newDir := func() *broker.BackupDir {
		w, err := broker.CreateBackupDir(filepath.Join(t.TempDir(), "b"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	for _, name := range []string{"../00000001.seg", "LOCK", "x/00000001.seg", "00000001.SEG", "1.seg", ""} {
		if err := newDir().WriteChunk(name, 0, 1, []byte("x")); err == nil {
			t.Errorf("accepted a file named %q", name)
		}
	}
	w := newDir()
	if err := w.WriteChunk("00000001.seg", 0, 10, []byte("12345")); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteChunk("00000001.seg", 6, 10, []byte("7890")); err == nil {
		t.Error("accepted a gap")
	}
	if err := newDir().WriteChunk("00000001.seg", 0, 2, []byte("123")); err == nil {
		t.Error("accepted more than the announced size")
	}
	w = newDir()
	w.WriteChunk("00000001.seg", 0, 3, []byte("123"))
	if _, err := w.Finish(); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("finish without a manifest: %v", err)
	}
	// A manifest that does not describe what came.
	out, m := bkSmallBackup(t)
	w = newDir()
	for _, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(out, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f.Name, ".seg") {
			data[40] ^= 1
		}
		if err := w.WriteChunk(f.Name, 0, int64(len(data)), data); err != nil {
			t.Fatal(err)
		}
	}
	man, _ := os.ReadFile(filepath.Join(out, broker.ManifestFile))
	if err := w.WriteChunk(broker.ManifestFile, 0, int64(len(man)), man); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteChunk("00000009.seg", 0, 1, []byte("x")); err == nil {
		t.Error("accepted a file after the manifest")
	}
	if _, err := w.Finish(); !errors.Is(err, broker.ErrBackupDamaged) {
		t.Errorf("finish with a damaged segment: %v", err)
	}
	if _, err := broker.CreateBackupDir(out); err == nil {
		t.Error("backup into a non-empty directory")
	}
}

// bkGateSink holds a backup up at its first file until released.
type bkGateSink struct {
	*broker.BackupDir
	once             sync.Once
	started, release chan struct{}
}

func (g *bkGateSink) BackupFile(name string, size int64, r io.Reader) error {
	g.once.Do(func() { close(g.started); <-g.release })
	return g.BackupDir.BackupFile(name, size, r)
}

// TestBackupDuringDiskFull: writes that find the disk full while a backup
// holds its segments are undone as usual — the journal does not fail (the
// backup pins segments only once they are written up to P, and an undone
// batch lies after P) — and the backup completes with the state at P.
func TestBackupDuringDiskFull(t *testing.T) {
	ctx := chutetest.Ctx(t)
	mem := vfs.NewMemFS()
	b := chutetest.MustOpen(t, "data", &broker.Options{FS: mem, SegmentSize: 64 << 10, CheckpointBytes: -1,
		MinFreeDisk: -1, DiskReserve: -1, DiskCheckInterval: time.Millisecond})
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range 40 {
		id := fmt.Sprintf("a-%d", i)
		want[id] = id + strings.Repeat(".", 4000)
		if _, err := b.Publish(ctx, "q", chute.Message{ID: id, Body: []byte(want[id])}); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "backup")
	w, err := broker.CreateBackupDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sink := &bkGateSink{BackupDir: w, started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- b.Backup(ctx, sink) }()
	<-sink.started

	mem.SetCapacity(mem.Used()) // the next write that grows a file finds no space
	refused := 0
	for i := 0; refused < 3 && i < 1000; i++ {
		_, err := b.Publish(ctx, "q", chute.Message{ID: fmt.Sprintf("b-%d", i), Body: make([]byte, 4000)})
		switch {
		case errors.Is(err, chute.ErrDiskFull):
			refused++
		case err != nil:
			t.Fatalf("publish on a full disk: %v", err)
		}
	}
	if refused == 0 {
		t.Fatal("no publish found the disk full")
	}
	if err := b.Healthy(); err != nil && !errors.Is(err, chute.ErrDiskFull) {
		t.Fatalf("the journal failed while a backup held segments: %v", err)
	}
	mem.SetCapacity(0)
	close(sink.release)
	if err := <-done; err != nil {
		t.Fatalf("backup: %v", err)
	}
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	chutetest.Eventually(t, "publishes to resume", func() bool {
		_, err := b.Publish(ctx, "q", chute.Message{ID: "after", Body: []byte("after")})
		return err == nil
	})
	if b.DiskStats().Rebuilds == 0 {
		t.Error("no write was undone")
	}
	r, _ := bkRestoreOpen(t, out)
	got := bkDrain(t, r, "q")
	if len(got) != len(want) {
		t.Errorf("restored %d messages, want the %d published before the backup", len(got), len(want))
	}
	for id, body := range want {
		if got[id] != body {
			t.Errorf("%s: restored %d bytes, want %d", id, len(got[id]), len(body))
		}
	}
}

// TestBackupManifestFormats: the versions the manifest names are those of
// the files it lists (read off their bytes: docs/format.md).
func TestBackupManifestFormats(t *testing.T) {
	out, m := bkSmallBackup(t)
	ckpt, err := os.ReadFile(filepath.Join(out, m.Files[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	seg, err := os.ReadFile(filepath.Join(out, "00000001.seg"))
	if err != nil {
		t.Fatal(err)
	}
	got := broker.BackupFormats{
		Segment:    int(binary.LittleEndian.Uint32(seg[8:])),
		Record:     int(seg[32+16]), // the first frame's payload: its version byte
		Checkpoint: int(binary.LittleEndian.Uint32(ckpt[8:])),
		Snapshot:   int(ckpt[28]), // the snapshot's version byte, after the header
	}
	if got != m.Formats || m.Format != broker.BackupFormat || m.Broker.GoVersion == "" || m.Created.IsZero() {
		t.Fatalf("manifest %+v; the files say %+v", m, got)
	}
}
