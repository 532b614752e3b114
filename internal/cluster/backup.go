package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chutemq/chute/internal/vfs"
)

// A cluster backup is a directory: the leader's shard snapshot
// (BackupSnapshotFile) and a manifest (BackupManifestFile) written after
// it, which names its size and SHA-256. A directory without the manifest
// is an unfinished backup, and is refused.
const (
	BackupSnapshotFile = "shard.snapshot"
	BackupManifestFile = "cluster-backup.json"
	// BackupKind marks the manifest of a cluster backup (a single
	// broker's backup is another layout: docs/operations.md).
	BackupKind = "cluster"
)

// BackupManifest describes a cluster backup.
type BackupManifest struct {
	Kind string `json:"kind"`
	// Applied is the log index the snapshot is at; CommandVersion the
	// cluster's command version then (a cluster restored from it needs
	// binaries that read it).
	Applied        uint64    `json:"applied"`
	CommandVersion uint8     `json:"command_version"`
	Size           int64     `json:"size"`
	SHA256         string    `json:"sha256"`
	Created        time.Time `json:"created"`
	From           string    `json:"from"` // the leader it was taken from
}

// WriteBackup writes a backup into dir (created; it must not hold one).
func WriteBackup(dir string, data []byte, m BackupManifest) error {
	if _, err := os.Stat(filepath.Join(dir, BackupManifestFile)); err == nil {
		return fmt.Errorf("%s holds a backup already", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	m.Kind, m.Size, m.SHA256 = BackupKind, int64(len(data)), hex.EncodeToString(sum[:])
	path := filepath.Join(dir, BackupSnapshotFile)
	if err := vfs.WriteFileSynced(vfs.OS, path, path+".tmp", data); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path = filepath.Join(dir, BackupManifestFile)
	return vfs.WriteFileSynced(vfs.OS, path, path+".tmp", append(b, '\n'))
}

// ErrBadBackup: a backup directory that is unfinished, of another kind,
// or whose snapshot does not match its manifest.
var ErrBadBackup = errors.New("cluster: not a complete cluster backup")

// ReadBackup reads and checks a backup: the snapshot's size and SHA-256
// must be the manifest's.
func ReadBackup(dir string) ([]byte, BackupManifest, error) {
	var m BackupManifest
	b, err := os.ReadFile(filepath.Join(dir, BackupManifestFile))
	if err != nil {
		return nil, m, fmt.Errorf("%w: %v", ErrBadBackup, err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Kind != BackupKind {
		return nil, m, fmt.Errorf("%w: %s is not a cluster backup's manifest", ErrBadBackup, filepath.Join(dir, BackupManifestFile))
	}
	data, err := os.ReadFile(filepath.Join(dir, BackupSnapshotFile))
	if err != nil {
		return nil, m, fmt.Errorf("%w: %v", ErrBadBackup, err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != m.Size || hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, m, fmt.Errorf("%w: %s does not match its manifest (%d bytes, want %d; or its SHA-256 differs)",
			ErrBadBackup, BackupSnapshotFile, len(data), m.Size)
	}
	return data, m, nil
}
