// Package operator simulates the operator side that a gateway talks to while
// it is installed: the BRAS/RADIUS check of PPPoE accounts and the ITMS that
// registers LOIDs. Simulated gateways reach it over HTTP on loopback, with a
// bearer token, so every check crosses a real socket.
//
// API (JSON bodies, Authorization: Bearer <token>):
//
//	POST /bras/pppoe/auth  {"username","password","serial"}
//	     200 {"result":"ok","ip":"100.64.0.2","gateway":"100.64.0.1","dns":["..."]}
//	     403 {"result":"reject","code":691,"reason":"authentication failure"}
//	POST /itms/register    {"loid","password","serial"}
//	     200 {"status":"0","result":"1"}  (X_CT-COM_UserInfo Status / Result)
package operator

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"fieldagent/agent/secret"
)

// PPPoEAuthRequest is what a gateway sends when it dials.
type PPPoEAuthRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Serial   string `json:"serial"`
}

// PPPoEAuthResponse is the BRAS's answer.
type PPPoEAuthResponse struct {
	Result  string   `json:"result"`
	Code    int      `json:"code,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	IP      string   `json:"ip,omitempty"`
	Gateway string   `json:"gateway,omitempty"`
	DNS     []string `json:"dns,omitempty"`
}

// RegisterRequest is a gateway's LOID registration.
type RegisterRequest struct {
	LOID     string `json:"loid"`
	Password string `json:"password"`
	Serial   string `json:"serial"`
}

// RegisterResponse carries the X_CT-COM_UserInfo Status and Result values.
type RegisterResponse struct {
	Status string `json:"status"`
	Result string `json:"result"`
}

// Server is the simulated operator network. The zero value is not usable;
// call New.
type Server struct {
	token  secret.Secret
	logger *slog.Logger

	mu       sync.Mutex
	pppoe    map[string]secret.Secret // username → password
	loids    map[string]secret.Secret // loid → password
	bound    map[string]string        // loid → serial
	nextHost int
	sessions map[string]string // username → ip
}

// New returns an operator side that accepts callers presenting token.
func New(token secret.Secret, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		token: token, logger: logger,
		pppoe: map[string]secret.Secret{}, loids: map[string]secret.Secret{},
		bound: map[string]string{}, sessions: map[string]string{}, nextHost: 2,
	}
}

// AddPPPoEAccount makes the BRAS accept username with password.
func (s *Server) AddPPPoEAccount(username string, password secret.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pppoe[username] = password
}

// AddLOID makes ITMS accept the LOID with password.
func (s *Server) AddLOID(loid, password secret.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loids[loid.Reveal()] = password
}

// Sessions returns the PPPoE sessions that are up: username → address.
func (s *Server) Sessions() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.sessions))
	for k, v := range s.sessions {
		out[k] = v
	}
	return out
}

// BoundSerial returns the gateway serial a LOID is bound to.
func (s *Server) BoundSerial(loid string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn, ok := s.bound[loid]
	return sn, ok
}

// ServeHTTP serves the BRAS and ITMS endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.token.Reveal() {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or invalid bearer token"})
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	switch r.URL.Path {
	case "/bras/pppoe/auth":
		var req PPPoEAuthRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request body: " + err.Error()})
			return
		}
		status, resp := s.pppoeAuth(req)
		writeJSON(w, status, resp)
	case "/itms/register":
		var req RegisterRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request body: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, s.register(req))
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint"})
	}
}

func (s *Server) pppoeAuth(req PPPoEAuthRequest) (int, PPPoEAuthResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pw, ok := s.pppoe[req.Username]
	if !ok || pw.Reveal() != req.Password {
		s.logger.Info("bras: pppoe authentication rejected", "user", req.Username, "serial", req.Serial, "known_user", ok)
		return http.StatusForbidden, PPPoEAuthResponse{Result: "reject", Code: 691, Reason: "authentication failure"}
	}
	ip, ok := s.sessions[req.Username]
	if !ok {
		ip = fmt.Sprintf("100.64.%d.%d", s.nextHost/250, s.nextHost%250+2)
		s.nextHost++
		s.sessions[req.Username] = ip
	}
	s.logger.Info("bras: pppoe session up", "user", req.Username, "serial", req.Serial, "ip", ip)
	return http.StatusOK, PPPoEAuthResponse{Result: "ok", IP: ip, Gateway: "100.64.0.1", DNS: []string{"100.64.0.53"}}
}

func (s *Server) register(req RegisterRequest) RegisterResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	pw, ok := s.loids[req.LOID]
	switch {
	case !ok:
		s.logger.Info("itms: unknown loid", "serial", req.Serial)
		return RegisterResponse{Status: "1", Result: "2"}
	case pw.Reveal() != req.Password:
		s.logger.Info("itms: wrong loid password", "serial", req.Serial)
		return RegisterResponse{Status: "2", Result: "2"}
	}
	if sn, ok := s.bound[req.LOID]; ok && sn != req.Serial {
		s.logger.Info("itms: loid bound to another gateway", "serial", req.Serial)
		return RegisterResponse{Status: "4", Result: "2"}
	}
	s.bound[req.LOID] = req.Serial
	s.logger.Info("itms: loid registered", "serial", req.Serial)
	return RegisterResponse{Status: "0", Result: "1"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
