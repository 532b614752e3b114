package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/journal"
	"github.com/chutemq/chute/internal/version"
	"github.com/chutemq/chute/internal/vfs"
)

// Backup and restore (issue 8 item 10).
//
// A backup is a directory that Restore (`chute restore`) turns back into a
// data directory: one checkpoint at a journal position P, the segment
// files it needs, and manifest.json, written last. A running broker is
// backed up only through Broker.Backup (the admin call behind `chute
// backup --server`); a stopped one's directory can be copied as it is
// (BackupStoppedDir, `chute backup --data`). Invariants of a live backup:
//
//  1. The checkpoint is consistent with P. It is taken the way Checkpoint
//     takes one: Tail and engine.Snapshot in one critical section under
//     b.mu, where every record before P has been applied and none after
//     (append and apply happen together under b.mu). Publishes, and every
//     other change, wait for that critical section and for nothing else
//     of the backup: it is the backup's whole pause, measured and written
//     in the manifest (PauseNanos).
//  2. The backup holds every segment that checkpoint needs and nothing
//     after P: the segments before P's that hold blobs of messages in the
//     snapshot (engine.LiveUnits, read in the same critical section), and
//     P's own segment up to P. Recovery restores the checkpoint, replays
//     from P (and finds the end of the journal there), and opens the older
//     segments only for bodies, where gaps are allowed (Journal.Replay).
//  3. Every record before P is durable before a byte is read: the backup
//     syncs the journal, as a checkpoint does. From then on the sealed
//     segments and the tail up to P do not change. A disk-full rewind
//     between the snapshot and the sync (records before P undone) fails
//     the backup, as it fails a checkpoint (diskspace.go).
//  4. Those segments stay on disk while they are read: they are pinned
//     (journal.Pin) after the sync. A checkpoint that releases one later
//     only marks it; its file goes at Unpin. ckptMu is held from the
//     snapshot to the pins, so that no checkpoint releases one in between
//     (nor runs between its own snapshot and its releases meanwhile), and
//     no segment is pinned before its bytes up to P are written: a later
//     rewind only touches what comes after P.
//  5. The manifest lists every file with its size and SHA-256, computed
//     from the bytes sent. The receiver (BackupDir) hashes what it writes
//     and refuses a mismatch, and Restore checks every file again before
//     it changes anything in the target.
//
// Steps, in order: (ckptMu, b.mu) P, snapshot, live segments; (ckptMu)
// sync the journal, pin the segments; (no lock) send the checkpoint (and
// drop the snapshot), each segment, the manifest; unpin.

// BackupFormat is the version of the backup layout and manifest; Restore
// reads it and every earlier one.
const BackupFormat = 1

// ManifestFile is the name of a backup's manifest, its last file.
const ManifestFile = "manifest.json"

// Backup kinds (BackupManifest.Kind).
const (
	BackupLive    = "live"    // Broker.Backup: a fresh checkpoint at P, nothing after it
	BackupStopped = "stopped" // BackupStoppedDir: a stopped broker's files as they were
)

// BackupManifest is a backup's manifest.json.
type BackupManifest struct {
	// Format is the backup format's version (BackupFormat).
	Format int `json:"format"`
	// Kind is BackupLive or BackupStopped. A stopped broker's segments
	// also hold the records after the checkpoint, which recovery replays.
	Kind    string        `json:"kind"`
	Formats BackupFormats `json:"formats"`
	// Position is the checkpoint's journal position, "SSSSSSSS:OOOOOOOO"
	// (segment id and offset, hex): every record before it is in the
	// checkpoint, none after. "00000000:00000000" for a stopped broker
	// that had written no checkpoint (recovery replays every segment).
	Position string    `json:"position"`
	Created  time.Time `json:"created"`
	Broker   BuildInfo `json:"broker"`
	// PauseNanos is how long the backup held the broker's lock to take its
	// snapshot: publishes waited at most this long for it. 0 for a stopped
	// broker.
	PauseNanos int64 `json:"pause_ns"`
	// Files are the checkpoint and the segments, without the manifest.
	Files []BackupFile `json:"files"`
}

// BackupFormats are the versions of the on-disk formats in a backup (see
// docs/format.md, "Versions").
type BackupFormats struct {
	Segment    int `json:"segment"`
	Record     int `json:"record"`
	Checkpoint int `json:"checkpoint"`
	Snapshot   int `json:"snapshot"`
}

// BuildInfo names the build of chute that wrote a backup.
type BuildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"go_version"`
}

// BackupFile is one file of a backup.
type BackupFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// Pause is PauseNanos as a duration.
func (m *BackupManifest) Pause() time.Duration { return time.Duration(m.PauseNanos) }

// Bytes is the size of the backup's files, manifest excluded.
func (m *BackupManifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// currentFormats are the formats this build writes. The engine exports no
// version numbers, so they are read off what it writes: a record's first
// byte, a snapshot's first byte.
func currentFormats() BackupFormats {
	rec := (&engine.Record{Type: engine.RecBlobs}).Encode(nil)
	snap := engine.New().Snapshot(64)
	return BackupFormats{Segment: journal.SegmentVersion, Record: int(rec[0]),
		Checkpoint: journal.CheckpointVersion, Snapshot: int(snap[0][0])}
}

func newManifest(kind string, pos uint64) *BackupManifest {
	v := version.Get()
	return &BackupManifest{Format: BackupFormat, Kind: kind, Formats: currentFormats(),
		Position: formatPos(pos), Created: time.Now().UTC(),
		Broker: BuildInfo{Version: v.Version, Commit: v.Commit, GoVersion: v.GoVersion}}
}

func formatPos(pos uint64) string { return fmt.Sprintf("%08x:%08x", uint32(pos>>32), uint32(pos)) }

func parsePos(s string) (uint64, bool) {
	seg, off, ok := strings.Cut(s, ":")
	if !ok || len(seg) != 8 || len(off) != 8 {
		return 0, false
	}
	a, err1 := strconv.ParseUint(seg, 16, 32)
	b, err2 := strconv.ParseUint(off, 16, 32)
	return a<<32 | b, err1 == nil && err2 == nil
}

// ErrBackupDamaged: a backup's files do not match its manifest (a file
// missing, of another size or with another SHA-256), or it has no
// readable manifest. A *BackupError says which file; it also matches
// chute.ErrJournalCorrupt (exit status 3).
var ErrBackupDamaged = errors.New("backup damaged")

// BackupError is damage found in a backup.
type BackupError struct {
	Dir    string // the backup directory
	File   string // the file's name in it
	Reason string
}

func (e *BackupError) Error() string {
	return fmt.Sprintf("backup damaged: %s: %s", filepath.Join(e.Dir, e.File), e.Reason)
}

// Is makes errors.Is true for ErrBackupDamaged and chute.ErrJournalCorrupt.
func (e *BackupError) Is(target error) bool {
	return target == ErrBackupDamaged || target == chute.ErrJournalCorrupt
}

// BackupSink receives a backup's files, one after another, the manifest
// last: BackupFile must read r to its end (size bytes). It is an alias of
// an interface literal so that the server can name the capability without
// importing this package.
type BackupSink = interface {
	BackupFile(name string, size int64, r io.Reader) error
}

// Backup writes a consistent copy of the broker's journal to sink while the
// broker runs: a checkpoint at the journal position P of the moment it
// starts, the segments that checkpoint needs (P's own up to P), and the
// manifest (see the essay above). Publishes and other changes are held up
// only while the snapshot is taken (the manifest says how long); the
// copying runs beside them. On error, what sink got is not a backup (it
// has no manifest).
func (b *Broker) Backup(ctx context.Context, sink BackupSink) error {
	start := time.Now()
	cut, err := b.backupCut(ctx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer func() {
		if err := cut.pins.Unpin(); err != nil {
			b.log.Warn("backup: unpin segments", "err", err)
		}
	}()
	m := newManifest(BackupLive, cut.pos)
	m.PauseNanos = int64(cut.held)
	r, size := journal.CheckpointReader(cut.pos, cut.snap)
	if err := m.send(sink, journal.CheckpointFile(cut.pos), size, r); err != nil {
		return err
	}
	cut.snap = nil // the largest part of a backup's memory
	for _, id := range cut.segs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		n := int64(-1) // a sealed segment: all of it
		if id == uint32(cut.pos>>32) {
			n = int64(cut.pos & 0xffffffff)
		}
		sr, size, err := cut.pins.Section(id, n)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if err := m.send(sink, journal.SegmentFile(id), size, sr); err != nil {
			return err
		}
	}
	if err := sendManifest(sink, m); err != nil {
		return err
	}
	b.log.Info("backup", "position", m.Position, "files", len(m.Files)+1, "bytes", m.Bytes(),
		"publish pause", cut.held, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// backupCut is what a backup takes before it copies anything.
type backupCut struct {
	pos  uint64          // P: where the next record's frame starts
	snap [][]byte        // the engine's state at P
	segs []uint32        // the segments to copy, ascending; P's last
	pins *journal.Pinned // those segments, kept on disk
	held time.Duration   // how long b.mu was held: the publish pause
}

// backupCut takes P, the snapshot and the list of segments needed under
// b.mu, syncs the journal through P, and pins those segments, all under
// ckptMu: no checkpoint can release one of them in between, and none is
// pinned before its bytes up to P are written (a disk-full rewind removes
// the files of the segments its batch created, and refuses to if one is
// held).
func (b *Broker) backupCut(ctx context.Context) (*backupCut, error) {
	b.ckptMu.Lock()
	defer b.ckptMu.Unlock()
	b.mu.Lock()
	t0 := time.Now()
	if err := b.checkLocked(); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	// As in Checkpoint: after a write found the disk full the engine may
	// hold undone records; never snapshot that (diskspace.go).
	if err := b.rebuildLocked(); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	rewinds := b.jrn.Rewinds()
	seg, off := b.jrn.Tail()
	cut := &backupCut{pos: uint64(seg)<<32 | uint64(off), snap: b.eng.Snapshot(1 << 20)}
	for _, u := range b.eng.LiveUnits() {
		if u < seg {
			cut.segs = append(cut.segs, u)
		}
	}
	if seg != 0 {
		cut.segs = append(cut.segs, seg)
	}
	cut.held = time.Since(t0)
	b.mu.Unlock()

	if err := b.jrn.Sync(ctx); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	if b.jrn.Rewinds() != rewinds {
		// A batch was undone between the snapshot and the sync (a write
		// found the disk full): records before P may be gone, and the
		// snapshot holds them. As a checkpoint does, give up.
		return nil, fmt.Errorf("%w: a journal write found no space meanwhile", chute.ErrDiskFull)
	}
	pins, err := b.jrn.Pin(cut.segs)
	if err != nil {
		return nil, err
	}
	cut.pins = pins
	return cut, nil
}

// sumReader counts and hashes what is read through it.
type sumReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (s *sumReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	return n, err
}

// send hands one file to sink and lists it, with the SHA-256 of what sink
// read.
func (m *BackupManifest) send(sink BackupSink, name string, size int64, r io.Reader) error {
	sr := &sumReader{r: io.LimitReader(r, size), h: sha256.New()}
	if err := sink.BackupFile(name, size, sr); err != nil {
		return fmt.Errorf("backup %s: %w", name, err)
	}
	if sr.n != size {
		return fmt.Errorf("backup %s: %d of %d bytes read", name, sr.n, size)
	}
	m.Files = append(m.Files, BackupFile{Name: name, Size: size, SHA256: hex.EncodeToString(sr.h.Sum(nil))})
	return nil
}

func sendManifest(sink BackupSink, m *BackupManifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := sink.BackupFile(ManifestFile, int64(len(data)), bytes.NewReader(data)); err != nil {
		return fmt.Errorf("backup %s: %w", ManifestFile, err)
	}
	return nil
}

// BackupStoppedOptions configure BackupStoppedDir.
type BackupStoppedOptions struct {
	// Link hard-links the sealed segments (every one but the last) into the
	// backup instead of copying them: instant, and no extra space, but the
	// backup then shares those files' blocks with the data directory, so
	// it dies with that disk. The backup must be on the same file system.
	// The last segment and the checkpoint are always copied.
	Link bool
}

// BackupStoppedDir backs up the data directory dir of a stopped broker
// into out (new or empty): its newest checkpoint and every segment, as
// they are, and the manifest (kind BackupStopped). It takes dir's lock,
// so it refuses (a *LockedError naming the holder) while a broker runs
// there: back a running broker up with Broker.Backup.
func BackupStoppedDir(dir, out string, opts BackupStoppedOptions) (*BackupManifest, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	lock, err := LockDir(nil, dir)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	pos, snap, err := journal.ReadCheckpoint(nil, dir)
	if err != nil {
		return nil, wrapCorrupt(fmt.Errorf("backup: %w", err))
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, e := range names {
		if id, ok := journal.ParseSegmentFile(e.Name()); ok && e.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	w, err := CreateBackupDir(out)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	m := newManifest(BackupStopped, pos)
	copyFile := func(name string) error {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		return m.send(w, name, st.Size(), f)
	}
	if snap != nil {
		if err := copyFile(journal.CheckpointFile(pos)); err != nil {
			return nil, err
		}
	}
	for i, id := range ids {
		name := journal.SegmentFile(id)
		if opts.Link && i < len(ids)-1 {
			f, err := w.Link(name, filepath.Join(dir, name))
			if err != nil {
				return nil, err
			}
			m.Files = append(m.Files, f)
			continue
		}
		if err := copyFile(name); err != nil {
			return nil, err
		}
	}
	if err := sendManifest(w, m); err != nil {
		return nil, err
	}
	return w.Finish()
}

// BackupDir receives a backup into a directory: from Broker.Backup (it is
// a BackupSink), from a server's stream of chunks (WriteChunk: `chute
// backup --server`), or from BackupStoppedDir. Files are written as they
// come, each hashed; manifest.json is held until Finish has checked every
// file against it, and written last, so that a directory without one is
// an incomplete backup, which Restore refuses. Only the names a backup
// can hold are accepted (a segment, a checkpoint, the manifest), never a
// path.
type BackupDir struct {
	dir string

	name     string        // the file being received ("": none)
	f        *os.File      // its file (nil for the manifest)
	size     int64         // its announced size
	off      int64         // bytes received
	h        hash.Hash     // their SHA-256
	manifest *bytes.Buffer // the manifest, once it has begun
	got      map[string]BackupFile
	buf      []byte
}

// maxManifest bounds the manifest a BackupDir holds in memory.
const maxManifest = 64 << 20

// CreateBackupDir makes dir (or takes it, if it exists and is empty) to
// receive a backup.
func CreateBackupDir(dir string) (*BackupDir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("backup directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("backup directory: %w", err)
	}
	if len(ents) > 0 {
		return nil, fmt.Errorf("backup directory %s is not empty (it holds %s): back up into a new directory", dir, ents[0].Name())
	}
	return &BackupDir{dir: dir, got: make(map[string]BackupFile)}, nil
}

// isBackupName reports whether name is one a backup may hold.
func isBackupName(name string) bool {
	if name == ManifestFile {
		return true
	}
	if _, ok := journal.ParseSegmentFile(name); ok {
		return name == journal.SegmentFile(mustSeg(name))
	}
	if pos, ok := journal.ParseCheckpointFile(name); ok {
		return name == journal.CheckpointFile(pos)
	}
	return false
}

func mustSeg(name string) uint32 { id, _ := journal.ParseSegmentFile(name); return id }

// WriteChunk writes data at off in file name, whose whole size is size.
// Files come one after another, each from offset 0 with no gap, the
// manifest last.
func (d *BackupDir) WriteChunk(name string, off, size int64, data []byte) error {
	if name != d.name || d.name == "" {
		if err := d.endFile(); err != nil {
			return err
		}
		if err := d.startFile(name, size); err != nil {
			return err
		}
	}
	switch {
	case off != d.off:
		return fmt.Errorf("backup %s: data at offset %d, expected %d", name, off, d.off)
	case size != d.size:
		return fmt.Errorf("backup %s: size %d, announced as %d", name, size, d.size)
	case off+int64(len(data)) > size:
		return fmt.Errorf("backup %s: more than its %d bytes", name, size)
	}
	if d.f != nil {
		if _, err := d.f.Write(data); err != nil {
			return fmt.Errorf("backup %s: %w", name, err)
		}
	} else {
		d.manifest.Write(data)
	}
	d.h.Write(data)
	d.off += int64(len(data))
	return nil
}

func (d *BackupDir) startFile(name string, size int64) error {
	_, seen := d.got[name]
	switch {
	case !isBackupName(name):
		return fmt.Errorf("backup: %q is not a file a backup holds", name)
	case d.manifest != nil:
		return fmt.Errorf("backup: %s after the manifest", name)
	case seen:
		return fmt.Errorf("backup: %s sent twice", name)
	case size < 0 || name == ManifestFile && size > maxManifest:
		return fmt.Errorf("backup %s: size %d out of range", name, size)
	}
	if name == ManifestFile {
		d.manifest = bytes.NewBuffer(make([]byte, 0, size))
	} else {
		f, err := os.OpenFile(filepath.Join(d.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		d.f = f
	}
	d.name, d.size, d.off, d.h = name, size, 0, sha256.New()
	return nil
}

// endFile completes the file being received: all of it, synced.
func (d *BackupDir) endFile() error {
	if d.name == "" {
		return nil
	}
	name := d.name
	if d.off != d.size {
		return fmt.Errorf("backup %s: %d of %d bytes received", name, d.off, d.size)
	}
	if d.f != nil {
		err := d.f.Sync()
		if cerr := d.f.Close(); err == nil {
			err = cerr
		}
		d.f = nil
		if err != nil {
			return fmt.Errorf("backup %s: %w", name, err)
		}
	}
	d.got[name] = BackupFile{Name: name, Size: d.size, SHA256: hex.EncodeToString(d.h.Sum(nil))}
	d.name = ""
	return nil
}

// BackupFile implements BackupSink.
func (d *BackupDir) BackupFile(name string, size int64, r io.Reader) error {
	if d.buf == nil {
		d.buf = make([]byte, 1<<20)
	}
	var off int64
	for first := true; first || off < size; first = false {
		n, err := io.ReadFull(r, d.buf[:min(int64(len(d.buf)), size-off)])
		if err != nil && err != io.EOF {
			return err
		}
		if err := d.WriteChunk(name, off, size, d.buf[:n]); err != nil {
			return err
		}
		off += int64(n)
		if err == io.EOF && off < size {
			return fmt.Errorf("backup %s: %d of %d bytes: %w", name, off, size, io.ErrUnexpectedEOF)
		}
	}
	return d.endFile()
}

// Link puts a hard link to src in the backup as name (a sealed segment of
// a stopped broker) and returns its size and SHA-256.
func (d *BackupDir) Link(name, src string) (BackupFile, error) {
	if err := d.endFile(); err != nil {
		return BackupFile{}, err
	}
	if !isBackupName(name) || name == ManifestFile {
		return BackupFile{}, fmt.Errorf("backup: %q is not a segment", name)
	}
	dst := filepath.Join(d.dir, name)
	if err := os.Link(src, dst); err != nil {
		return BackupFile{}, fmt.Errorf("backup: hard link (--link needs the backup on the data directory's file system): %w", err)
	}
	f, err := sumFile(dst)
	if err != nil {
		return BackupFile{}, err
	}
	f.Name = name
	d.got[name] = f
	return f, nil
}

// Finish checks every file received against the manifest (the last file)
// and writes the manifest: the backup is complete. Without a manifest the
// backup was cut short.
func (d *BackupDir) Finish() (*BackupManifest, error) {
	if err := d.endFile(); err != nil {
		return nil, err
	}
	if _, ok := d.got[ManifestFile]; !ok {
		return nil, fmt.Errorf("backup %s: ended before its manifest: incomplete", d.dir)
	}
	m, err := parseManifest(d.dir, d.manifest.Bytes())
	if err != nil {
		return nil, err
	}
	listed := map[string]bool{ManifestFile: true}
	for _, f := range m.Files {
		listed[f.Name] = true
		if got, ok := d.got[f.Name]; !ok {
			return nil, &BackupError{Dir: d.dir, File: f.Name, Reason: "in the manifest but never received"}
		} else if got != f {
			return nil, &BackupError{Dir: d.dir, File: f.Name, Reason: fmt.Sprintf("received %d bytes with SHA-256 %s, the manifest says %d bytes with %s", got.Size, got.SHA256, f.Size, f.SHA256)}
		}
	}
	for name := range d.got {
		if !listed[name] {
			return nil, fmt.Errorf("backup %s: %s received but not in the manifest", d.dir, name)
		}
	}
	return m, vfs.WriteFileSynced(vfs.OS, filepath.Join(d.dir, ManifestFile), filepath.Join(d.dir, ManifestFile+".tmp"), d.manifest.Bytes())
}

// Close releases a file left open by a backup cut short. It does not
// remove what was written.
func (d *BackupDir) Close() error {
	if d.f != nil {
		err := d.f.Close()
		d.f, d.name = nil, ""
		return err
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func sumFile(name string) (BackupFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return BackupFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return BackupFile{}, fmt.Errorf("read %s: %w", name, err)
	}
	return BackupFile{Name: filepath.Base(name), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// parseManifest decodes and checks a manifest: a format this build reads,
// file names a backup may hold, at most one checkpoint, at P.
func parseManifest(dir string, data []byte) (*BackupManifest, error) {
	var m BackupManifest
	bad := func(reason string) error { return &BackupError{Dir: dir, File: ManifestFile, Reason: reason} }
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, bad(fmt.Sprintf("unreadable: %v", err))
	}
	cur := currentFormats()
	switch {
	case m.Format < 1:
		return nil, bad(fmt.Sprintf("format %d", m.Format))
	case m.Format > BackupFormat || m.Formats.Segment > cur.Segment || m.Formats.Record > cur.Record ||
		m.Formats.Checkpoint > cur.Checkpoint || m.Formats.Snapshot > cur.Snapshot:
		return nil, fmt.Errorf("backup %s was written by a newer chute (%s; formats %+v, this build reads up to backup %d, %+v): restore it with that version",
			dir, m.Broker.Version, m.Formats, BackupFormat, cur)
	}
	pos, ok := parsePos(m.Position)
	if !ok {
		return nil, bad(fmt.Sprintf("position %q", m.Position))
	}
	seen := map[string]bool{}
	ckpts := 0
	for _, f := range m.Files {
		switch {
		case !isBackupName(f.Name) || f.Name == ManifestFile:
			return nil, bad(fmt.Sprintf("lists %q, not a file a backup holds", f.Name))
		case seen[f.Name]:
			return nil, bad(fmt.Sprintf("lists %s twice", f.Name))
		case f.Size < 0 || len(f.SHA256) != 64:
			return nil, bad(fmt.Sprintf("%s: size %d, SHA-256 %q", f.Name, f.Size, f.SHA256))
		}
		seen[f.Name] = true
		if p, ok := journal.ParseCheckpointFile(f.Name); ok {
			ckpts++
			if p != pos {
				return nil, bad(fmt.Sprintf("checkpoint %s is not at the position %s", f.Name, m.Position))
			}
		}
	}
	if ckpts > 1 || ckpts == 0 && (m.Kind == BackupLive || pos != 0) {
		return nil, bad(fmt.Sprintf("%d checkpoints listed", ckpts))
	}
	return &m, nil
}

// ReadBackup reads a backup's manifest and checks every file it lists:
// present, of its size, with its SHA-256. Damage is a *BackupError.
func ReadBackup(dir string) (*BackupManifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, fmt.Errorf("backup: %w", serr)
		}
		return nil, &BackupError{Dir: dir, File: ManifestFile, Reason: "missing: not a backup, or one cut short (the manifest is written last)"}
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	m, err := parseManifest(dir, data)
	if err != nil {
		return nil, err
	}
	for _, want := range m.Files {
		got, err := sumFile(filepath.Join(dir, want.Name))
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, &BackupError{Dir: dir, File: want.Name, Reason: "missing"}
		case err != nil:
			return nil, fmt.Errorf("backup: %w", err)
		case got.Size != want.Size:
			return nil, &BackupError{Dir: dir, File: want.Name, Reason: fmt.Sprintf("%d bytes, the manifest says %d", got.Size, want.Size)}
		case got.SHA256 != want.SHA256:
			return nil, &BackupError{Dir: dir, File: want.Name, Reason: fmt.Sprintf("SHA-256 %s, the manifest says %s: its content changed", got.SHA256, want.SHA256)}
		}
	}
	return m, nil
}

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Force restores into a data directory that is not empty: its journal
	// (segments and checkpoints) is deleted first; other files stay.
	// Without it Restore refuses such a directory.
	Force bool
}

// RestoreReport says what Restore did.
type RestoreReport struct {
	Manifest *BackupManifest
	Removed  []string // journal files that Force deleted
	// What the restored broker holds (Restore opens it once to check it).
	Queues, Topics int
	Messages       int64
}

// Restore rebuilds data directory dir from the backup in backup. It checks
// the backup first (ReadBackup: every file present, with its size and
// SHA-256) and changes nothing if it is damaged. dir must be new or empty,
// unless opts.Force; it is locked while it is written, so a broker running
// there makes Restore fail. Files are copied, verified again and synced,
// the checkpoint last; then the broker is opened on dir once and closed,
// to check that it starts. An interrupted restore leaves dir incomplete:
// run it again with Force.
func Restore(backup, dir string, opts RestoreOptions) (*RestoreReport, error) {
	m, err := ReadBackup(backup)
	if err != nil {
		return nil, err
	}
	rep := &RestoreReport{Manifest: m}
	if err := prepareRestoreDir(dir, opts.Force, rep); err != nil {
		return nil, err
	}
	if err := installBackup(backup, dir, m); err != nil {
		return nil, err
	}
	b, err := Open(dir, nil)
	if err != nil {
		return nil, fmt.Errorf("restored %s, but the broker does not open it: %w", dir, err)
	}
	ctx := context.Background()
	qs, qerr := b.Queues(ctx)
	ts, terr := b.Topics(ctx)
	if err := errors.Join(qerr, terr, b.Close()); err != nil {
		return nil, fmt.Errorf("restored %s, but: %w", dir, err)
	}
	rep.Queues, rep.Topics = len(qs), len(ts)
	for _, q := range qs {
		rep.Messages += q.Depth()
	}
	return rep, nil
}

// prepareRestoreDir makes dir, or checks that it is empty but for its lock
// file (with force: deletes its journal).
func prepareRestoreDir(dir string, force bool, rep *RestoreReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	var held []string
	for _, e := range ents {
		if e.Name() != "LOCK" {
			held = append(held, e.Name())
		}
	}
	if len(held) > 0 && !force {
		more := ""
		if len(held) > 3 {
			more = ", …"
		}
		return fmt.Errorf("data directory %s is not empty (%s%s): restore into a new or empty directory, or pass --force to replace its journal",
			dir, strings.Join(held[:min(len(held), 3)], ", "), more)
	}
	if len(held) == 0 {
		return nil
	}
	lock, err := LockDir(nil, dir)
	if err != nil {
		return err
	}
	defer lock.Close()
	for _, name := range held {
		_, seg := journal.ParseSegmentFile(name)
		_, ckpt := journal.ParseCheckpointFile(name)
		if seg || ckpt || strings.HasSuffix(name, ".tmp") {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("--force: %w", err)
			}
			rep.Removed = append(rep.Removed, name)
		}
	}
	return syncDir(dir)
}

// installBackup copies the backup's files into dir under its lock,
// checking each copy against the manifest, segments first and the
// checkpoint last.
func installBackup(backup, dir string, m *BackupManifest) error {
	lock, err := LockDir(nil, dir)
	if err != nil {
		return err
	}
	defer lock.Close()
	files := slices.Clone(m.Files)
	slices.SortStableFunc(files, func(a, b BackupFile) int {
		_, ca := journal.ParseCheckpointFile(a.Name)
		_, cb := journal.ParseCheckpointFile(b.Name)
		switch {
		case ca == cb:
			return 0
		case ca:
			return 1
		}
		return -1
	})
	for _, f := range files {
		if err := copyVerified(filepath.Join(backup, f.Name), filepath.Join(dir, f.Name), f, backup); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// copyVerified copies src to dst (through dst.tmp, synced, renamed),
// checking what it copied against want.
func copyVerified(src, dst string, want BackupFile, backup string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && (n != want.Size || hex.EncodeToString(h.Sum(nil)) != want.SHA256) {
		err = &BackupError{Dir: backup, File: want.Name, Reason: "changed while it was restored"}
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore %s: %w", want.Name, err)
	}
	return nil
}
