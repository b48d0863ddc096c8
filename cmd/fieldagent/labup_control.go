package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"fieldagent/agent/order"
	"fieldagent/agent/secret"
	"fieldagent/testlab"
	"fieldagent/testlab/scenario"
)

// The control API of a running lab (lab up serves it on 127.0.0.1, lab
// fault calls it), bearer-token authenticated, JSON:
//
//	GET    /faults       the catalogue, each with active and applicable
//	POST   /faults/{id}  inject: 200, 404 unknown fault, 409 the lab does not
//	                     run the fault's device, 422 the site cannot take it
//	                     in its state (the error says why)
//	DELETE /faults/{id}  clear:  200, 404 unknown fault, 422 as for POST

// faultSite is the subset of *testlab.Site that the control API uses.
type faultSite interface {
	InjectFault(id string) error
	ClearFault(id string) error
	ActiveFaults() []string
}

// labFault is one catalogued fault as the control API shows it.
type labFault struct {
	testlab.Fault
	// Active: injected on the running site.
	Active bool `json:"active"`
	// Applicable: the site runs the device the fault needs.
	Applicable bool `json:"applicable"`
}

// labFaultList is GET /faults.
type labFaultList struct {
	Faults []labFault `json:"faults"`
	Active []string   `json:"active"`
}

// labFaultChange is the answer to POST and DELETE /faults/{id}.
type labFaultChange struct {
	Fault labFault `json:"fault"`
	// Changed is false when the fault already was (inject) or was not
	// (clear) active.
	Changed bool     `json:"changed"`
	Active  []string `json:"active"`
}

// labControl serves the control API.
type labControl struct {
	Site    faultSite
	Devices []order.DeviceKind
	Token   secret.Secret
}

func (c *labControl) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, _ *http.Request) {
		writeLabJSON(w, http.StatusOK, c.list())
	})
	mux.HandleFunc("POST /faults/{id}", func(w http.ResponseWriter, r *http.Request) { c.change(w, r.PathValue("id"), true) })
	mux.HandleFunc("DELETE /faults/{id}", func(w http.ResponseWriter, r *http.Request) { c.change(w, r.PathValue("id"), false) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(c.Token.Reveal())) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fieldagent lab"`)
			writeLabJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token: lab fault reads it from the lab's state file"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (c *labControl) list() labFaultList {
	active := c.Site.ActiveFaults()
	out := labFaultList{Faults: []labFault{}, Active: active}
	if out.Active == nil {
		out.Active = []string{}
	}
	for _, f := range testlab.Faults() {
		out.Faults = append(out.Faults, c.fault(f, active))
	}
	return out
}

func (c *labControl) fault(f testlab.Fault, active []string) labFault {
	return labFault{Fault: f, Active: slices.Contains(active, f.ID), Applicable: slices.Contains(c.Devices, order.DeviceKind(f.Device))}
}

func (c *labControl) change(w http.ResponseWriter, id string, inject bool) {
	i := slices.IndexFunc(testlab.Faults(), func(f testlab.Fault) bool { return f.ID == id })
	if i < 0 {
		writeLabJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no fault %q in the catalogue (fieldagent lab fault list shows them)", id)})
		return
	}
	f := testlab.Faults()[i]
	was := slices.Contains(c.Site.ActiveFaults(), id)
	var err error
	if inject {
		err = c.Site.InjectFault(id)
	} else {
		err = c.Site.ClearFault(id)
	}
	switch {
	case errors.Is(err, testlab.ErrUnknownFault):
		writeLabJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	case errors.Is(err, testlab.ErrFaultNotApplicable):
		writeLabJSON(w, http.StatusConflict, map[string]string{"error": fmt.Sprintf("%s is a fault of the %s, which this lab does not run: start a scenario with the %s%s", id, f.Device, f.Device, scenariosWith(order.DeviceKind(f.Device)))})
		return
	case err != nil:
		// The site cannot take it in its state (e.g. a PPPoE fault on a
		// gateway without a WAN yet): the message says what to start.
		writeLabJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": err.Error()})
		return
	}
	active := c.Site.ActiveFaults()
	writeLabJSON(w, http.StatusOK, labFaultChange{Fault: c.fault(f, active), Changed: was != inject, Active: nonNil(active)})
}

// scenariosWith suggests the built-in scenarios that run device k.
func scenariosWith(k order.DeviceKind) string {
	var names []string
	for _, n := range scenario.Names() {
		if s, err := scenario.Builtin(n); err == nil && slices.Contains(s.Devices, k) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (fieldagent lab up " + strings.Join(names, ", or lab up ") + ")"
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeLabJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Errors of labClient, wrapped.
var (
	errLabUnreachable  = errors.New("the lab does not answer")
	errLabUnauthorized = errors.New("the lab refused the token")
	errLabUnknownFault = errors.New("unknown fault")
	errLabNotApplic    = errors.New("the lab cannot take this fault")
)

// labClient calls a lab's control API.
type labClient struct {
	BaseURL string
	Token   secret.Secret
	// HTTP, if nil, is a client with a 10 s timeout.
	HTTP *http.Client
}

// List returns the catalogue with the lab's active faults.
func (c *labClient) List(ctx context.Context) (labFaultList, error) {
	var out labFaultList
	return out, c.do(ctx, http.MethodGet, "/faults", &out)
}

// Inject puts fault id on the lab; Clear takes it away.
func (c *labClient) Inject(ctx context.Context, id string) (labFaultChange, error) {
	var out labFaultChange
	return out, c.do(ctx, http.MethodPost, "/faults/"+url.PathEscape(id), &out)
}

// Clear takes fault id away.
func (c *labClient) Clear(ctx context.Context, id string) (labFaultChange, error) {
	var out labFaultChange
	return out, c.do(ctx, http.MethodDelete, "/faults/"+url.PathEscape(id), &out)
}

func (c *labClient) do(ctx context.Context, method, path string, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token.Reveal())
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %w", errLabUnreachable, c.BaseURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w: %s", errLabUnauthorized, e.Error)
		case http.StatusNotFound:
			return fmt.Errorf("%w: %s", errLabUnknownFault, e.Error)
		case http.StatusConflict, http.StatusUnprocessableEntity:
			return fmt.Errorf("%w: %s", errLabNotApplic, e.Error)
		}
		return fmt.Errorf("lab control API: %s %s: %s", method, path, e.Error)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("lab control API: %s %s: %w", method, path, err)
	}
	return nil
}
