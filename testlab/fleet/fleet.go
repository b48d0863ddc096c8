// Package fleet runs many simulated e8 gateways (testlab/e8sim) against one
// ACS, for remote-support and ACS load tests ("lab up --devices N"). Every
// gateway is a full e8sim.Gateway with its own serial number, parameter
// tree and connection-request listener on 127.0.0.1; they share one HTTP
// transport to the ACS. Whether they have all informed is for the ACS to
// say (acs.Server.WaitDevice, Devices); DeviceID names them as it does.
//
// An idle gateway costs about 180 KB of heap (its parameter tree and the
// CPE engine's factory-default copy of it), 2 goroutines and 1 file
// descriptor; with the ACS's record of it and the runtime's overhead the
// process grows by about 320 KB per gateway (BenchmarkFleet1000), so 1,000
// gateways and their ACS fit in well under 1 GiB.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/testlab/e8sim"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/datamodel"
)

// ErrConfig is wrapped by Start's errors for invalid Options.
var ErrConfig = errors.New("fleet: invalid options")

// What every gateway of a fleet reports in DeviceInfo.
const (
	Vendor       = "ZTE"
	Model        = "ZXHN F650"
	OUI          = "00D0D0"
	ProductClass = "F650"
	Firmware     = "V2.1.0T6"
	Hardware     = "V1.0"
)

// Defaults of Options.
const (
	DefaultAccess       = "gpon"
	DefaultSerialPrefix = "FLT"
	// DefaultStaggerPerDevice times N is the default Options.Stagger, up
	// to MaxDefaultStagger.
	DefaultStaggerPerDevice = 2 * time.Millisecond
	MaxDefaultStagger       = 5 * time.Second
)

// Options describes a fleet.
type Options struct {
	// N is the number of gateways (at least 1).
	N int
	// ACSURL is the ACS every gateway informs (required).
	ACSURL string
	// ACSUsername and ACSPassword, if set, answer the ACS's HTTP
	// authentication challenge.
	ACSUsername string
	ACSPassword secret.Secret
	// ConnReqUsername and ConnReqPassword protect every gateway's
	// connection requests; an empty username accepts any request.
	ConnReqUsername string
	ConnReqPassword secret.Secret
	// Access is the uplink: lan, adsl, epon or gpon; "" is DefaultAccess.
	Access string
	// SerialPrefix starts every serial number; "" is DefaultSerialPrefix.
	// Gateway i's serial is the prefix and i zero-padded (see Serial).
	SerialPrefix string
	// PeriodicInform, if positive, is the periodic inform interval; 0
	// means none (the gateways inform at boot and when asked).
	PeriodicInform time.Duration
	// OperatorURL and OperatorToken, if set, reach a testlab/operator for
	// PPPoE and LOID registration. Without them the gateways still inform
	// and answer the ACS; a dial the ACS starts ends in ERROR_ISP_TIME_OUT.
	OperatorURL   string
	OperatorToken secret.Secret
	// Stagger spreads the first informs: gateway i starts at i*Stagger/N,
	// so N BOOTSTRAPs do not arrive at once. 0 is N*DefaultStaggerPerDevice
	// up to MaxDefaultStagger; negative starts all at once.
	Stagger time.Duration
	// RetryBase is a gateway's first wait after a failed session
	// (doubling); 0 is TR-069's 5 s.
	RetryBase time.Duration
	// Logger, if nil, discards. Each gateway logs with a "serial" attribute.
	Logger *slog.Logger
}

// Fleet is a running set of simulated gateways.
type Fleet struct {
	opts      Options
	gws       []*e8sim.Gateway
	serials   []string
	cancel    context.CancelFunc
	launched  chan struct{} // closed when the launcher has started every Run (or stopped)
	wg        sync.WaitGroup
	tr        *http.Transport
	closeOnce sync.Once
	mu        sync.Mutex
	errs      []error // Run errors, in the order they came
}

// Start builds N gateways and starts them in the background, spread over
// Options.Stagger; they run until ctx ends or Close. It returns an error
// wrapping ErrConfig for invalid options, or the first gateway that could
// not be built. Start does not wait for any Inform.
func Start(ctx context.Context, opts Options) (*Fleet, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	f := &Fleet{
		opts:     opts,
		gws:      make([]*e8sim.Gateway, opts.N),
		serials:  make([]string, opts.N),
		launched: make(chan struct{}),
		tr:       newTransport(),
	}
	client := &http.Client{Transport: f.tr, Timeout: 30 * time.Second}
	model, err := datamodel.Builtin(datamodel.E8Gateway) // parsed once, shared read-only
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	periodic := opts.PeriodicInform
	if periodic == 0 {
		periodic = -1 // e8sim: disabled, rather than the model's 3600 s
	}
	width := len(strconv.Itoa(opts.N - 1))
	for i := range opts.N {
		serial := fmt.Sprintf("%s%0*d", opts.SerialPrefix, width, i)
		gw, err := e8sim.New(e8sim.Config{
			ACSURL: opts.ACSURL, ACSUsername: opts.ACSUsername, ACSPassword: opts.ACSPassword,
			Vendor: Vendor, Model: Model, OUI: OUI, ProductClass: ProductClass,
			Serial: serial, Firmware: Firmware, Hardware: Hardware, Access: opts.Access,
			ConnReqUsername: opts.ConnReqUsername, ConnReqPassword: opts.ConnReqPassword,
			OperatorURL: opts.OperatorURL, OperatorToken: opts.OperatorToken,
			Logger: opts.Logger.With("serial", serial), ACSHTTPClient: client,
			PeriodicInform: periodic, RetryBase: opts.RetryBase, DataModel: model,
		})
		if err != nil {
			f.tr.CloseIdleConnections()
			return nil, fmt.Errorf("fleet: gateway %s: %w", serial, err)
		}
		f.gws[i], f.serials[i] = gw, serial
	}
	ctx, f.cancel = context.WithCancel(ctx)
	go f.launch(ctx)
	return f, nil
}

func (o *Options) setDefaults() error {
	if o.N < 1 {
		return fmt.Errorf("%w: N is %d, want at least 1", ErrConfig, o.N)
	}
	if o.ACSURL == "" {
		return fmt.Errorf("%w: ACSURL is required", ErrConfig)
	}
	if o.Access == "" {
		o.Access = DefaultAccess
	}
	switch o.Access {
	case "lan", "adsl", "epon", "gpon":
	default:
		return fmt.Errorf("%w: Access %q is not lan, adsl, epon or gpon", ErrConfig, o.Access)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SerialPrefix == "" {
		o.SerialPrefix = DefaultSerialPrefix
	}
	if o.PeriodicInform < 0 {
		return fmt.Errorf("%w: PeriodicInform %v is negative (0 means none)", ErrConfig, o.PeriodicInform)
	}
	if o.Stagger == 0 {
		o.Stagger = min(time.Duration(o.N)*DefaultStaggerPerDevice, MaxDefaultStagger)
	}
	return nil
}

// newTransport is the fleet's shared transport to the ACS: like
// http.DefaultTransport (HTTP/1.1, as CPEs speak), with more idle
// connections kept for the one host so steady traffic does not open a
// connection per session. Concurrent sessions each have their own
// connection, as N real gateways would; an idle one may be reused by
// another gateway's next session (the ACS tells sessions apart by cookie).
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// launch starts gateway i at i*Stagger/N until all run or ctx ends.
func (f *Fleet) launch(ctx context.Context) {
	defer close(f.launched)
	start := time.Now()
	var timer *time.Timer
	for i, gw := range f.gws {
		if f.opts.Stagger > 0 {
			at := time.Duration(int64(f.opts.Stagger) * int64(i) / int64(len(f.gws)))
			if wait := time.Until(start.Add(at)); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
					defer timer.Stop()
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := gw.Run(ctx); err != nil {
				f.opts.Logger.Warn("fleet: gateway stopped", "serial", f.serials[i], "err", err)
				f.mu.Lock()
				f.errs = append(f.errs, fmt.Errorf("gateway %s: %w", f.serials[i], err))
				f.mu.Unlock()
			}
		}()
	}
}

// Len returns the number of gateways.
func (f *Fleet) Len() int { return len(f.gws) }

// Serial returns gateway i's serial number (0 ≤ i < Len).
func (f *Fleet) Serial(i int) string { return f.serials[i] }

// Serials returns every serial number, in gateway order.
func (f *Fleet) Serials() []string { return append([]string(nil), f.serials...) }

// DeviceID returns gateway i's device ID at the ACS (acs.DeviceID).
func (f *Fleet) DeviceID(i int) string {
	return acs.DeviceID(cwmp.DeviceIdStruct{Manufacturer: Vendor, OUI: OUI, ProductClass: ProductClass, SerialNumber: f.serials[i]})
}

// Gateway returns gateway i (0 ≤ i < Len), to read its tree or put a
// fault on it. Its connection-request listener is up once
// Gateway(i).Engine().Ready() is closed.
func (f *Fleet) Gateway(i int) *e8sim.Gateway { return f.gws[i] }

// Close stops every gateway and waits for them. It returns an error
// naming the gateways that could not run (e.g. out of file descriptors
// for their connection-request listener), nil if all ran. Calling it
// again returns the same.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() {
		f.cancel()
		<-f.launched
		f.wg.Wait()
		f.tr.CloseIdleConnections()
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	return runErrors(f.errs, len(f.gws))
}

// runErrors summarises the gateways' Run errors: the count and the first.
func runErrors(errs []error, n int) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("fleet: %d of %d gateways failed; the first: %w", len(errs), n, errs[0])
}
