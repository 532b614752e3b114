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
// (BackupSnapshotFile; a cluster of several shards: one per shard,
// BackupShardFile, each from its shard's leader) and a manifest
// (BackupManifestFile) written after them, which names each one's size
// and SHA-256. A directory without the manifest is an unfinished backup,
// and is refused.
const (
	BackupSnapshotFile = "shard.snapshot"
	BackupManifestFile = "cluster-backup.json"
	// BackupKind marks the manifest of a cluster backup (a single
	// broker's backup is another layout: docs/operations.md).
	BackupKind = "cluster"
)

// BackupShardFile is shard k's snapshot file in a backup:
// BackupSnapshotFile for shard 0 (as before shards), shard-K.snapshot
// for the others.
func BackupShardFile(k uint32) string {
	if k == 0 {
		return BackupSnapshotFile
	}
	return fmt.Sprintf("shard-%d.snapshot", k)
}

// BackupManifest describes a cluster backup; its own fields are shard
// 0's snapshot's, Shards the other shards' (a cluster of several).
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
	// Shards are shards 1, 2, …: each snapshot is consistent with its
	// own shard's log at its index (the shards are not taken at one
	// instant together: each is a group of its own).
	Shards []ShardBackup `json:"shards,omitempty"`
}

// ShardBackup describes one shard's snapshot in a backup.
type ShardBackup struct {
	Shard          uint32 `json:"shard"`
	Applied        uint64 `json:"applied"`
	CommandVersion uint8  `json:"command_version"`
	Size           int64  `json:"size"`
	SHA256         string `json:"sha256"`
	From           string `json:"from"`
}

// Count is how many shards the backup holds.
func (m BackupManifest) Count() int { return 1 + len(m.Shards) }

// WriteBackup writes a backup into dir (created; it must not hold one):
// snaps[k] is shard k's snapshot, m's own fields describe shard 0's and
// m.Shards (Applied, CommandVersion, From) the others'; the sizes and
// SHA-256s are filled in here.
func WriteBackup(dir string, snaps [][]byte, m BackupManifest) error {
	if len(snaps) != m.Count() {
		return fmt.Errorf("cluster: %d snapshots for a manifest of %d shards", len(snaps), m.Count())
	}
	if _, err := os.Stat(filepath.Join(dir, BackupManifestFile)); err == nil {
		return fmt.Errorf("%s holds a backup already", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for k, data := range snaps {
		sum := sha256.Sum256(data)
		size, digest := int64(len(data)), hex.EncodeToString(sum[:])
		if k == 0 {
			m.Size, m.SHA256 = size, digest
		} else {
			m.Shards[k-1].Shard, m.Shards[k-1].Size, m.Shards[k-1].SHA256 = uint32(k), size, digest
		}
		path := filepath.Join(dir, BackupShardFile(uint32(k)))
		if err := vfs.WriteFileSynced(vfs.OS, path, path+".tmp", data); err != nil {
			return err
		}
	}
	m.Kind = BackupKind
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, BackupManifestFile)
	return vfs.WriteFileSynced(vfs.OS, path, path+".tmp", append(b, '\n'))
}

// ErrBadBackup: a backup directory that is unfinished, of another kind,
// or whose snapshot does not match its manifest.
var ErrBadBackup = errors.New("cluster: not a complete cluster backup")

// ReadBackup reads and checks a backup: each shard's snapshot (snaps[k]
// is shard k's) must have the manifest's size and SHA-256.
func ReadBackup(dir string) (snaps [][]byte, m BackupManifest, err error) {
	b, err := os.ReadFile(filepath.Join(dir, BackupManifestFile))
	if err != nil {
		return nil, m, fmt.Errorf("%w: %v", ErrBadBackup, err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Kind != BackupKind {
		return nil, m, fmt.Errorf("%w: %s is not a cluster backup's manifest", ErrBadBackup, filepath.Join(dir, BackupManifestFile))
	}
	for k := range m.Count() {
		size, digest := m.Size, m.SHA256
		if k > 0 {
			if m.Shards[k-1].Shard != uint32(k) {
				return nil, m, fmt.Errorf("%w: the manifest lists shard %d as the %d-th", ErrBadBackup, m.Shards[k-1].Shard, k)
			}
			size, digest = m.Shards[k-1].Size, m.Shards[k-1].SHA256
		}
		name := BackupShardFile(uint32(k))
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, m, fmt.Errorf("%w: %v", ErrBadBackup, err)
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != size || hex.EncodeToString(sum[:]) != digest {
			return nil, m, fmt.Errorf("%w: %s does not match its manifest (%d bytes, want %d; or its SHA-256 differs)",
				ErrBadBackup, name, len(data), size)
		}
		snaps = append(snaps, data)
	}
	return snaps, m, nil
}
