package server

import (
	"container/list"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// Dashboard sessions: POST /ui/login exchanges a token for a session, a
// random 32-byte ID in the chute_session cookie. The server keeps only
// the ID's SHA-256 (a memory dump or a log of this map gives no usable
// cookie), with the principal of the token it was made from, in memory:
// a restart ends every session. A session ends after sessionIdle without
// use, sessionMaxAge after it began, or on logout; beyond maxSessions the
// least recently used one is dropped.

const (
	sessionIdle   = 12 * time.Hour
	sessionMaxAge = 7 * 24 * time.Hour
	maxSessions   = 10000
)

type sessionStore struct {
	now func() time.Time

	mu  sync.Mutex
	m   map[[sha256.Size]byte]*list.Element // guarded by mu; values are *session
	lru *list.List                          // guarded by mu; most recently used first
}

type session struct {
	sum      [sha256.Size]byte
	p        *principal
	created  time.Time
	lastUsed time.Time
}

func newSessionStore(now func() time.Time) *sessionStore {
	return &sessionStore{now: now, m: map[[sha256.Size]byte]*list.Element{}, lru: list.New()}
}

// create makes a session for p and returns its ID (the cookie's value).
func (st *sessionStore) create(p *principal) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	now := st.now()
	ss := &session{sum: sha256.Sum256([]byte(id)), p: p, created: now, lastUsed: now}
	st.mu.Lock()
	defer st.mu.Unlock()
	for st.lru.Len() >= maxSessions {
		st.removeLocked(st.lru.Back())
	}
	st.m[ss.sum] = st.lru.PushFront(ss)
	return id, nil
}

// lookup returns the principal of session id, or nil if it has none (or
// it ended, which removes it).
func (st *sessionStore) lookup(id string) *principal {
	if id == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(id))
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	e := st.m[sum]
	if e == nil {
		return nil
	}
	ss := e.Value.(*session)
	if now.Sub(ss.lastUsed) >= sessionIdle || now.Sub(ss.created) >= sessionMaxAge {
		st.removeLocked(e)
		return nil
	}
	ss.lastUsed = now
	st.lru.MoveToFront(e)
	return ss.p
}

// remove ends session id (logout).
func (st *sessionStore) remove(id string) {
	sum := sha256.Sum256([]byte(id))
	st.mu.Lock()
	defer st.mu.Unlock()
	if e := st.m[sum]; e != nil {
		st.removeLocked(e)
	}
}

func (st *sessionStore) removeLocked(e *list.Element) {
	delete(st.m, e.Value.(*session).sum)
	st.lru.Remove(e)
}
