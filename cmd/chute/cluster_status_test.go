package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/cluster"
)

// TestPrintClusterOutboxes: a shard's status shows its outboxes (dead
// letters for other shards) once its node has carried or holds some,
// and not before; and a backup's hold on the forwarder while it lasts.
func TestPrintClusterOutboxes(t *testing.T) {
	in := cluster.Info{ID: 1, Shard: 1, Shards: 3, Leader: 1, IsLeader: true, Version: 4}
	var b strings.Builder
	if err := printClusterInfo(&b, in); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "outboxes") {
		t.Fatalf("outboxes shown with none:\n%s", b.String())
	}
	in.Carried, in.CarryFailures, in.Outboxed = 12, 1, 3
	b.Reset()
	if err := printClusterInfo(&b, in); err != nil {
		t.Fatal(err)
	}
	if want := "outboxes (dead letters for other shards): 3 waiting, 12 carried, 1 carries failed"; !strings.Contains(b.String(), want) {
		t.Fatalf("status lacks %q:\n%s", want, b.String())
	}
	if strings.Contains(b.String(), "held") {
		t.Fatalf("a hold shown with none:\n%s", b.String())
	}
	in.ForwardHeldUntil = time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)
	b.Reset()
	if err := printClusterInfo(&b, in); err != nil {
		t.Fatal(err)
	}
	if want := "forwarder held by a backup until 2026-12-01T05:00:00Z"; !strings.Contains(b.String(), want) {
		t.Fatalf("status lacks %q:\n%s", want, b.String())
	}
}
