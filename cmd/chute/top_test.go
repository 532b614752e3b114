package main

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/server"
)

// topRowRE matches a queue's row: name, ready, delayed, in flight, the
// two rates, consumers, producers and the two p99s.
var topRowRE = regexp.MustCompile(`(?m)^(\S+) +(\d+) +(\d+) +(\d+) +(\S+) +(\S+) +(\d+) +(\d+) +(\S+) +(\S+)$`)

// parseTopRows parses a frame's rows, in order, by queue name.
func parseTopRows(t *testing.T, out string) (names []string, rows map[string][]string) {
	t.Helper()
	rows = map[string][]string{}
	for _, m := range topRowRE.FindAllStringSubmatch(out, -1) {
		if m[1] == "QUEUE" {
			continue
		}
		names = append(names, m[1])
		rows[m[1]] = m[1:]
	}
	return names, rows
}

func TestTopOnce(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "orders")
	s.must("queue", "create", "idle")
	c, err := client.Dial(s.addr, client.WithClientID("worker-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for range 5 {
		if _, err := c.Publish(ctx, "orders", chute.Message{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := c.Receive(ctx, "orders", chute.ReceiveOptions{Max: 3, Wait: -1})
	if err != nil || len(ds) != 3 {
		t.Fatalf("Receive: %d, %v", len(ds), err)
	}
	if err := c.Ack(ctx, "orders", ds[0].Receipt, ds[1].Receipt); err != nil {
		t.Fatal(err)
	}

	out := s.must("top", "--once", "--interval", "50ms")
	if strings.Contains(out, clearScreen) {
		t.Errorf("top cleared the screen of a non-terminal:\n%q", out)
	}
	if n := strings.Count(out, "QUEUE "); n != 1 {
		t.Fatalf("top --once printed %d frames, want 1:\n%s", n, out)
	}
	names, rows := parseTopRows(t, out)
	// Sorted by depth: orders (3: 2 ready, 1 in flight) before idle (0).
	if !slices.Equal(names, []string{"orders", "idle"}) {
		t.Fatalf("top rows %v, want orders, idle (the unused DLQs left out):\n%s", names, out)
	}
	o := rows["orders"]
	// Name, ready, delayed, in flight, ..., consumers, producers.
	if o[1] != "2" || o[2] != "0" || o[3] != "1" || o[6] != "1" || o[7] != "1" {
		t.Errorf("orders row %q, want 2 ready, 0 delayed, 1 in flight, 1 consumer, 1 producer:\n%s", o, out)
	}
	if o[8] == "-" || o[9] == "-" {
		t.Errorf("orders row %q: want p99 processing and completion after two acks", o)
	}
	if i := rows["idle"]; i[1] != "0" || i[6] != "0" || i[7] != "0" || i[8] != "-" || i[9] != "-" {
		t.Errorf("idle row %q, want empty, no clients, no latency", i)
	}
	// Rates: both queues were in both samples, so each is a number, and
	// not negative.
	for _, name := range names {
		for _, col := range []int{4, 5} {
			if r, err := strconv.ParseFloat(rows[name][col], 64); err != nil || r < 0 {
				t.Errorf("%s rate %q: want a non-negative number (%v)", name, rows[name][col], err)
			}
		}
	}

	// --sort name; on a terminal the frame clears the screen first.
	var buf, errBuf bytes.Buffer
	pretendTerminal(t, &buf)
	if err := s.runWith(strings.NewReader(""), &buf, &errBuf, "top", "--once", "--interval", "10ms", "--sort", "name", "--server", s.addr); err != nil {
		t.Fatalf("top --sort name: %v\n%s", err, errBuf.String())
	}
	if !strings.HasPrefix(buf.String(), clearScreen) {
		t.Errorf("top on a terminal does not start by clearing the screen:\n%q", buf.String())
	}
	if names, _ := parseTopRows(t, buf.String()); !slices.Equal(names, []string{"idle", "orders"}) {
		t.Errorf("top --sort name rows %v, want idle, orders", names)
	}

	s.wantExit(2, "top", "--sort", "size")
	s.wantExit(2, "top", "--interval", "0s")
}

// TestTopRates: the rates are the change in totals over the elapsed time;
// a queue new since the previous sample has none.
func TestTopRates(t *testing.T) {
	prev := []chute.QueueStats{{Name: "a", Totals: chute.QueueTotals{Enqueued: 10, Acked: 4}}}
	cur := []chute.QueueStats{
		{Name: "a", Ready: 1, Totals: chute.QueueTotals{Enqueued: 30, Acked: 9}},
		{Name: "b", Ready: 5, Totals: chute.QueueTotals{Enqueued: 5}},
	}
	rows := topRows(prev, cur, 2*time.Second, "rate")
	if len(rows) != 2 || rows[0].st.Name != "a" || rows[0].pubRate != 10 || rows[0].ackRate != 2.5 {
		t.Fatalf("rows %+v; want a first, 10 publishes and 2.5 acks a second", rows)
	}
	if rows[1].pubRate >= 0 || fmtRate(rows[1].pubRate) != "-" {
		t.Fatalf("a new queue's rate %v; want unknown", rows[1].pubRate)
	}
	if rows = topRows(prev, cur, 2*time.Second, "depth"); rows[0].st.Name != "b" {
		t.Fatalf("by depth: %s first, want b", rows[0].st.Name)
	}
}
