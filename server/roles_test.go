package server

import (
	"fmt"
	"testing"
	"time"

	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/gen/chute/v1/chutev1connect"
)

// TestEveryProcedureHasARole: every RPC of both services, as the
// generated descriptors list them, is in the role table (so a new RPC is
// not served, or served to everyone, before someone decides who may call
// it), with its streaming shape; and the table names no RPC that does not
// exist.
func TestEveryProcedureHasARole(t *testing.T) {
	services := chutev1.File_chute_v1_chute_proto.Services()
	if services.Len() < 2 {
		t.Fatalf("%d services in the descriptor, want MessageService and AdminService", services.Len())
	}
	seen := map[string]bool{}
	for i := range services.Len() {
		svc := services.Get(i)
		methods := svc.Methods()
		for j := range methods.Len() {
			m := methods.Get(j)
			path := fmt.Sprintf("/%s/%s", svc.FullName(), m.Name())
			seen[path] = true
			p, ok := procedures[path]
			if !ok {
				t.Errorf("%s is not in the role table (server/roles.go): give it a role", path)
				continue
			}
			if p.need == RoleNone {
				t.Errorf("%s: no role", path)
			}
			if p.stream != m.IsStreamingClient() {
				t.Errorf("%s: stream %v in the table, the descriptor says %v", path, p.stream, m.IsStreamingClient())
			}
			if p.audit != (p.need == RoleAdmin) {
				t.Errorf("%s: role %s, audit %v: every admin action, and only those, is audited", path, p.need, p.audit)
			}
			// A transaction needs consume and publishes too (roles.go).
			if p.publish != (p.need == RoleProduce || path == chutev1connect.MessageServiceCommitProcedure) {
				t.Errorf("%s: role %s, publish %v", path, p.need, p.publish)
			}
		}
	}
	for path := range procedures {
		if !seen[path] {
			t.Errorf("the role table names %s, which no service has", path)
		}
	}
	if p := procedureOf("/chute.v1.AdminService/Nope"); p.need != RoleAdmin {
		t.Errorf("an unknown procedure needs %s, want admin (fail closed)", p.need)
	}
}

// TestRoleAllows: the roles nest as documented.
func TestRoleAllows(t *testing.T) {
	want := map[Role][]Role{ // role → the needs it meets
		RoleNone:    nil,
		RoleRead:    {RoleRead},
		RoleProduce: {RoleRead, RoleProduce},
		RoleConsume: {RoleRead, RoleConsume},
		RoleAdmin:   {RoleRead, RoleProduce, RoleConsume, RoleAdmin},
	}
	for role, meets := range want {
		for _, need := range []Role{RoleNone, RoleRead, RoleProduce, RoleConsume, RoleAdmin} {
			ok := false
			for _, m := range meets {
				ok = ok || m == need
			}
			if role.allows(need) != ok {
				t.Errorf("%s allows %s: %v, want %v", role, need, role.allows(need), ok)
			}
		}
	}
	for _, s := range []string{"read", "Produce", " consume ", "ADMIN"} {
		if _, err := ParseRole(s); err != nil {
			t.Errorf("ParseRole(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "none", "write", "root"} {
		if r, err := ParseRole(s); err == nil {
			t.Errorf("ParseRole(%q) = %s, want an error", s, r)
		}
	}
}

// TestKeyring: tokens match by their secret or its SHA-256, nothing
// matches an empty token, a token without a role or secret matches
// nothing.
func TestKeyring(t *testing.T) {
	sum := Token{Secret: "hashed"}.sum()
	xsum := Token{Secret: "x"}.sum()
	k := newKeyring([]Token{
		{Name: "plain", Secret: "s3cret", Role: RoleRead},
		{Name: "hashed", SHA256: sum[:], Role: RoleAdmin},
		{Name: "roleless", Secret: "nobody"},
		{Name: "empty", Role: RoleAdmin},
	}, time.Now)
	for secret, want := range map[string]string{"s3cret": "plain", "hashed": "hashed", "nobody": "", "": "", "s3cret ": "", "S3CRET": ""} {
		got := ""
		if p := k.lookup(secret); p != nil {
			got = p.name
		}
		if got != want {
			t.Errorf("lookup(%q) = %q, want %q", secret, got, want)
		}
	}
	bad := [][]Token{
		{{Name: "", Secret: "a", Role: RoleRead}},
		{{Name: "a", Secret: "a", Role: RoleRead}, {Name: "a", Secret: "b", Role: RoleRead}},
		{{Name: "a", Secret: "x", Role: RoleRead}, {Name: "b", SHA256: xsum[:], Role: RoleRead}},
		{{Name: "a", Role: RoleRead}},
		{{Name: "a", Secret: "a", SHA256: sum[:], Role: RoleRead}},
		{{Name: "a", SHA256: sum[:5], Role: RoleRead}},
		{{Name: "a", Secret: "a"}},
		{{Name: "a", Secret: "a", Role: RoleProduce, Rate: -1}},
	}
	for i, tokens := range bad {
		if err := ValidateTokens(tokens); err == nil {
			t.Errorf("bad set %d validated: %+v", i, tokens)
		}
	}
	if err := ValidateTokens([]Token{{Name: "a", Secret: "a", Role: RoleAdmin}, {Name: "b", SHA256: sum[:], Role: RoleProduce, Rate: 5}}); err != nil {
		t.Errorf("good set: %v", err)
	}
}

// TestQuotaBuckets: a token bucket per quota, one second deep; a call
// larger than the bucket goes through when it is full and leaves it in
// debt; time (a fake clock) refills it.
func TestQuotaBuckets(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	q := newQuota(5, 0, func() time.Time { return now })
	admitted := 0
	for range 20 {
		if _, ok := q.admit(1, 100); ok {
			admitted++
		}
	}
	if admitted != 5 {
		t.Fatalf("%d of 20 single publishes admitted at once, want the bucket's 5", admitted)
	}
	wait, ok := q.admit(1, 100)
	if ok || wait != 200*time.Millisecond {
		t.Fatalf("over quota: admitted %v, wait %v; want a refusal and 200ms", ok, wait)
	}
	now = now.Add(200 * time.Millisecond)
	if _, ok := q.admit(1, 100); !ok {
		t.Fatal("not admitted once a message's worth of time passed")
	}
	// A batch of 12 waits for a full bucket, then leaves a debt of 7.
	if _, ok := q.admit(12, 100); ok {
		t.Fatal("a batch of 12 admitted on an empty bucket")
	}
	now = now.Add(time.Second)
	if _, ok := q.admit(12, 100); !ok {
		t.Fatal("a batch of 12 refused on a full bucket")
	}
	if wait, ok := q.admit(1, 100); ok || wait != 1600*time.Millisecond {
		t.Fatalf("after the batch: admitted %v, wait %v; want the debt of 7 plus 1 to take 1.6s", ok, wait)
	}

	// Bytes: 1000 bytes/s.
	b := newQuota(0, 1000, func() time.Time { return now })
	if _, ok := b.admit(100, 600); !ok {
		t.Fatal("600 bytes refused on a full 1000-byte bucket")
	}
	if wait, ok := b.admit(1, 600); ok || wait != 200*time.Millisecond {
		t.Fatalf("another 600 bytes: admitted %v, wait %v; want 200ms", ok, wait)
	}
	if newQuota(0, 0, time.Now) != nil {
		t.Fatal("a token without quotas has a quota")
	}
}

// TestFailLogLimits: one line per interval per host, with the count of
// the lines suppressed; the map of hosts stays bounded, however many
// hosts fail.
func TestFailLogLimits(t *testing.T) {
	f := newFailLog(time.Second, 3)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if log, n := f.note("a", now); !log || n != 0 {
		t.Fatalf("first failure: log %v, suppressed %d", log, n)
	}
	for range 9 {
		if log, _ := f.note("a", now.Add(500*time.Millisecond)); log {
			t.Fatal("logged twice within the interval")
		}
	}
	if log, n := f.note("b", now); !log || n != 0 {
		t.Fatalf("another host: log %v, suppressed %d", log, n)
	}
	if log, n := f.note("a", now.Add(time.Second)); !log || n != 9 {
		t.Fatalf("a second later: log %v, suppressed %d; want a line counting 9", log, n)
	}
	// Many hosts at once: the map stays at its bound, the rest share "*".
	for i := range 100 {
		f.note(fmt.Sprint("h", i), now.Add(time.Second))
	}
	if len(f.hosts) > 4 {
		t.Fatalf("%d hosts remembered, want at most 3 and the shared one", len(f.hosts))
	}
	if _, ok := f.hosts["*"]; !ok {
		t.Fatal("no shared entry for the overflow")
	}
	// Later, quiet hosts are forgotten to make room.
	if log, _ := f.note("late", now.Add(5*time.Second)); !log {
		t.Fatal("a new host after the others went quiet is not logged")
	}
	if _, ok := f.hosts["late"]; !ok || len(f.hosts) > 4 {
		t.Fatalf("hosts %v: want late among at most 4", f.hosts)
	}
}
