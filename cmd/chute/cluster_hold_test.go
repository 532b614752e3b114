package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/cluster"
)

// holdMember is a member's ForwardHoldPath as the test wants it: held
// until lapseAt POSTs, then lapsed; or absent (an older release).
type holdMember struct {
	mu       sync.Mutex
	posts    int
	lapseAt  int // the POST that finds the hold lapsed (0: never)
	absent   bool
	released bool
}

func (m *holdMember) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.absent || r.URL.Path != cluster.ForwardHoldPath {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodPost:
		var req cluster.ForwardHold
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ID == "" || req.Seconds <= 0 {
			http.Error(w, "bad hold", http.StatusBadRequest)
			return
		}
		m.posts++
		json.NewEncoder(w).Encode(map[string]bool{"held": m.posts > 1 && m.posts != m.lapseAt})
	case http.MethodDelete:
		m.released = true
		w.WriteHeader(http.StatusNoContent)
	}
}

func (m *holdMember) count() (int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.posts, m.released
}

// TestForwardHolds: `chute cluster backup`'s holds. A member that cannot
// be held refuses the backup, naming it and --force, and releases the
// others; with --force it is left out. The holds are renewed while a
// backup runs, and a renewal that finds a hold lapsed (a restarted
// member) fails the backup's next renew; release ends them.
func TestForwardHolds(t *testing.T) {
	defer func(d time.Duration) { holdRenewEvery = d }(holdRenewEvery)
	holdRenewEvery = time.Millisecond
	a, old := &holdMember{lapseAt: 5}, &holdMember{absent: true}
	sa, so := httptest.NewServer(a), httptest.NewServer(old)
	defer sa.Close()
	defer so.Close()
	members := []cluster.Member{{ID: 1, Addr: sa.URL}, {ID: 2, Addr: so.URL}}
	f := &clientFlags{}

	var out bytes.Buffer
	if _, err := f.holdForwarders(members, false, &out); err == nil || !strings.Contains(err.Error(), "node 2:") ||
		!strings.Contains(err.Error(), "older release") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("a member of an older release: %v", err)
	}
	if _, released := a.count(); !released {
		t.Fatal("the held member not released after the refusal")
	}

	*a = holdMember{lapseAt: 5}
	h, err := f.holdForwarders(members, true, &out)
	if err != nil || !strings.Contains(out.String(), "not held (--force): node 2:") || !strings.Contains(out.String(), "held the forwarders of 1 node(s)") {
		t.Fatalf("--force: %v\n%s", err, out.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _ := a.count(); n >= 5 { // the ticker reached the lapse
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no renewals within 10 s")
		}
		time.Sleep(time.Millisecond) // the ticker's period
	}
	if err := h.renew(); err == nil || !strings.Contains(err.Error(), "lapsed") {
		t.Fatalf("renew after a lapse: %v", err)
	}
	h.release()
	if _, released := a.count(); !released {
		t.Fatal("not released")
	}
}
