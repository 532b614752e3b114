package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/chutemq/chute/web"
)

// The dashboard (issue 10; the contract is docs/dashboard.md): the page
// and its assets from web.FS() at / and /ui/, a session endpoint, login
// and logout that turn a token into a cookie session
// (dashboard_session.go), and the live feed and history
// (dashboard_feed.go). Everything the page does beyond watching goes
// through the Connect API and its guard, with the same roles as the CLI.
//
// Two checks protect a browser's credentials from other sites:
//
//   - Origin: a call authenticated by the session cookie must come from a
//     page of this server (Origin's host equal to Host), so that another
//     site cannot make the browser act with the cookie (request forgery).
//   - Host: a server without tokens trusts whoever reaches it; a page of
//     another site whose name was made to resolve to 127.0.0.1 (DNS
//     rebinding) would be "same origin" with it. So, without tokens, the
//     page and every browser call (one with an Origin) must name the
//     server by an IP literal, localhost, or one of DashboardOptions.Hosts.

// DashboardOptions turn on the web dashboard (Options.Dashboard).
type DashboardOptions struct {
	// Hosts are further host names (without port) the dashboard answers to
	// when the server has no tokens, besides IP literals, localhost and
	// *.localhost (chute serve --dashboard-hosts).
	Hosts []string
	// HistoryStep is the time between two history samples of a queue;
	// default 5 s. While no feed is open the hub samples only this often.
	HistoryStep time.Duration
	// HistoryLen is the samples of history kept per queue; default 120
	// (10 minutes at 5 s). Memory: 24 bytes per sample and queue.
	HistoryLen int
	// Assets are the page and its assets, index.html at the top; default
	// web.FS().
	Assets fs.FS
}

func (o DashboardOptions) withDefaults() DashboardOptions {
	if o.HistoryStep <= 0 {
		o.HistoryStep = 5 * time.Second
	}
	if o.HistoryLen <= 0 {
		o.HistoryLen = 120
	}
	if o.Assets == nil {
		o.Assets = web.FS()
	}
	return o
}

// dashboard is the server's dashboard state.
type dashboard struct {
	opts     DashboardOptions
	hosts    map[string]bool // opts.Hosts, lower case
	assets   map[string]*asset
	sessions *sessionStore
	hub      *hub
}

// asset is one file of the page, read once at New.
type asset struct {
	name    string
	body    []byte
	etag    string
	modTime time.Time
}

const sessionCookie = "chute_session"

// maxLoginBody bounds the body of POST /ui/login.
const maxLoginBody = 4 << 10

// newDashboard reads the assets and registers the dashboard's routes.
func (s *Server) newDashboard(o DashboardOptions) {
	o = o.withDefaults()
	d := &dashboard{opts: o, hosts: map[string]bool{}, sessions: newSessionStore(s.now)}
	for _, h := range o.Hosts {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			d.hosts[h] = true
		}
	}
	d.assets = loadAssets(o.Assets, s)
	d.hub = newHub(s, o)
	s.dash = d
	s.mux.HandleFunc("GET /{$}", s.dashIndex)
	s.mux.HandleFunc("GET /ui/", s.dashAsset)
	for _, p := range []string{"GET /ui", "GET /dashboard"} {
		s.mux.Handle(p, http.RedirectHandler("/", http.StatusPermanentRedirect))
	}
	s.mux.HandleFunc("GET /ui/api/session", s.dashSession)
	s.mux.HandleFunc("POST /ui/login", s.dashLogin)
	s.mux.HandleFunc("POST /ui/logout", s.dashLogout)
	s.mux.HandleFunc("GET /ui/api/feed", s.dashFeed)
	s.mux.HandleFunc("GET /ui/api/history", s.dashHistory)
}

// loadAssets reads every file of fsys; a file that cannot be read is
// logged and left out.
func loadAssets(fsys fs.FS, s *Server) map[string]*asset {
	out := map[string]*asset{}
	err := fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := &asset{name: p, body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		if info, err := e.Info(); err == nil {
			a.modTime = info.ModTime()
		}
		out[p] = a
		return nil
	})
	if err != nil {
		s.log.Error("dashboard assets", "err", err)
	}
	return out
}

// dashIndex serves index.html at /.
func (s *Server) dashIndex(w http.ResponseWriter, r *http.Request) {
	s.serveAsset(w, r, "index.html")
}

// dashAsset serves /ui/NAME: the asset NAME.
func (s *Server) dashAsset(w http.ResponseWriter, r *http.Request) {
	s.serveAsset(w, r, strings.TrimPrefix(path.Clean(r.URL.Path), "/ui/"))
}

func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	if !s.hostAllowed(w, r) {
		return
	}
	a := s.dash.assets[name]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	http.ServeContent(w, r, a.name, a.modTime, bytes.NewReader(a.body))
}

// sessionInfo is the answer of GET /ui/api/session.
type sessionInfo struct {
	Auth     bool   `json:"auth"`
	LoggedIn bool   `json:"loggedIn"`
	Name     string `json:"name,omitempty"`
	Role     string `json:"role,omitempty"`
	Version  string `json:"version"`
	ReadOnly bool   `json:"readOnly"`
}

// dashSession says who the page is logged in as; never 401.
func (s *Server) dashSession(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(w, r) {
		return
	}
	info := sessionInfo{Auth: !s.keys.empty(), Version: s.opts.Info.Version}
	if p, _, err := s.authenticateBrowser(r); err == nil {
		info.LoggedIn, info.Name, info.Role, info.ReadOnly = true, p.name, p.role.String(), p.role == RoleRead
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, info)
}

// dashLogin turns a token into a session cookie.
func (s *Server) dashLogin(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(w, r) {
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
		s.stats.permissionDenied.Add(1)
		writeJSON(w, http.StatusForbidden, jsonError{errCrossOrigin.Error()})
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, jsonError{"bad login request: want {\"token\":\"…\"}, at most 4 KiB"})
		return
	}
	if s.keys.empty() {
		w.WriteHeader(http.StatusNoContent) // nothing to log in to: every call is allowed
		return
	}
	p := s.keys.lookup(req.Token)
	if p == nil {
		s.authFailed(r, errWrongToken)
		writeJSON(w, http.StatusUnauthorized, jsonError{"unknown token"})
		return
	}
	id, err := s.dash.sessions.create(p)
	if err != nil {
		s.log.Error("dashboard login", "err", err)
		writeJSON(w, http.StatusInternalServerError, jsonError{"cannot make a session"})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// dashLogout ends the session and expires its cookie.
func (s *Server) dashLogout(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(w, r) {
		return
	}
	c, err := r.Cookie(sessionCookie)
	if err == nil {
		if !sameOrigin(r.Header.Get("Origin"), r.Host) {
			s.stats.permissionDenied.Add(1)
			writeJSON(w, http.StatusForbidden, jsonError{errCrossOrigin.Error()})
			return
		}
		s.dash.sessions.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// dashRead authenticates a dashboard read (feed, history): bearer token
// or session cookie, Origin checked when present, role read. It answers
// the request itself and returns false when refused.
func (s *Server) dashRead(w http.ResponseWriter, r *http.Request) bool {
	if !s.hostAllowed(w, r) {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
		s.stats.permissionDenied.Add(1)
		writeJSON(w, http.StatusForbidden, jsonError{errCrossOrigin.Error()})
		return false
	}
	p, _, err := s.authenticateBrowser(r)
	if err != nil {
		s.authFailed(r, err)
		writeJSON(w, http.StatusUnauthorized, jsonError{err.Error()})
		return false
	}
	if !p.role.allows(RoleRead) {
		s.stats.permissionDenied.Add(1)
		writeJSON(w, http.StatusForbidden, jsonError{"token " + p.name + " has no read role"})
		return false
	}
	return true
}

type jsonError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

var (
	errCrossOrigin = errors.New("cross-origin request refused")
	errNoSession   = errors.New("no session: log in again")
)

// authenticateBrowser is authenticate, with a session cookie as a second
// way in when the request has no Authorization header; byCookie says which
// way it came. A request that authenticates marks its connection so
// (AuthTimeout cuts connections on which nothing did; a feed holds its
// connection open for hours).
func (s *Server) authenticateBrowser(r *http.Request) (p *principal, byCookie bool, err error) {
	if s.keys.empty() || s.dash == nil || r.Header.Get("Authorization") != "" {
		p, err = s.authenticate(r)
	} else if c, cerr := r.Cookie(sessionCookie); cerr != nil {
		err = errNoToken
	} else if p = s.dash.sessions.lookup(c.Value); p == nil {
		err = errNoSession
	} else {
		byCookie = true
	}
	if err != nil {
		return nil, false, err
	}
	if ci := connFrom(r.Context()); ci != nil {
		ci.authenticated()
	}
	return p, byCookie, nil
}

// browserCheck applies the dashboard's Origin and Host checks to an API
// call (guard.go): an error means PermissionDenied.
func (s *Server) browserCheck(r *http.Request, byCookie bool) error {
	if s.dash == nil {
		return nil
	}
	origin := r.Header.Get("Origin")
	if byCookie && !sameOrigin(origin, r.Host) {
		return errCrossOrigin
	}
	if s.keys.empty() && origin != "" {
		if !s.dash.allowedHost(r.Host) {
			return errHostRefused(r.Host)
		}
		// Without tokens the cookie proves nothing, so a page of another
		// site must not reach the API either: the server answers no CORS
		// preflight, which stops most such calls, and this stops the rest
		// (a "simple" request needs no preflight).
		if !sameOrigin(origin, r.Host) {
			return errCrossOrigin
		}
	}
	return nil
}

// hostAllowed answers 403 to a dashboard request whose Host the server
// does not answer to (only without tokens; see allowedHost).
func (s *Server) hostAllowed(w http.ResponseWriter, r *http.Request) bool {
	if !s.keys.empty() || s.dash.allowedHost(r.Host) {
		return true
	}
	s.stats.permissionDenied.Add(1)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	_, _ = io.WriteString(w, errHostRefused(r.Host).Error()+"\n")
	return false
}

func errHostRefused(host string) error {
	return errors.New("host " + host + " refused: without a token the dashboard answers only to IP addresses, " +
		"localhost and the names given with chute serve --dashboard-hosts (or set a token)")
}

// allowedHost reports whether hostport (a Host header) names the server
// by an IP literal, localhost, *.localhost or one of Hosts.
func (d *dashboard) allowedHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	switch {
	case host == "":
		return false
	case net.ParseIP(host) != nil, host == "localhost", strings.HasSuffix(host, ".localhost"):
		return true
	}
	return d.hosts[host]
}

// sameOrigin reports whether origin (an Origin header) is an http or
// https URL whose host is host (the request's Host header).
func sameOrigin(origin, host string) bool {
	if origin == "" || origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, host)
}
