// Package bbms simulates the operator's business-management system (BBMS),
// where a business router registers the customer it serves. Routers reach it
// over HTTP on loopback with a bearer token, so every registration crosses a
// real socket.
//
// API (JSON bodies, Authorization: Bearer <token>):
//
//	POST /api/v1/bindings          {"serial","customer_id"}
//	     201 {"serial","customer_id","state":"bound"}   (also when re-sent unchanged)
//	     404 {"error"}   unknown customer id
//	     409 {"error"}   serial already bound to another customer
//	GET  /api/v1/bindings/{serial}
//	     200 {"serial","customer_id","state":"bound"}
//	     404 {"error"}   serial not bound
package bbms

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"fieldagent/agent/secret"
)

// BindRequest is what a router sends to register its binding.
type BindRequest struct {
	Serial     string `json:"serial"`
	CustomerID string `json:"customer_id"`
}

// Binding is a registered router: its serial, its customer and the state
// ("bound").
type Binding struct {
	Serial     string `json:"serial"`
	CustomerID string `json:"customer_id"`
	State      string `json:"state"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Server is the simulated BBMS; it implements http.Handler. The zero value
// is not usable; call New.
type Server struct {
	token  secret.Secret
	logger *slog.Logger
	mux    *http.ServeMux

	mu        sync.Mutex
	customers map[string]bool
	bindings  map[string]string // serial → customer id
}

// New returns a BBMS that accepts callers presenting token. A nil logger
// discards.
func New(token secret.Secret, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		token: token, logger: logger, mux: http.NewServeMux(),
		customers: map[string]bool{}, bindings: map[string]string{},
	}
	s.mux.HandleFunc("POST /api/v1/bindings", s.bind)
	s.mux.HandleFunc("GET /api/v1/bindings/{serial}", s.get)
	return s
}

// AddCustomer makes customer id known, so routers can be bound to it.
func (s *Server) AddCustomer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.customers[id] = true
}

// Binding returns the customer a router serial is bound to; ok is false
// when the serial is not bound.
func (s *Server) Binding(serial string) (customerID string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	customerID, ok = s.bindings[serial]
	return customerID, ok
}

// ServeHTTP checks the bearer token and serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.token.Reveal() {
		writeJSON(w, http.StatusUnauthorized, ErrorResponse{Error: "missing or invalid bearer token"})
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) bind(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var req BindRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "bad request body: " + err.Error()})
		return
	}
	req.Serial, req.CustomerID = strings.TrimSpace(req.Serial), strings.TrimSpace(req.CustomerID)
	if req.Serial == "" || req.CustomerID == "" {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "serial and customer_id are required"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.customers[req.CustomerID] {
		s.logger.Info("bbms: unknown customer", "serial", req.Serial, "customer", req.CustomerID)
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "customer " + req.CustomerID + " does not exist: check the customer id on the order"})
		return
	}
	if cur, ok := s.bindings[req.Serial]; ok && cur != req.CustomerID {
		s.logger.Info("bbms: serial bound to another customer", "serial", req.Serial, "customer", req.CustomerID, "bound_to", cur)
		writeJSON(w, http.StatusConflict, ErrorResponse{Error: "serial " + req.Serial + " is already bound to customer " + cur + ": unbind it in BBMS first"})
		return
	}
	s.bindings[req.Serial] = req.CustomerID
	s.logger.Info("bbms: router bound", "serial", req.Serial, "customer", req.CustomerID)
	writeJSON(w, http.StatusCreated, Binding{Serial: req.Serial, CustomerID: req.CustomerID, State: "bound"})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	serial := r.PathValue("serial")
	cust, ok := s.Binding(serial)
	if !ok {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "serial " + serial + " is not bound"})
		return
	}
	writeJSON(w, http.StatusOK, Binding{Serial: serial, CustomerID: cust, State: "bound"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
