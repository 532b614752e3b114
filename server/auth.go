package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Token is one credential the server accepts: a bearer token with a name
// (for logs and the audit log; never the secret), a role, and optional
// publish quotas.
type Token struct {
	// Name identifies the token in logs and the audit log.
	Name string
	// Secret is the bearer token itself. Either Secret or SHA256 is set:
	// with SHA256 the server never holds the secret, only its hash.
	Secret string
	// SHA256 is the SHA-256 of the bearer token (as bytes, 32 of them).
	SHA256 []byte
	// Role is what the token may do; RoleNone allows nothing.
	Role Role
	// Rate bounds the messages per second the token may publish (a token
	// bucket holding one second's worth, at least one message); 0: no
	// limit.
	Rate float64
	// BytesPerSecond bounds the publish request bytes per second (as
	// protobuf, bodies and headers included; a bucket of one second's
	// worth); 0: no limit.
	BytesPerSecond float64
}

// ValidateTokens checks a set of tokens: each named, with exactly one of Secret
// and SHA256 (32 bytes), a role, quotas not negative; names and secrets
// unique.
func ValidateTokens(tokens []Token) error {
	names := map[string]bool{}
	sums := map[[sha256.Size]byte]string{}
	for i, t := range tokens {
		what := fmt.Sprintf("token %d (%q)", i+1, t.Name)
		switch {
		case t.Name == "":
			return fmt.Errorf("token %d: no name", i+1)
		case names[t.Name]:
			return fmt.Errorf("%s: name used twice", what)
		case (t.Secret == "") == (len(t.SHA256) == 0):
			return fmt.Errorf("%s: give either the token or its SHA-256, not both or neither", what)
		case len(t.SHA256) != 0 && len(t.SHA256) != sha256.Size:
			return fmt.Errorf("%s: the SHA-256 has %d bytes, want %d", what, len(t.SHA256), sha256.Size)
		case t.Role <= RoleNone || t.Role > RoleAdmin:
			return fmt.Errorf("%s: no role: use read, produce, consume or admin", what)
		case t.Rate < 0 || t.BytesPerSecond < 0:
			return fmt.Errorf("%s: a negative quota", what)
		}
		names[t.Name] = true
		sum := t.sum()
		if other, dup := sums[sum]; dup {
			return fmt.Errorf("%s: the same token as %q", what, other)
		}
		sums[sum] = t.Name
	}
	return nil
}

func (t Token) sum() [sha256.Size]byte {
	if t.Secret != "" {
		return sha256.Sum256([]byte(t.Secret))
	}
	var s [sha256.Size]byte
	copy(s[:], t.SHA256)
	return s
}

// principal is who made a call: the token it authenticated with. It rides
// in the request's context from the guard to the handlers.
type principal struct {
	name  string
	role  Role
	quota *quota // nil: no quota
}

// anonymous is the principal of every call when the server has no token.
var anonymous = &principal{name: "anonymous", role: RoleAdmin}

type principalKey struct{}

// principalFrom returns the principal of a call (anonymous if none was
// recorded: the server has no token).
func principalFrom(ctx context.Context) *principal {
	if p, ok := ctx.Value(principalKey{}).(*principal); ok {
		return p
	}
	return anonymous
}

// keyring holds the tokens by the SHA-256 of their secret. Lookup hashes
// what the client sent and compares it with every token's hash in
// constant time, so neither the secrets nor which token nearly matched
// leak through timing.
type keyring struct {
	sums   [][sha256.Size]byte
	owners []*principal
}

func newKeyring(tokens []Token, clock func() time.Time) *keyring {
	k := &keyring{}
	for _, t := range tokens {
		if t.Secret == "" && len(t.SHA256) != sha256.Size || t.Role == RoleNone {
			continue // matches nothing (ValidateTokens reports it)
		}
		k.sums = append(k.sums, t.sum())
		k.owners = append(k.owners, &principal{name: t.Name, role: t.Role, quota: newQuota(t.Rate, t.BytesPerSecond, clock)})
	}
	return k
}

func (k *keyring) empty() bool { return len(k.sums) == 0 }

// lookup returns the principal whose token is secret, or nil.
func (k *keyring) lookup(secret string) *principal {
	if secret == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(secret))
	var found *principal
	for i := range k.sums {
		if subtle.ConstantTimeCompare(sum[:], k.sums[i][:]) == 1 {
			found = k.owners[i] // no early exit: every token costs the same
		}
	}
	return found
}

var (
	errNoToken    = errors.New(`missing bearer token: send "Authorization: Bearer TOKEN"`)
	errWrongToken = errors.New("unknown bearer token")
)

// authenticate returns the principal of r, or why it has none.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	if s.keys.empty() {
		return anonymous, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, errNoToken
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, errNoToken
	}
	if p := s.keys.lookup(secret); p != nil {
		return p, nil
	}
	return nil, errWrongToken
}

// failLog logs failed authentications at most once per interval per
// remote host, with the number of failures it did not log since the last
// line; every failure is counted in Stats.AuthFailures whatever is
// logged. It remembers at most max hosts: when full it forgets hosts
// quiet for an interval, and if none is, every further host shares one
// more entry ("*"), so a flood from many addresses costs a bounded map
// and at most one line per interval for all of them.
type failLog struct {
	interval time.Duration
	max      int

	mu    sync.Mutex
	hosts map[string]*failEntry // guarded by mu
}

type failEntry struct {
	last       time.Time // when a line was last logged for this host
	suppressed int       // failures since, not logged
}

func newFailLog(interval time.Duration, max int) *failLog {
	return &failLog{interval: interval, max: max, hosts: map[string]*failEntry{}}
}

// note records a failure from host at now and reports whether to log it,
// with the failures suppressed since the last line.
func (f *failLog) note(host string, now time.Time) (log bool, suppressed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.hosts[host]
	if e == nil {
		if len(f.hosts) >= f.max {
			f.pruneLocked(now)
		}
		if len(f.hosts) >= f.max {
			host = "*"
			e = f.hosts[host]
		}
		if e == nil {
			e = &failEntry{}
			f.hosts[host] = e
		}
	}
	if !e.last.IsZero() && now.Sub(e.last) < f.interval {
		e.suppressed++
		return false, 0
	}
	suppressed, e.suppressed, e.last = e.suppressed, 0, now
	return true, suppressed
}

// pruneLocked forgets hosts that logged nothing for an interval. Their
// suppressed failures, if any, are lost to the log (not to the counter).
func (f *failLog) pruneLocked(now time.Time) {
	for h, e := range f.hosts {
		if now.Sub(e.last) >= f.interval {
			delete(f.hosts, h)
		}
	}
}

// authFailed counts a failed authentication and logs it, rate-limited.
// The token the client sent is never logged.
func (s *Server) authFailed(r *http.Request, err error) {
	s.stats.authFailures.Add(1)
	host := remoteHost(r.RemoteAddr)
	log, suppressed := s.failLog.note(host, s.now())
	if !log {
		return
	}
	s.log.Warn("authentication failed", "remote", r.RemoteAddr, "procedure", r.URL.Path,
		"reason", err.Error(), "suppressed", suppressed)
}

// remoteHost is the host part of a remote address ("10.0.0.7" of
// "10.0.0.7:51234"): a client opens connections from many ports.
func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
