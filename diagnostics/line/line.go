// Package line turns a device's status (drivers.StatusReader) into the typed
// readings and string facts that diagnostics/verdict judges.
//
// Readings (diagnostics.Reading, by name):
//
//	optical_rx_power_dbm, optical_tx_power_dbm (dBm), optical_temperature_c (°C),
//	optical_bias_ma (mA), optical_voltage_v (V)
//	dsl_snr_margin_down_db, dsl_snr_margin_up_db, dsl_attenuation_down_db,
//	dsl_attenuation_up_db (dB), dsl_sync_down_kbps, dsl_sync_up_kbps (kbit/s),
//	dsl_crc_errors
//	lan<N>_up (1/0), lan<N>_speed_mbps (Mbit/s), lan<N>_full_duplex (1/0)
//	wifi<N>_enabled (1/0), wifi<N>_channel (0 is automatic), wifi<N>_clients
//	wan_up (1/0, the INTERNET WAN), lan_hosts (active hosts)
//	wifi<N>_auto_channel (1/0, e8 gateways' settings)
//	dhcp_lease (1/0, LocalLease only)
//
// Facts (string state): access (gpon, epon, adsl, vdsl or lan),
// optical_status, dsl_status, wan_status, wan_last_error,
// wan_connection_type, wan_service_list, wan_external_ip, loid_outcome,
// loid_status, loid_result, loid_detail (from Options.LOID, or read from a
// device that can say), firmware (the running version, from a device that
// identifies itself), lan_dhcp_server (on or off, e8 gateways' settings),
// and from LocalLease dhcp_interface, dhcp_address, dhcp_autoconf_address,
// dhcp_error and laptop_link (wifi or ethernet).
package line

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"fieldagent/diagnostics"
	"fieldagent/drivers"
)

// DefaultGetterTimeout is each getter's deadline when Options.Timeout <= 0.
const DefaultGetterTimeout = 10 * time.Second

// WANStatusNone is the wan_status fact when the device has no WAN
// connection carrying the INTERNET service.
const WANStatusNone = "none"

// Options configures Read and Probe. The zero value reads every getter with
// DefaultGetterTimeout and infers the access type from the device.
type Options struct {
	// Timeout is the deadline of each getter on its own; <= 0 means
	// DefaultGetterTimeout. The caller's ctx deadline still applies.
	Timeout time.Duration
	// Access, if set, is the access type known from the device's identity
	// or the order (gpon, epon, adsl, vdsl, lan). It names a DSL line vdsl
	// (the DSL getter does not tell ADSL from VDSL) and is the access fact
	// when the device does not say; an optical reading's own access wins.
	Access string
	// LOID, if non-nil, is the outcome of the LOID registration (which the
	// caller ran), reported as the loid_* facts.
	LOID *drivers.LOIDResult
	// Now, if nil, is time.Now; it stamps the readings.
	Now func() time.Time
	// Logger, if nil, discards.
	Logger *slog.Logger
	// OnFacts, if set, receives the facts each time the Probe adapter runs
	// (the probe shape returns readings only).
	OnFacts func(map[string]string)
	// DialSettle is how long a WAN found dialling (Connecting) is watched
	// for its attempt to end, so that the diagnosis sees how it ended
	// rather than "not connected, no reason"; 0 means DefaultDialSettle,
	// negative does not wait.
	DialSettle time.Duration
}

// DefaultDialSettle is Options.DialSettle's default.
const DefaultDialSettle = 5 * time.Second

// Observation is what Read saw: numeric readings and string facts.
type Observation struct {
	// Readings are in a stable order: optical, DSL, LAN ports, Wi-Fi, WAN,
	// LAN hosts.
	Readings []diagnostics.Reading `json:"readings"`
	// Facts is never nil after Read or LocalLease.
	Facts map[string]string `json:"facts"`
}

// Reading returns the reading called name and whether it is present.
func (o Observation) Reading(name string) (diagnostics.Reading, bool) {
	for _, r := range o.Readings {
		if r.Name == name {
			return r, true
		}
	}
	return diagnostics.Reading{}, false
}

// Read asks dev for each part of its status (WAN connections, optical, DSL,
// LAN ports, Wi-Fi, LAN hosts, and where dev has them its identity, an e8
// gateway's settings and the LOID registration), one after the other, each with its own
// deadline of opts.Timeout. A getter whose error wraps
// drivers.ErrUnsupported is skipped quietly (a LAN uplink has no optical
// readings); other errors are joined into the returned error, each naming
// its getter, and the readings of the getters that answered are kept.
func Read(ctx context.Context, dev drivers.StatusReader, opts Options) (Observation, error) {
	r := reader{opts: opts, obs: Observation{Facts: map[string]string{}}}
	if r.opts.Timeout <= 0 {
		r.opts.Timeout = DefaultGetterTimeout
	}
	if r.opts.Now == nil {
		r.opts.Now = time.Now
	}
	if r.opts.Logger == nil {
		r.opts.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	step := func(name string, f func(context.Context) error) (supported bool) {
		gctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
		defer cancel()
		err := f(gctx)
		switch {
		case err == nil:
			return true
		case errors.Is(err, drivers.ErrUnsupported):
			r.opts.Logger.Debug("status getter not supported", "getter", name, "err", err)
			return false
		}
		r.opts.Logger.Info("status getter failed", "getter", name, "err", err)
		errs = append(errs, fmt.Errorf("line: read %s: %w", name, err))
		return true
	}
	opticalOK := step("optical", r.optical(dev))
	dslOK := step("dsl line", r.dsl(dev))
	step("lan ports", r.lanPorts(dev))
	step("wi-fi", r.wifi(dev))
	step("wan connections", r.wan(dev))
	step("lan hosts", r.lanHosts(dev))
	if id, ok := dev.(identifier); ok {
		step("identity", r.identity(id))
	}
	if sr, ok := dev.(settingsReader); ok && r.kind == drivers.KindE8 {
		step("settings", r.settings(sr))
	}
	if lr, ok := dev.(loidReader); ok && r.opts.LOID == nil {
		step("loid registration", r.loid(lr))
	}

	if _, ok := r.obs.Facts["access"]; !ok {
		switch {
		case r.opts.Access != "":
			r.obs.Facts["access"] = strings.ToLower(r.opts.Access)
		case !opticalOK && !dslOK:
			r.obs.Facts["access"] = "lan"
		}
	}
	if l := r.opts.LOID; l != nil {
		r.obs.Facts["loid_outcome"] = string(l.Outcome)
		r.obs.Facts["loid_status"] = l.Status
		r.obs.Facts["loid_result"] = l.Result
		if l.Detail != "" {
			r.obs.Facts["loid_detail"] = l.Detail
		}
	}
	return r.obs, errors.Join(errs...)
}

// reader accumulates one Read.
type reader struct {
	opts Options
	obs  Observation
	kind drivers.Kind // from the identity, if dev has one
}

func (r *reader) add(name string, v float64, unit string) {
	r.obs.Readings = append(r.obs.Readings, diagnostics.Reading{Name: name, Value: v, Unit: unit, Time: r.opts.Now()})
}

func (r *reader) fact(name, v string) {
	if v != "" {
		r.obs.Facts[name] = v
	}
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (r *reader) optical(dev drivers.StatusReader) func(context.Context) error {
	return func(ctx context.Context) error {
		o, err := dev.Optical(ctx)
		if err != nil {
			return err
		}
		r.fact("access", strings.ToLower(o.Access))
		r.fact("optical_status", o.Status)
		r.add("optical_rx_power_dbm", o.RxPowerDBm, "dBm")
		r.add("optical_tx_power_dbm", o.TxPowerDBm, "dBm")
		r.add("optical_temperature_c", o.TemperatureC, "°C")
		r.add("optical_bias_ma", o.BiasMA, "mA")
		r.add("optical_voltage_v", o.VoltageV, "V")
		return nil
	}
}

func (r *reader) dsl(dev drivers.StatusReader) func(context.Context) error {
	return func(ctx context.Context) error {
		d, err := dev.DSLLine(ctx)
		if err != nil {
			return err
		}
		access := "adsl"
		if strings.EqualFold(r.opts.Access, "vdsl") {
			access = "vdsl"
		}
		r.fact("access", access)
		r.fact("dsl_status", d.Status)
		r.add("dsl_snr_margin_down_db", d.DownstreamSNRdB, "dB")
		r.add("dsl_snr_margin_up_db", d.UpstreamSNRdB, "dB")
		r.add("dsl_attenuation_down_db", d.DownstreamAttenDB, "dB")
		r.add("dsl_attenuation_up_db", d.UpstreamAttenDB, "dB")
		r.add("dsl_sync_down_kbps", float64(d.DownstreamKbps), "kbit/s")
		r.add("dsl_sync_up_kbps", float64(d.UpstreamKbps), "kbit/s")
		r.add("dsl_crc_errors", float64(d.CRCErrors), "")
		return nil
	}
}

// lanPorts gives lan<N>_up for every port and, for a port with link,
// lan<N>_speed_mbps (when known) and lan<N>_full_duplex (when the duplex
// mode is Full or Half; Auto says nothing about the link).
func (r *reader) lanPorts(dev drivers.StatusReader) func(context.Context) error {
	return func(ctx context.Context) error {
		ports, err := dev.LANPorts(ctx)
		if err != nil {
			return err
		}
		for _, p := range ports {
			pre := "lan" + strconv.Itoa(p.Port) + "_"
			r.add(pre+"up", flag(p.Up), "")
			if !p.Up {
				continue
			}
			if p.SpeedMbps > 0 {
				r.add(pre+"speed_mbps", float64(p.SpeedMbps), "Mbit/s")
			}
			switch strings.ToLower(p.Duplex) {
			case "full":
				r.add(pre+"full_duplex", 1, "")
			case "half":
				r.add(pre+"full_duplex", 0, "")
			}
		}
		return nil
	}
}

func (r *reader) wifi(dev drivers.StatusReader) func(context.Context) error {
	return func(ctx context.Context) error {
		ssids, err := dev.WiFi(ctx)
		if err != nil {
			return err
		}
		for _, s := range ssids {
			pre := "wifi" + strconv.Itoa(s.Index) + "_"
			r.add(pre+"enabled", flag(s.Enabled), "")
			r.add(pre+"channel", float64(s.Channel), "")
			r.add(pre+"clients", float64(s.Clients), "")
		}
		return nil
	}
}

// wan reports the first connection whose service list carries INTERNET. A
// bridged one gives no wan_up: the gateway does not dial it, a PC behind it
// does. No INTERNET connection at all gives wan_status "none".
func (r *reader) wan(dev drivers.StatusReader) func(context.Context) error {
	return func(ctx context.Context) error {
		wans, err := r.settledWANs(ctx, dev)
		if err != nil {
			return err
		}
		for _, w := range wans {
			if !strings.Contains(strings.ToUpper(w.ServiceList), "INTERNET") {
				continue
			}
			r.fact("wan_status", w.Status)
			r.fact("wan_last_error", w.LastError)
			r.fact("wan_connection_type", w.ConnectionType)
			r.fact("wan_service_list", w.ServiceList)
			r.fact("wan_external_ip", w.ExternalIP)
			if !strings.Contains(strings.ToLower(w.ConnectionType), "bridged") {
				r.add("wan_up", flag(w.Up()), "")
			}
			return nil
		}
		r.fact("wan_status", WANStatusNone)
		return nil
	}
}

// settledWANs reads the WAN connections, and while the internet one is
// dialling (Connecting) reads them again, for up to DialSettle, so that a
// dial attempt in progress is judged by how it ends.
func (r *reader) settledWANs(ctx context.Context, dev drivers.StatusReader) ([]drivers.WANStatus, error) {
	settle := r.opts.DialSettle
	if settle == 0 {
		settle = DefaultDialSettle
	}
	deadline := time.Now().Add(settle)
	for {
		wans, err := dev.WANConnections(ctx)
		if err != nil || !dialling(wans) || !time.Now().Before(deadline) {
			return wans, err
		}
		select {
		case <-ctx.Done():
			return wans, nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// dialling reports whether the internet WAN is in a dial attempt.
func dialling(wans []drivers.WANStatus) bool {
	for _, w := range wans {
		if strings.Contains(strings.ToUpper(w.ServiceList), "INTERNET") {
			return strings.EqualFold(w.Status, "Connecting")
		}
	}
	return false
}

func (r *reader) lanHosts(dev drivers.StatusReader) func(context.Context) error {
	return func(ctx context.Context) error {
		hosts, err := dev.LANHosts(ctx)
		if err != nil {
			return err
		}
		n := 0
		for _, h := range hosts {
			if h.Active {
				n++
			}
		}
		r.add("lan_hosts", float64(n), "")
		return nil
	}
}
