package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
)

// TestClusterBackup: `chute cluster backup DIR` against a follower of a
// serving cluster (it follows the leader's address) writes a backup from
// which three new `chute serve --cluster-restore DIR` processes start a
// cluster holding every message confirmed before it. A damaged backup is
// refused at start.
func TestClusterBackup(t *testing.T) {
	ctx := context.Background()
	a := startCluster(t)
	li, cl := a.leader(ctx, -1)
	if err := cl.CreateQueue(ctx, "orders", chute.QueueConfig{MaxDeliveries: 3}); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for i := range 100 {
		res, err := cl.Publish(ctx, "orders", chute.Message{Body: []byte(fmt.Sprint(i)), Headers: map[string]string{"n": fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, res[0].Seq)
	}
	dir := filepath.Join(t.TempDir(), "backup")
	out, err := exec.Command(binary(t), "cluster", "backup", dir, "--server", fmt.Sprintf("127.0.0.1:%d", a.ports[(li+1)%3])).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "backed up") {
		t.Fatalf("cluster backup: %v\n%s", err, out)
	}

	b := startClusterLinked(t, false, "--cluster-restore", dir)
	_, bc := b.leader(ctx, -1)
	var got []uint64
	for len(got) < len(seqs) {
		ds, err := bc.Receive(ctx, "orders", chute.ReceiveOptions{Max: 100, Wait: 5 * time.Second})
		if err != nil || len(ds) == 0 {
			t.Fatalf("receive from the restored cluster: %v (%d of %d)", err, len(got), len(seqs))
		}
		for _, d := range ds {
			if d.Headers["n"] != string(d.Body) {
				t.Fatalf("message %d restored as %q with headers %v", d.Seq, d.Body, d.Headers)
			}
			got = append(got, d.Seq)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, seqs) {
		t.Fatalf("restored %v, confirmed %v", got, seqs)
	}

	// A damaged backup is refused before anything starts.
	flipMiddle(t, filepath.Join(dir, "shard.snapshot"))
	c := startClusterDeferred(t, "--cluster-restore", dir)
	p := launch(t, c.args(0)...)
	if code := p.wait(30 * time.Second); code == 0 || !strings.Contains(p.errOut.String(), "does not match its manifest") {
		t.Fatalf("a damaged backup (exit %d):\n%s", code, p.errOut)
	}
}

// flipMiddle flips a bit in the middle of the file at path.
func flipMiddle(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
