// Package ordersys is a simulated order system: the operator's REST API that
// assigns work orders to technicians and receives their progress events and
// completion reports (docs/order-system.md). It is an http.Handler; serve it
// with httptest.NewServer in tests or net/http in the lab.
//
// It keeps everything in memory and offers fault injection (FailNext) and raw
// orders (AddRawOrder) for the client's error paths.
package ordersys

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"fieldagent/agent/order"
	"fieldagent/agent/secret"
)

// Order states.
const (
	StateAssigned   = "assigned"
	StateInProgress = "in_progress"
	StateClosed     = "closed"
)

// MaxBody is the largest request body the server reads (1 MiB).
const MaxBody = 1 << 20

// eventKinds are the kinds POST /events accepts.
func eventKinds() []string {
	return []string{"accepted", "appointment_confirmed", "arrived", "started", "step_finished", "customer_accepted", "cleaned_up"}
}

// Event is a progress event as the server recorded it.
type Event struct {
	Kind   string    `json:"kind"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
	// Key is the Idempotency-Key the event was posted with, if any.
	Key string `json:"-"`
}

// Server is the simulated order system. Its methods are safe for concurrent
// use.
type Server struct {
	token  secret.Secret
	logger *slog.Logger
	mux    *http.ServeMux

	mu         sync.Mutex
	orders     map[string]*entry
	keys       map[string]stored // Idempotency-Key → first completion answer
	receipts   int
	failLeft   int
	failStatus int
}

type entry struct {
	summary    order.Summary
	wire       []byte // the order in wire form, credentials included
	state      string
	events     []Event
	eventKeys  map[string]bool
	completion []byte
	created    int // completions accepted (201)
	replayed   int // completions replayed (200)
}

type stored struct {
	orderID string
	body    []byte
}

// New returns a server that accepts only the bearer token; logger, if nil,
// discards.
func New(token secret.Secret, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		token:  token,
		logger: logger,
		mux:    http.NewServeMux(),
		orders: map[string]*entry{},
		keys:   map[string]stored{},
	}
	s.mux.HandleFunc("GET /api/v1/orders", s.list)
	s.mux.HandleFunc("GET /api/v1/orders/{id}", s.get)
	s.mux.HandleFunc("POST /api/v1/orders/{id}/events", s.postEvent)
	s.mux.HandleFunc("POST /api/v1/orders/{id}/completion", s.complete)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: see docs/order-system.md")
	})
	return s
}

// AddOrder assigns an order (state "assigned"), replacing one with the same ID.
// The server serves it in wire form, credentials included.
func (s *Server) AddOrder(o *order.Order) {
	wire, err := o.WireJSON()
	if err != nil { // cannot happen for an order of strings, numbers and times
		s.logger.Error("cannot add order", "order", o.ID, "err", err)
		return
	}
	s.put(o.ID, o.Summary(), wire)
}

// AddRawOrder serves body as it is for GET /api/v1/orders/{id}, to test the
// client against malformed orders. technician makes it appear in lists.
func (s *Server) AddRawOrder(id, technician string, body []byte) {
	s.put(id, order.Summary{ID: id, Technician: technician}, slices.Clone(body))
}

func (s *Server) put(id string, sum order.Summary, wire []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders[id] = &entry{summary: sum, wire: wire, state: StateAssigned, eventKeys: map[string]bool{}}
}

// Completion returns the completion report accepted for an order, as posted.
func (s *Server) Completion(id string) (body []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.orders[id]
	if e == nil || e.completion == nil {
		return nil, false
	}
	return slices.Clone(e.completion), true
}

// CompletionCounts returns how many completions of an order were accepted
// (201; at most 1) and how many were answered as replays of an earlier key
// (200).
func (s *Server) CompletionCounts(id string) (created, replayed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.orders[id]; e != nil {
		return e.created, e.replayed
	}
	return 0, 0
}

// Events returns the events recorded for an order, in arrival order.
func (s *Server) Events(id string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.orders[id]; e != nil {
		return slices.Clone(e.events)
	}
	return nil
}

// State returns an order's state ("assigned", "in_progress", "closed"), or ""
// for an unknown order.
func (s *Server) State(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.orders[id]; e != nil {
		return e.state
	}
	return ""
}

// FailNext makes the next n requests (any endpoint, before authentication)
// fail with status and {"error":"injected fault"}; n ≤ 0 clears it.
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLeft, s.failStatus = max(n, 0), status
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	fail := s.failLeft > 0
	status := s.failStatus
	if fail {
		s.failLeft--
	}
	s.mu.Unlock()
	if fail {
		s.logger.Info("injected fault", "method", r.Method, "path", r.URL.Path, "status", status)
		writeError(w, status, "injected fault")
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="order-system"`)
		writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
		return
	}
	s.logger.Debug("request", "method", r.Method, "path", r.URL.Path)
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	want := s.token.Reveal()
	return ok && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	tech := r.URL.Query().Get("technician")
	s.mu.Lock()
	out := []order.Summary{}
	for _, e := range s.orders {
		if tech == "" || e.summary.Technician == tech {
			sum := e.summary
			sum.State = e.state
			out = append(out, sum)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b order.Summary) int {
		if c := a.Appointment.Start.Compare(b.Appointment.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	writeJSON(w, http.StatusOK, map[string]any{"orders": out})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	e := s.orders[id]
	var body []byte
	if e != nil {
		body = e.wire
	}
	s.mu.Unlock()
	if e == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("order %q not found", id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// readBody reads a JSON request body of at most MaxBody bytes, answering 413
// or 400 itself; ok is false when it did.
func readBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", MaxBody))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "cannot read body")
		return nil, false
	}
	return body, true
}

func (s *Server) postEvent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var in struct {
		Kind   string `json:"kind"`
		At     string `json:"at"`
		Detail string `json:"detail"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "body: not an event object: "+err.Error())
		return
	}
	if !slices.Contains(eventKinds(), in.Kind) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("kind: %q is not one of %s", in.Kind, strings.Join(eventKinds(), ", ")))
		return
	}
	at, err := time.Parse(time.RFC3339Nano, in.At)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("at: %q is not an RFC 3339 time", in.At))
		return
	}
	if len(in.Detail) > 4096 {
		writeError(w, http.StatusBadRequest, "detail: longer than 4096 bytes")
		return
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.orders[id]
	if e == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("order %q not found", id))
		return
	}
	if key != "" && e.eventKeys[key] {
		writeJSON(w, http.StatusOK, map[string]string{"order_id": id, "state": e.state})
		return
	}
	if key != "" {
		e.eventKeys[key] = true
	}
	e.events = append(e.events, Event{Kind: in.Kind, At: at, Detail: in.Detail, Key: key})
	if e.state == StateAssigned {
		e.state = StateInProgress
	}
	writeJSON(w, http.StatusCreated, map[string]string{"order_id": id, "state": e.state})
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		writeError(w, http.StatusBadRequest, "Idempotency-Key header is required")
		return
	}
	if len(key) > 255 {
		writeError(w, http.StatusBadRequest, "Idempotency-Key header is longer than 255 bytes")
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, seen := s.keys[key]; seen {
		if prev.orderID != id {
			writeError(w, http.StatusConflict, fmt.Sprintf("Idempotency-Key was already used for order %q", prev.orderID))
			return
		}
		if e := s.orders[id]; e != nil {
			e.replayed++
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(prev.body)
		return
	}
	e := s.orders[id]
	if e == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("order %q not found", id))
		return
	}
	if e.state == StateClosed {
		writeError(w, http.StatusConflict, fmt.Sprintf("order %q is already closed by another completion", id))
		return
	}
	var report map[string]json.RawMessage
	if err := json.Unmarshal(body, &report); err != nil || report == nil {
		writeError(w, http.StatusBadRequest, "body: must be a JSON object (the completion report)")
		return
	}
	var got string
	if err := json.Unmarshal(report["order_id"], &got); err != nil || got == "" {
		writeError(w, http.StatusBadRequest, "order_id: is required (a string)")
		return
	}
	if got != id {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("order_id: %q does not match the order %q in the path", got, id))
		return
	}
	if res, ok := report["result"]; !ok || string(res) == "null" {
		writeError(w, http.StatusBadRequest, "result: is required")
		return
	}
	s.receipts++
	answer, _ := json.Marshal(map[string]string{
		"order_id": id,
		"state":    StateClosed,
		"receipt":  fmt.Sprintf("R-%06d", s.receipts),
	})
	s.keys[key] = stored{orderID: id, body: answer}
	e.state = StateClosed
	e.completion = slices.Clone(body)
	e.created++
	s.logger.Info("order closed", "order", id, "receipt", fmt.Sprintf("R-%06d", s.receipts))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(answer)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
