package line

import (
	"context"
	"log/slog"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/diagnostics"
	"fieldagent/drivers"
)

// Probe adapts Read to the diagnostics.Probe shape: it reads dev (target
// is only a label for the caller), registers the line gauges on reg and
// returns the readings, partial ones alongside Read's error. The facts
// go to opts.OnFacts when set. opts.Logger, if nil, is the probe's logger.
//
// Gauges, each registered only when its readings exist:
// probe_optical_rx_power_dbm, probe_optical_tx_power_dbm,
// probe_optical_temperature_celsius, probe_optical_bias_milliamperes,
// probe_optical_voltage_volts, probe_dsl_snr_margin_db{direction},
// probe_dsl_attenuation_db{direction}, probe_dsl_sync_rate_kbps{direction},
// probe_dsl_crc_errors, probe_lan_link_up{port},
// probe_lan_link_speed_mbps{port}, probe_lan_link_full_duplex{port},
// probe_wifi_enabled{ssid}, probe_wifi_channel{ssid},
// probe_wifi_clients{ssid}, probe_wan_up and probe_lan_hosts.
func Probe(dev drivers.StatusReader, opts Options) diagnostics.Probe {
	return func(ctx context.Context, _ string, reg prometheus.Registerer, logger *slog.Logger) ([]diagnostics.Reading, error) {
		o := opts
		if o.Logger == nil {
			o.Logger = logger
		}
		obs, err := Read(ctx, dev, o)
		if reg != nil {
			export(reg, o.Logger, obs.Readings)
		}
		if opts.OnFacts != nil {
			opts.OnFacts(obs.Facts)
		}
		return obs.Readings, err
	}
}

// gaugeSpec says how readings map to one gauge: a fixed name (single) or
// a prefix and suffix around a label value (lan<N>_up → port N).
type gaugeSpec struct {
	metric, help, label string
	// single is the reading of an unlabelled gauge.
	single string
	// values maps reading names to label values for a labelled gauge;
	// match (if set) derives the label value from a reading name.
	values map[string]string
	match  func(reading string) (string, bool)
}

// indexed matches readings named prefix<N>suffix and gives N.
func indexed(prefix, suffix string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			return "", false
		}
		n, ok := strings.CutSuffix(rest, suffix)
		if !ok {
			return "", false
		}
		if _, err := strconv.Atoi(n); err != nil {
			return "", false
		}
		return n, true
	}
}

var gaugeSpecs = []gaugeSpec{
	{metric: "probe_optical_rx_power_dbm", help: "PON optical receive power in dBm", single: "optical_rx_power_dbm"},
	{metric: "probe_optical_tx_power_dbm", help: "PON optical transmit power in dBm", single: "optical_tx_power_dbm"},
	{metric: "probe_optical_temperature_celsius", help: "PON transceiver temperature", single: "optical_temperature_c"},
	{metric: "probe_optical_bias_milliamperes", help: "PON laser bias current", single: "optical_bias_ma"},
	{metric: "probe_optical_voltage_volts", help: "PON transceiver supply voltage", single: "optical_voltage_v"},
	{metric: "probe_dsl_snr_margin_db", help: "DSL noise margin by direction", label: "direction",
		values: map[string]string{"dsl_snr_margin_down_db": "down", "dsl_snr_margin_up_db": "up"}},
	{metric: "probe_dsl_attenuation_db", help: "DSL line attenuation by direction", label: "direction",
		values: map[string]string{"dsl_attenuation_down_db": "down", "dsl_attenuation_up_db": "up"}},
	{metric: "probe_dsl_sync_rate_kbps", help: "DSL sync rate in kbit/s by direction", label: "direction",
		values: map[string]string{"dsl_sync_down_kbps": "down", "dsl_sync_up_kbps": "up"}},
	{metric: "probe_dsl_crc_errors", help: "DSL CRC errors counted by the modem", single: "dsl_crc_errors"},
	{metric: "probe_lan_link_up", help: "Whether the LAN port has link", label: "port", match: indexed("lan", "_up")},
	{metric: "probe_lan_link_speed_mbps", help: "LAN port link speed in Mbit/s", label: "port", match: indexed("lan", "_speed_mbps")},
	{metric: "probe_lan_link_full_duplex", help: "Whether the LAN port link is full duplex", label: "port", match: indexed("lan", "_full_duplex")},
	{metric: "probe_wifi_enabled", help: "Whether the SSID is enabled", label: "ssid", match: indexed("wifi", "_enabled")},
	{metric: "probe_wifi_channel", help: "The SSID's radio channel (0 is automatic)", label: "ssid", match: indexed("wifi", "_channel")},
	{metric: "probe_wifi_clients", help: "Stations associated with the SSID", label: "ssid", match: indexed("wifi", "_clients")},
	{metric: "probe_wan_up", help: "Whether the internet WAN is connected with an address", single: "wan_up"},
	{metric: "probe_lan_hosts", help: "Active hosts the gateway sees on its LAN", single: "lan_hosts"},
}

// export registers a gauge for every spec that has readings and sets it.
func export(reg prometheus.Registerer, logger *slog.Logger, readings []diagnostics.Reading) {
	for _, s := range gaugeSpecs {
		if s.single != "" {
			for _, r := range readings {
				if r.Name == s.single {
					g := prometheus.NewGauge(prometheus.GaugeOpts{Name: s.metric, Help: s.help})
					g.Set(r.Value)
					register(reg, logger, g)
					break
				}
			}
			continue
		}
		var vec *prometheus.GaugeVec
		for _, r := range readings {
			lv, ok := s.values[r.Name]
			if s.match != nil {
				lv, ok = s.match(r.Name)
			}
			if !ok {
				continue
			}
			if vec == nil {
				vec = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: s.metric, Help: s.help}, []string{s.label})
			}
			vec.WithLabelValues(lv).Set(r.Value)
		}
		if vec != nil {
			register(reg, logger, vec)
		}
	}
}

// register registers c, logging instead of panicking when reg already
// holds a collector of that name.
func register(reg prometheus.Registerer, logger *slog.Logger, c prometheus.Collector) {
	if err := reg.Register(c); err != nil && logger != nil {
		logger.Warn("metric not registered", "err", err)
	}
}
