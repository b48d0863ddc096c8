package acs

import (
	"net/http"

	"fieldagent/tr069/internal/httpauth"
)

// authenticate checks the CPE's credentials when Config.CPEAuth is set and
// returns the authenticated username. A request in a live session (by
// cookie, or on the same connection) needs none. On failure it has
// answered 401 with a Digest challenge (and a Basic one where Basic is
// allowed) and returns false. Failed attempts are logged with the remote
// address and username, never the password.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	if s.cfg.CPEAuth == nil {
		return "", true
	}
	_, cookieErr := r.Cookie(SessionCookie)
	s.mu.Lock()
	sess := s.lookup(r)
	if sess != nil && (cookieErr == nil || sess.remote == r.RemoteAddr) {
		user := sess.authUser
		s.mu.Unlock()
		return user, true
	}
	s.mu.Unlock()

	basicOK := r.TLS != nil || s.cfg.AllowBasicWithoutTLS
	hint, scheme := httpauth.Username(r)
	stale := false
	if scheme != "" {
		user, pass, known := s.cfg.CPEAuth(hint)
		switch {
		case !known:
		case scheme == "Digest":
			var ok bool
			if ok, stale = s.digest.Check(r, user, pass); ok {
				return user, true
			}
		case scheme == "Basic" && basicOK:
			if httpauth.CheckBasic(r, user, pass) {
				return user, true
			}
		}
		switch {
		case stale:
			s.log.Debug("CPE digest nonce expired", "remote", r.RemoteAddr, "username", hint)
		case scheme == "Basic" && !basicOK:
			s.log.Warn("CPE authentication refused: Basic over plain HTTP", "remote", r.RemoteAddr, "username", hint)
		default:
			s.log.Warn("CPE authentication failed", "remote", r.RemoteAddr, "username", hint, "scheme", scheme)
		}
	}
	w.Header().Add("WWW-Authenticate", s.digest.Challenge(stale))
	if basicOK {
		w.Header().Add("WWW-Authenticate", `Basic realm="`+s.cfg.AuthRealm+`"`)
	}
	http.Error(w, "CWMP endpoint: authentication required", http.StatusUnauthorized)
	return "", false
}
