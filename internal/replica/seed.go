package replica

import (
	"context"
	"fmt"

	"github.com/chutemq/chute/internal/consensus"
	"github.com/chutemq/chute/internal/vfs"
)

// SeedLog makes an empty log in dir start from a shard snapshot (a
// backup of another cluster's leader, Node.Backup) as a member of a new
// group of voters: its Raft snapshot is the shard's state at the index
// it had applied, and its hard state commits it. Every member of the new
// group is seeded with the same snapshot and voters, so that they start
// with identical logs; then they elect a leader as a group that
// bootstrapped would. A log that holds anything is refused.
func SeedLog(fs vfs.FS, dir string, opts LogOptions, snapshot []byte, voters []uint64) (err error) {
	sh, err := RestoreShard(snapshot)
	if err != nil {
		return fmt.Errorf("replica: seed: %w", err)
	}
	l, d, err := OpenLog(fs, dir, opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(); err == nil {
			err = cerr
		}
	}()
	if d.HardState != (consensus.HardState{}) || d.Snapshot != nil || len(d.Entries) > 0 {
		return fmt.Errorf("replica: seed: %s holds a log already", dir)
	}
	at := sh.Applied()
	if at == 0 {
		return fmt.Errorf("replica: seed: a snapshot of an empty shard")
	}
	ctx := context.Background()
	if err := l.SaveSnapshot(ctx, &consensus.Snapshot{Index: at, Term: 1, Voters: voters, Data: snapshot}, nil); err != nil {
		return err
	}
	// (Term 1 after a new log's 0: written, not kept as a commit alone.)
	b, err := l.Save(&consensus.HardState{Term: 1, Commit: at}, nil)
	if err != nil {
		return err
	}
	return b.Wait(ctx)
}
