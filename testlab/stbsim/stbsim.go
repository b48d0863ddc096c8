// Package stbsim is a simulated China Telecom iTV set-top box for testlab:
// a real TR-069 CPE (tr069/cpe) with the embedded TR-135 + X_CTC_IPTV data
// model, and behaviour behind its parameters:
//
//   - writing X_CTC_IPTV.ServiceInfo (UserID, UserIDPassword, AuthURL)
//     makes the box authenticate with the EPG at AuthURL (AuthURLBackup when
//     the first does not answer), like a box that restarts its portal;
//     ServiceInfo.UserStatus then reads 1 (authenticated) or 2 (refused),
//     and X_CTC_IPTV.Statistics counts attempts and failures;
//   - once authenticated it joins the first channel's multicast group (an
//     IGMP ClientGroup) and reports RTP and MPEG-TS counters;
//   - passwords are write-only, as on real boxes.
//
// EPG is the trivial authentication endpoint it talks to.
package stbsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/tr069/cpe"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/datamodel"
)

const (
	root     = "Device."
	devInfo  = root + "DeviceInfo."
	iptv     = root + "X_CTC_IPTV."
	svcInfo  = iptv + "ServiceInfo."
	stats    = iptv + "Statistics."
	igmp     = root + "STBService.1.Components.FrontEnd.1.IP.IGMP."
	mainStrm = root + "STBService.1.ServiceMonitoring.MainStream.1.Total."
)

// User status values of X_CTC_IPTV.ServiceInfo.UserStatus.
const (
	UserStatusNone          = "0"
	UserStatusAuthenticated = "1"
	UserStatusRefused       = "2"
)

// Config describes one simulated set-top box.
type Config struct {
	// ACSURL is the ACS the box informs to.
	ACSURL string
	// Vendor, Model, OUI, ProductClass, Serial, Firmware and STBID are what
	// the box reports.
	Vendor, Model, OUI, ProductClass, Serial, Firmware, STBID string
	// ACSUsername and ACSPassword, if set, are what the box answers the
	// ACS's HTTP authentication challenge with.
	ACSUsername string
	ACSPassword secret.Secret
	// ConnReqUsername and ConnReqPassword protect connection requests.
	ConnReqUsername string
	ConnReqPassword secret.Secret
	// Channel is the multicast group joined after authentication (default
	// 239.3.1.1).
	Channel string
	// Logger, if nil, discards.
	Logger *slog.Logger
	// HTTPClient, if nil, is a client with a 5 s timeout.
	HTTPClient *http.Client
}

// Box is one simulated set-top box.
type Box struct {
	cfg    Config
	tree   *cpe.Tree
	engine *cpe.Engine
	log    *slog.Logger
	hc     *http.Client

	mu     sync.Mutex
	runCtx context.Context
	wg     sync.WaitGroup

	stream streamState // what the network delivers (feed.go)
}

// New builds the box's data model and CPE engine.
func New(cfg Config) (*Box, error) {
	if cfg.Serial == "" || cfg.ACSURL == "" {
		return nil, errors.New("stbsim: Serial and ACSURL are required")
	}
	if cfg.STBID == "" {
		cfg.STBID = "00100299" + cfg.Serial
	}
	if cfg.Channel == "" {
		cfg.Channel = "239.3.1.1"
	}
	b := &Box{cfg: cfg, log: cfg.Logger, hc: cfg.HTTPClient}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.hc == nil {
		b.hc = &http.Client{Timeout: 5 * time.Second}
	}
	m, err := datamodel.Builtin(datamodel.STBTR135)
	if err != nil {
		return nil, fmt.Errorf("stbsim: %w", err)
	}
	b.tree = cpe.NewTreeFromModel(m)
	for _, kv := range [][2]string{
		{devInfo + "Manufacturer", cfg.Vendor}, {devInfo + "ManufacturerOUI", cfg.OUI},
		{devInfo + "ModelName", cfg.Model}, {devInfo + "ProductClass", cfg.ProductClass},
		{devInfo + "SerialNumber", cfg.Serial}, {devInfo + "SoftwareVersion", cfg.Firmware},
		{root + "ManagementServer.ConnectionRequestUsername", cfg.ConnReqUsername},
		{root + "ManagementServer.ConnectionRequestPassword", cfg.ConnReqPassword.Reveal()},
		{iptv + "STBID", cfg.STBID},
		{svcInfo + "UserStatus", UserStatusNone},
	} {
		if err := b.tree.SetValue(kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("stbsim: %s: %w", kv[0], err)
		}
	}
	e, err := cpe.New(cpe.Config{
		ACSURL:          cfg.ACSURL,
		ACSUsername:     cfg.ACSUsername,
		ACSPassword:     cfg.ACSPassword,
		DeviceId:        cwmp.DeviceIdStruct{Manufacturer: cfg.Vendor, OUI: cfg.OUI, ProductClass: cfg.ProductClass, SerialNumber: cfg.Serial},
		ConnReqAddr:     "127.0.0.1:0",
		ConnReqUsername: cfg.ConnReqUsername,
		ConnReqPassword: cfg.ConnReqPassword,
		InformParams:    []string{devInfo + "SoftwareVersion", iptv + "STBID"},
		Logger:          b.log,
		OnSet:           b.onSet,
		BeforeRPC:       b.beforeRPC,
	}, b.tree)
	if err != nil {
		return nil, fmt.Errorf("stbsim: %w", err)
	}
	b.engine = e
	return b, nil
}

// Tree returns the box's parameter tree (tests read it).
func (b *Box) Tree() *cpe.Tree { return b.tree }

// Run runs the box until ctx ends.
func (b *Box) Run(ctx context.Context) error {
	b.mu.Lock()
	b.runCtx = ctx
	b.mu.Unlock()
	err := b.engine.Run(ctx)
	b.wg.Wait()
	return err
}

func (b *Box) onSet(_ context.Context, changed []cwmp.ParameterValueStruct) error {
	auth := false
	for _, p := range changed {
		if strings.HasPrefix(p.Name, svcInfo) {
			auth = true
		}
	}
	if !auth || b.tree.Value(svcInfo+"UserID") == "" || b.tree.Value(svcInfo+"AuthURL") == "" {
		return nil
	}
	b.mu.Lock()
	ctx := b.runCtx
	b.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	_ = b.tree.SetValue(svcInfo+"UserStatus", UserStatusNone)
	b.wg.Add(1)
	go func() { defer b.wg.Done(); b.authenticate(ctx) }()
	return nil
}

// authenticate asks the EPG, as the box's portal does at start-up.
func (b *Box) authenticate(ctx context.Context) {
	req := AuthRequest{
		UserID:   b.tree.Value(svcInfo + "UserID"),
		Password: b.tree.Value(svcInfo + "UserIDPassword"),
		STBID:    b.cfg.STBID,
	}
	incr(b.tree, stats+"AuthNumbers")
	var resp AuthResponse
	var err error
	for _, u := range []string{b.tree.Value(svcInfo + "AuthURL"), b.tree.Value(svcInfo + "AuthURLBackup")} {
		if u == "" {
			continue
		}
		if resp, err = b.post(ctx, u, req); err == nil {
			break
		}
	}
	if err != nil || resp.Result != "ok" {
		info := resp.Message
		if err != nil {
			info = "EPG unreachable"
		}
		incr(b.tree, stats+"AuthFailNumbers")
		_ = b.tree.SetValue(stats+"AuthFailInfo", info)
		_ = b.tree.SetValue(svcInfo+"UserStatus", UserStatusRefused)
		b.log.Info("stbsim: EPG authentication failed", "info", info)
		return
	}
	_ = b.tree.SetValue(stats+"AuthFailInfo", "")
	_ = b.tree.SetValue(svcInfo+"UserStatus", UserStatusAuthenticated)
	// Tune to the first channel: join its group and receive a stream.
	b.tree.Set(cpe.Param{Name: igmp + "ClientGroup.1.GroupAddress", Value: b.cfg.Channel, Type: "xsd:string"})
	b.tree.Set(cpe.Param{Name: igmp + "ClientGroup.1.UpTime", Value: "1", Type: "xsd:unsignedInt"})
	for _, kv := range [][2]string{
		{mainStrm + "RTPStats.PacketsReceived", "120000"}, {mainStrm + "RTPStats.PacketsLost", "12"},
		{mainStrm + "MPEG2TSStats.TSPacketsReceived", "840000"}, {mainStrm + "MPEG2TSStats.TSPacketsDiscontinuityCounter", "3"},
	} {
		_ = b.tree.SetValue(kv[0], kv[1])
	}
	b.log.Info("stbsim: authenticated with the EPG", "user", secret.Hint(req.UserID))
}

func incr(t *cpe.Tree, name string) {
	n, _ := strconv.Atoi(t.Value(name))
	_ = t.SetValue(name, strconv.Itoa(n+1))
}

func (b *Box) post(ctx context.Context, url string, body AuthRequest) (AuthResponse, error) {
	var out AuthResponse
	data, err := json.Marshal(body)
	if err != nil {
		return out, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("decode EPG answer (HTTP %d): %w", resp.StatusCode, err)
	}
	return out, nil
}

// AuthRequest is what a box posts to the EPG authentication URL.
type AuthRequest struct {
	UserID   string `json:"user_id"`
	Password string `json:"password"`
	STBID    string `json:"stbid"`
}

// AuthResponse is the EPG's answer: Result "ok" or "fail" with a Message.
type AuthResponse struct {
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
	Token   string `json:"token,omitempty"`
}

// EPG is a trivial EPG authentication endpoint: it accepts the accounts
// added with AddAccount. Safe for concurrent use; serve it on loopback with
// httptest.NewServer.
type EPG struct {
	mu       sync.Mutex
	accounts map[string]secret.Secret
}

// NewEPG returns an EPG with no accounts.
func NewEPG() *EPG { return &EPG{accounts: map[string]secret.Secret{}} }

// AddAccount lets userID authenticate with password.
func (e *EPG) AddAccount(userID string, password secret.Secret) {
	e.mu.Lock()
	e.accounts[userID] = password
	e.mu.Unlock()
}

// ServeHTTP answers POSTed AuthRequests.
func (e *EPG) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var req AuthRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	pw, ok := e.accounts[req.UserID]
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case !ok:
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(AuthResponse{Result: "fail", Message: "10001 unknown user"})
	case !pw.Equal(secret.New(req.Password)):
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(AuthResponse{Result: "fail", Message: "10002 wrong password"})
	default:
		_ = json.NewEncoder(w).Encode(AuthResponse{Result: "ok", Token: "tok-" + req.STBID})
	}
}
