package diagrun

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/diagnostics"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers/e8"
	"fieldagent/drivers/itv"
	"fieldagent/drivers/xt2"
)

// The evidence of the services beyond the line: the gateway's IPTV
// configuration, the set-top box's login and stream, the XT-2's dialer and
// BBMS binding, as facts and results for verdict (fact names in
// diagnostics/verdict/findings_service.go).

// GatewayIPTVFacts reads the gateway's IPTV WAN (the bridged OTHER/IPTV
// connection) and IGMP settings: iptv_wan_ports, igmp_snooping and
// igmp_proxy, and stb_port, only when the gateway has an IPTV WAN.
func GatewayIPTVFacts(ctx context.Context, gw *e8.Driver, stbPort int, facts map[string]string) error {
	snap, err := gw.Snapshot(ctx, e8.WANConnDevs, e8.IPTVService)
	if err != nil {
		return fmt.Errorf("read the gateway's IPTV configuration: %w", err)
	}
	v := snap.Values
	on := func(name string) bool { return v[name] == "1" || strings.EqualFold(v[name], "true") }
	for name, list := range v {
		conn, ok := strings.CutSuffix(name, "X_CT-COM_ServiceList")
		if !ok || !strings.Contains(conn, ".WANIPConnection.") || v[conn+"ConnectionType"] != "IP_Bridged" {
			continue
		}
		if l := strings.ToUpper(list); l != "OTHER" && l != "IPTV" {
			continue
		}
		facts[verdict.FactIPTVWANPorts] = portNames(v[conn+"X_CT-COM_LanInterface"])
		facts[verdict.FactSTBPort] = "LAN" + strconv.Itoa(stbPort)
		facts[verdict.FactIGMPSnooping] = flag(on(e8.IPTVService+"IGMPEnable") && on(e8.IPTVService+"SnoopingEnable"))
		facts[verdict.FactIGMPProxy] = flag(on(e8.IPTVService+"IGMPEnable") && on(e8.IPTVService+"ProxyEnable"))
		return nil
	}
	return nil
}

// portNames turns X_CT-COM_LanInterface into "LAN4,SSID1" ("none" when empty).
func portNames(binding string) string {
	var out []string
	for _, b := range strings.Split(binding, ",") {
		b = strings.TrimSuffix(strings.TrimSpace(b), ".")
		if n, ok := strings.CutPrefix(b, strings.TrimSuffix(e8.LANEthernet, ".")+"."); ok {
			out = append(out, "LAN"+n)
		} else if n, ok := strings.CutPrefix(b, strings.TrimSuffix(e8.WLANConfig, ".")+"."); ok {
			out = append(out, "SSID"+n)
		} else if b != "" {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// STBEvidence sets stb_auth_status and, for an authenticated box, returns
// the "stb" result: iptv_packets is the TS packets its counters grew by
// over window, stb_ts_discontinuities their continuity errors.
func STBEvidence(ctx context.Context, stb *itv.Driver, window time.Duration, facts map[string]string) (*diagnostics.Result, error) {
	st, err := stb.AuthStatus(ctx)
	if err != nil {
		return nil, err
	}
	switch st.UserStatus {
	case itv.UserStatusAuthenticated:
		facts[verdict.FactSTBAuthStatus] = "authenticated"
	case itv.UserStatusRefused:
		facts[verdict.FactSTBAuthStatus] = "failed (EPG: " + st.FailInfo + ")"
		return nil, nil
	default:
		facts[verdict.FactSTBAuthStatus] = "none"
		return nil, nil
	}
	probe := func(ctx context.Context, _ string, _ prometheus.Registerer, _ *slog.Logger) ([]diagnostics.Reading, error) {
		a, err := stb.StreamStats(ctx)
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(window):
		}
		b, err := stb.StreamStats(ctx)
		if err != nil {
			return nil, err
		}
		return []diagnostics.Reading{
			{Name: "iptv_packets", Value: float64(b.TSReceived - a.TSReceived)},
			{Name: "stb_ts_discontinuities", Value: float64(b.TSDiscontinuity - a.TSDiscontinuity)},
		}, nil
	}
	res := diagnostics.Run(ctx, "stb", probe, "main stream", window+10*time.Second, nil, nil)
	return &res, nil
}

// XT2Facts reads the XT-2's dialer (CLI) and BBMS binding (SNMP, CLI):
// wan_status, wan_last_error, wan_connection_type, wan_nat, bbms_bound,
// bbms_customer, bbms_last_error.
func XT2Facts(ctx context.Context, d *xt2.Driver, facts map[string]string) error {
	w, err := d.WANStatus(ctx)
	if err != nil {
		return err
	}
	facts[verdict.FactWANStatus] = w.Status
	facts[verdict.FactWANConnectionType] = w.ConnectionType
	facts[verdict.FactWANNAT] = flag(w.NAT)
	if w.LastError != "" {
		facts[verdict.FactWANLastError] = w.LastError
	}
	st, err := d.Status(ctx)
	if err != nil {
		return err
	}
	facts[verdict.FactBBMSBound] = flag(st.BBMS.Bound)
	if st.BBMS.Customer != "" {
		facts[verdict.FactBBMSCustomer] = st.BBMS.Customer
	}
	cli, err := d.CLIStatus(ctx)
	if err != nil {
		return err
	}
	if cli.BBMS.LastError != "" {
		facts[verdict.FactBBMSError] = cli.BBMS.LastError
	}
	return nil
}
