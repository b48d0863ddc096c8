package diagrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"fieldagent/diagnostics"
	"fieldagent/diagnostics/gateway"
	"fieldagent/drivers"
	"fieldagent/drivers/catalog"
	"fieldagent/tr069/acs"
)

// ErrNotGateway means a diagnosis was asked of a TR-069 device that is not
// a gateway (a set-top box): diag run reads gateways.
var ErrNotGateway = errors.New("the device is not a gateway")

// TR069Options configures DiagnoseTR069.
type TR069Options struct {
	// SpeedURL, if set, is a fieldagent speed server the gateway downloads
	// from (TR-143) and pings.
	SpeedURL string
	// GatewayBytes sizes the gateway's download test; 0 means 10 MB.
	GatewayBytes int64
	// Options are diagrun's (timeout per probe, probes to run, logger).
	Options
}

// DiagnoseTR069 opens d's driver through a (the embedded ACS or a GenieACS
// NBI client: anything that implements catalog.ACS), identifies it, and
// runs the gateway's probes on it: its line and state, and with a speed
// server its own download and ping tests. It returns ErrNotGateway for a
// set-top box.
func DiagnoseTR069(ctx context.Context, a catalog.ACS, d acs.Device, o TR069Options) (Outcome, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := catalog.New(catalog.Options{ACS: a, Logger: log})
	drv, _, err := catalog.OpenTR069(ctx, reg, d)
	if err != nil {
		return Outcome{}, fmt.Errorf("open a driver for %s: %w", d.ID, err)
	}
	ident, err := drv.Identify(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("identify %s: %w", d.ID, err)
	}
	sr, ok := drv.(drivers.StatusReader)
	if !ok {
		return Outcome{}, fmt.Errorf("diagnose %s: %w (it is a %s)", d.ID, ErrNotGateway, ident.Kind)
	}
	site := Site{Gateway: sr, Access: ident.Access}
	site.GatewayTests, site.GatewayTargets = GatewayTests(drv, o.SpeedURL, o.GatewayBytes)
	o.Options.Logger = log.With("device", d.ID)
	return Run(ctx, site, o.Options)
}

// GatewayTests are the gateway's own tests against a fieldagent speed
// server: a TR-143 download of bytes (0: 10 MB) and a ping, for the
// drivers that can run them. Without a speed server there are none.
func GatewayTests(drv drivers.Identifier, speedURL string, bytes int64) (map[string]diagnostics.Probe, map[string]string) {
	probes, targets := map[string]diagnostics.Probe{}, map[string]string{}
	if speedURL == "" {
		return probes, targets
	}
	if bytes <= 0 {
		bytes = 10_000_000
	}
	if dt, ok := drv.(drivers.DownloadTester); ok {
		probes["gateway_download"] = gateway.DownloadProbe(dt, drivers.TransferOptions{})
		targets["gateway_download"] = strings.TrimSuffix(speedURL, "/") + "/file/" + strconv.FormatInt(bytes, 10)
	}
	if p, ok := drv.(drivers.Pinger); ok {
		probes["gateway_ping"] = gateway.PingProbe(p, drivers.PingOptions{Count: 5})
		targets["gateway_ping"] = HostOf(speedURL)
	}
	return probes, targets
}

// DefaultDiagnoseTimeout bounds one device's whole diagnosis in a fleet.
const DefaultDiagnoseTimeout = 5 * time.Minute
