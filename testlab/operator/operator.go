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
//	     504 {"result":"timeout","reason":"no PADO ..."}  (no access concentrator
//	         answers: the VLAN is not the internet VLAN, or the OLT refuses the ONU)
//	POST /itms/register    {"loid","password","serial"}
//	     200 {"status":"0","result":"1"}  (X_CT-COM_UserInfo Status / Result)
//	     504 {"error":"..."}  (the OLT does not authorise the ONU: nothing
//	         reaches ITMS and the gateway's registration times out)
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
	// VLAN is the VLAN the gateway's WAN tags its PPPoE discovery with;
	// 0 is untagged.
	VLAN int `json:"vlan,omitempty"`
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
	// vlanOnly, when set, makes the BRAS answer PPPoE discovery on vlan
	// only; otherwise on any VLAN.
	vlanOnly bool
	vlan     int
	refused  map[string]bool // ONU serials the OLT does not authorise
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
		refused: map[string]bool{},
	}
}

// AddPPPoEAccount makes the BRAS accept username with password.
func (s *Server) AddPPPoEAccount(username string, password secret.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pppoe[username] = password
}

// RemovePPPoEAccount makes the BRAS forget username (an account closed, or
// never opened, in the operator's system) and ends its session.
func (s *Server) RemovePPPoEAccount(username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pppoe, username)
	delete(s.sessions, username)
}

// ServeInternetVLAN makes the BRAS answer PPPoE discovery on vlan only (0
// is untagged): a gateway dialling on another VLAN gets no PADO.
func (s *Server) ServeInternetVLAN(vlan int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vlanOnly, s.vlan = true, vlan
}

// InternetVLAN returns the VLAN ServeInternetVLAN set, and false when the
// BRAS answers on any VLAN.
func (s *Server) InternetVLAN() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vlan, s.vlanOnly
}

// ServeAnyVLAN makes the BRAS answer PPPoE discovery on every VLAN (the
// state New leaves).
func (s *Server) ServeAnyVLAN() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vlanOnly, s.vlan = false, 0
}

// AuthoriseONU sets whether the OLT authorises the ONU with the serial on
// its PON port (every ONU is, after New). An ONU that is not gets no
// answer from ITMS (its registration times out) nor from the BRAS (no
// PADO).
func (s *Server) AuthoriseONU(serial string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		delete(s.refused, serial)
	} else {
		s.refused[serial] = true
	}
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
		if s.onuRefused(req.Serial) {
			s.logger.Info("olt: onu not authorised, registration dropped", "serial", req.Serial)
			writeJSON(w, http.StatusGatewayTimeout, map[string]string{"error": "the OLT does not authorise this ONU: no registration reaches ITMS"})
			return
		}
		writeJSON(w, http.StatusOK, s.register(req))
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint"})
	}
}

func (s *Server) onuRefused(serial string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused[serial]
}

func (s *Server) pppoeAuth(req PPPoEAuthRequest) (int, PPPoEAuthResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.refused[req.Serial]:
		s.logger.Info("olt: onu not authorised, no pppoe discovery passes", "serial", req.Serial)
		return http.StatusGatewayTimeout, PPPoEAuthResponse{Result: "timeout", Reason: "no PADO: the OLT does not authorise the ONU"}
	case s.vlanOnly && req.VLAN != s.vlan:
		s.logger.Info("bras: pppoe discovery on a VLAN without an access concentrator", "serial", req.Serial, "vlan", req.VLAN)
		return http.StatusGatewayTimeout, PPPoEAuthResponse{Result: "timeout", Reason: fmt.Sprintf("no PADO: no access concentrator on VLAN %d", req.VLAN)}
	}
	pw, ok := s.pppoe[req.Username]
	if !ok {
		// A real BRAS answers an unknown account with the same 691 as a
		// wrong password; only its reply message (which gateways do not
		// report over TR-069) differs.
		s.logger.Info("bras: pppoe authentication rejected", "user", secret.Hint(req.Username), "serial", req.Serial, "known_user", false)
		return http.StatusForbidden, PPPoEAuthResponse{Result: "reject", Code: 691, Reason: "authentication failure: no such account"}
	}
	if pw.Reveal() != req.Password {
		s.logger.Info("bras: pppoe authentication rejected", "user", secret.Hint(req.Username), "serial", req.Serial, "known_user", true)
		return http.StatusForbidden, PPPoEAuthResponse{Result: "reject", Code: 691, Reason: "authentication failure"}
	}
	ip, ok := s.sessions[req.Username]
	if !ok {
		ip = fmt.Sprintf("100.64.%d.%d", s.nextHost/250, s.nextHost%250+2)
		s.nextHost++
		s.sessions[req.Username] = ip
	}
	s.logger.Info("bras: pppoe session up", "user", secret.Hint(req.Username), "serial", req.Serial, "ip", ip)
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
