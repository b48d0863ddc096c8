package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/order"
	"fieldagent/agent/store"
	"fieldagent/diagnostics"
	"fieldagent/diagnostics/gateway"
	"fieldagent/diagnostics/iptv"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers"
	"fieldagent/drivers/catalog"
	"fieldagent/tr069/acs"
)

type diagRunOptions struct {
	f            *Factory
	Serial       string
	NoGateway    bool
	Access       string
	PackageDown  float64
	PackageUp    float64
	SpeedURL     string
	PingTarget   string
	Resolvers    []string
	HTTPURL      string
	Interface    string
	ProfileFile  string
	Upload       bool
	Duration     time.Duration
	Lang         string
	LaptopOnWiFi bool
	GatewayBytes int64
	IPTV         string
	Order        string
	lineOnly     bool // diag line: the gateway's status only
	// Device and Probes are for a remote diagnosis (--server).
	Device string
	Probes []string
}

func newDiagRunCmd(f *Factory, runF func(context.Context, *diagRunOptions) error) *cobra.Command {
	opts := &diagRunOptions{f: f}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Diagnose a site: the gateway's line and state, the laptop's view, verdicts and findings",
		Long: `diag run waits for the gateway's Inform on the ACS (acs.listen), reads its
line and state through its driver (optical power, DSL line, LAN ports, Wi-Fi,
PPPoE WAN and its last error), has the gateway itself download from the
speed server (TR-143) and ping it, then runs the laptop-side checks it was given
(ping, DNS through each --dns server, HTTP, speed test), and judges every
reading against the profile for the access type and package:

  GPON Rx −8 … −27 dBm (warn below −25), EPON −3 … −24 dBm, DSL SNR margin
  ≥ 6 dB, gigabit LAN at 1000/full, speed ≥ 90% of the package, ping loss 0%,
  IPTV MLR 0 and DF ≤ 50 ms.

Each reading prints with ✔ (pass), ⚠ (warn) or ✘ (fail); each fault with its
likely cause and the fix. --profile FILE (or diag.thresholds in the config)
overrides any threshold, e.g. "optical: {rx_min_dbm: -28}".

Exit status: 0 all checks pass, 1 a check failed, 2 usage, 3 no gateway
informed.`,
		Example: `  fieldagent diag run --access gpon --package 300/30 --speed-url http://speed.example:8080/
  fieldagent diag run --serial ZTEG1A2B3C4D --dns 192.168.1.1 --dns 223.5.5.5 --ping 192.168.1.1
  fieldagent diag run --no-gateway --interface eth0 --http https://www.189.cn/ --output json
  fieldagent diag run --lang zh
  # remote support: the serve daemon diagnoses the device through its ACS
  fieldagent --server https://support.example:7550 diag run --device 00D0D0-F650-ZTEG1A2B3C4D`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDiagRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Serial, "serial", "", "gateway serial to wait for (default: the first gateway that informs)")
	fl.BoolVar(&opts.NoGateway, "no-gateway", false, "laptop-side checks only: do not wait for a gateway")
	fl.StringVar(&opts.Access, "access", "", "access type gpon, epon, adsl, vdsl or lan (default: what the gateway reports)")
	fl.Var(packageFlag{&opts.PackageDown, &opts.PackageUp}, "package", "subscribed rate DOWN[/UP] in Mbit/s, e.g. 300/30")
	fl.StringVar(&opts.SpeedURL, "speed-url", "", "fieldagent speed server for the laptop's speed test (default diag.speed_url)")
	fl.StringVar(&opts.PingTarget, "ping", "", "host to ping from the laptop (default diag.ping_target, else the speed server)")
	fl.StringArrayVar(&opts.Resolvers, "dns", nil, "DNS server to query from the laptop (repeat: the gateway and a public one)")
	fl.StringVar(&opts.HTTPURL, "http", "", "URL to fetch from the laptop")
	fl.StringVar(&opts.Interface, "interface", "", "the laptop's interface towards the gateway (checks its DHCP lease)")
	fl.StringVar(&opts.ProfileFile, "profile", "", "YAML file of threshold overrides")
	fl.BoolVar(&opts.Upload, "upload", false, "also run the laptop's upload test")
	fl.DurationVar(&opts.Duration, "duration", 0, "speed test length per direction (default diag.speed_duration)")
	fl.StringVar(&opts.Lang, "lang", "en", "findings language: en or zh")
	fl.StringVar(&opts.Order, "order", "", "work order in the local store: its access type and package set the profile, and the readings and findings are stored with it")
	fl.StringVar(&opts.IPTV, "iptv", "", "IPTV channel GROUP:PORT to join from the laptop (cabled to the set-top box's port)")
	fl.Int64Var(&opts.GatewayBytes, "gateway-bytes", 0, "size of the gateway's own download test (default: about 4 s at the package rate)")
	fl.BoolVar(&opts.LaptopOnWiFi, "wifi", false, "the laptop is on the gateway's Wi-Fi (default: read from --interface)")
	fl.StringVar(&opts.Device, "device", "", "with --server: the device (ID or serial) the remote server diagnoses through its ACS")
	fl.StringSliceVar(&opts.Probes, "probe", nil, "with --server: run only these probes (e.g. line,wan); default all")
	return cmd
}

func newDiagLineCmd(f *Factory) *cobra.Command {
	opts := &diagRunOptions{f: f, lineOnly: true, Lang: "en"}
	cmd := &cobra.Command{
		Use:   "line",
		Short: "Read the gateway's line and state and judge them: optical power, DSL, LAN ports, Wi-Fi, WAN",
		Long: `diag line waits for the gateway's Inform on the ACS (acs.listen) and reads,
through its driver: optical Rx/Tx power, temperature, bias and voltage
(EPON/GPON); DSL SNR margin, attenuation, sync rate and CRC errors; each LAN
port's link, speed and duplex; Wi-Fi SSIDs, channels and clients; the PPPoE
WAN's state and last error; the LAN hosts. Each reading is judged against
the access profile (✔/⚠/✘) and faults come with cause and fix. It changes
nothing on the gateway and runs no traffic test (diag run does).`,
		Example: `  fieldagent diag line
  fieldagent diag line --serial ZTEG1A2B3C4D --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDiagRun(cmd.Context(), opts) },
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Serial, "serial", "", "gateway serial to wait for (default: the first gateway that informs)")
	fl.StringVar(&opts.Access, "access", "", "access type (default: what the gateway reports)")
	fl.StringVar(&opts.ProfileFile, "profile", "", "YAML file of threshold overrides")
	fl.StringVar(&opts.Lang, "lang", "en", "findings language: en or zh")
	return cmd
}

// packageFlag parses DOWN[/UP] Mbit/s.
type packageFlag struct{ down, up *float64 }

func (p packageFlag) String() string {
	if p.down == nil || *p.down == 0 {
		return ""
	}
	return fmt.Sprintf("%g/%g", *p.down, *p.up)
}
func (p packageFlag) Type() string { return "DOWN[/UP]" }
func (p packageFlag) Set(s string) error {
	d, u, _ := strings.Cut(s, "/")
	if _, err := fmt.Sscan(d, p.down); err != nil || *p.down <= 0 {
		return fmt.Errorf("package %q: want DOWN[/UP] in Mbit/s, e.g. 300/30", s)
	}
	if u != "" {
		if _, err := fmt.Sscan(u, p.up); err != nil || *p.up <= 0 {
			return fmt.Errorf("package %q: want DOWN[/UP] in Mbit/s, e.g. 300/30", s)
		}
	}
	return nil
}

func runDiagRun(ctx context.Context, opts *diagRunOptions) error {
	if c, err := remoteClient(opts.f); err != nil {
		return err
	} else if c != nil {
		return remoteDiagnose(ctx, opts, c)
	}
	if usesGenieACS(opts.f) {
		return runNBIDiagnose(ctx, opts)
	}
	if opts.Device != "" || len(opts.Probes) > 0 {
		return &usageError{errors.New("--device and --probe diagnose through a remote server: add --server URL (on site, diag run waits for the gateway's Inform; pick it with --serial)")}
	}
	f := opts.f
	cfg := f.Config()
	lang := verdict.Lang(opts.Lang)
	if lang != verdict.English && lang != verdict.Chinese {
		return &usageError{fmt.Errorf("--lang %q: want en or zh", opts.Lang)}
	}
	var st *store.Store
	firmware := ""
	if opts.Order != "" {
		var err error
		if st, err = openStore(f); err != nil {
			return err
		}
		defer st.Close()
		ord, _, err := st.GetOrder(ctx, opts.Order)
		if errors.Is(err, store.ErrNotFound) {
			return &usageError{fmt.Errorf("order %s is not in the local store (see 'fieldagent order list'): %w", opts.Order, err)}
		} else if err != nil {
			return err
		}
		firmware = ord.RequiredFirmware
		for _, svc := range ord.Services {
			if svc.Device != order.DeviceE8 {
				continue
			}
			if opts.Access == "" {
				opts.Access = string(svc.Access)
			}
			if opts.PackageDown == 0 {
				opts.PackageDown = float64(svc.BandwidthMbps)
			}
		}
	}
	site := diagrun.Site{
		Access: opts.Access, PackageDownMbps: opts.PackageDown, PackageUpMbps: opts.PackageUp,
		LANInterface: opts.Interface, Resolvers: opts.Resolvers, HTTPURL: opts.HTTPURL,
		SpeedURL: firstNonEmpty(opts.SpeedURL, cfg.Diag.SpeedURL), Facts: map[string]string{},
	}
	site.PingTarget = firstNonEmpty(opts.PingTarget, cfg.Diag.PingTarget)
	if site.PingTarget == "" && site.SpeedURL != "" {
		site.PingTarget = diagrun.HostOf(site.SpeedURL)
	}
	if opts.IPTV != "" {
		site.IPTV, site.IPTVTarget = iptv.Probe(iptv.Options{Interface: opts.Interface}), opts.IPTV
	}
	if opts.LaptopOnWiFi {
		site.Facts["laptop_link"] = "wifi"
	}
	if firmware != "" {
		// The order's required firmware: an older one is a finding.
		site.Facts[verdict.FactFirmwareRequired] = firmware
	}
	var overrides []byte
	overridesPath := firstNonEmpty(opts.ProfileFile, cfg.Diag.Thresholds)
	if overridesPath != "" {
		doc, err := os.ReadFile(overridesPath)
		if err != nil {
			return &usageError{fmt.Errorf("threshold overrides: %w", err)}
		}
		// Checked now, before waiting for a gateway; applied once the
		// access type is known.
		p := verdict.ProfileFor(site.Access, site.PackageDownMbps, site.PackageUpMbps)
		if err := p.Override(doc); err != nil {
			return &usageError{fmt.Errorf("threshold overrides in %s: %w", overridesPath, err)}
		}
		overrides = doc
	}

	if !opts.NoGateway {
		ln, err := net.Listen("tcp", cfg.ACS.Listen)
		if err != nil {
			return &usageError{fmt.Errorf("ACS cannot listen on %s (acs.listen): %w", cfg.ACS.Listen, err)}
		}
		actx, cancel := context.WithCancel(ctx)
		defer cancel()
		a := startACS(actx, cfg, ln, f.Logger())
		if f.IO.ErrIsTerminal {
			fmt.Fprintf(f.IO.ErrOut, "waiting up to %s for the gateway's Inform on %s …\n", cfg.Workflow.InformTimeout, ln.Addr())
		}
		reg := catalog.New(catalog.Options{ACS: a, Logger: f.Logger()})
		wctx, wcancel := context.WithTimeout(ctx, cfg.Workflow.InformTimeout)
		d, err := a.WaitDevice(wctx, func(d acs.Device) bool {
			if opts.Serial != "" {
				return d.DeviceId.SerialNumber == opts.Serial
			}
			e, err := reg.Lookup(drivers.SeenFromInform(d))
			return err != nil || e.Kind == drivers.KindE8
		})
		wcancel()
		if err != nil {
			return &codedError{err: fmt.Errorf("no Inform within %s: check the gateway is powered, cabled to this laptop and its ACS URL points at %s (or use --no-gateway): %w", cfg.Workflow.InformTimeout, ln.Addr(), err), code: exitUnreachable}
		}
		sctx, scancel := context.WithTimeout(ctx, cfg.Workflow.StepTimeout)
		drv, _, err := catalog.OpenTR069(sctx, reg, d)
		var id drivers.Identity
		if err == nil {
			id, err = drv.Identify(sctx)
		}
		scancel()
		if err != nil {
			return err
		}
		sr, ok := drv.(drivers.StatusReader)
		if !ok {
			return fmt.Errorf("%w: %s is a %s device: diag run reads gateways (use --serial, or --no-gateway)", drivers.ErrMismatch, d.ID, id.Kind)
		}
		site.Gateway = sr
		if site.Access == "" {
			site.Access = id.Access
		}
		bytes := opts.GatewayBytes
		if bytes <= 0 {
			bytes = gatewayBytes(site.PackageDownMbps)
		}
		site.GatewayTests, site.GatewayTargets = gatewayTests(drv, site.SpeedURL, bytes)
	}
	if opts.lineOnly {
		site = diagrun.Site{Gateway: site.Gateway, Access: site.Access, PackageDownMbps: site.PackageDownMbps,
			PackageUpMbps: site.PackageUpMbps, Facts: site.Facts}
	}

	var profile *verdict.Profile
	if overrides != nil {
		p := verdict.ProfileFor(site.Access, site.PackageDownMbps, site.PackageUpMbps)
		if err := p.Override(overrides); err != nil {
			return &usageError{fmt.Errorf("threshold overrides in %s: %w", overridesPath, err)}
		}
		profile = &p
	}
	o := diagrun.Options{Profile: profile, Logger: f.Logger(), Upload: opts.Upload}
	o.Speed.Duration = opts.Duration
	if o.Speed.Duration <= 0 {
		o.Speed.Duration = cfg.Diag.SpeedDuration
	}
	if f.IO.ErrIsTerminal && !f.jsonOutput() {
		o.Speed.Progress = speedProgress(f.IO.ErrOut)
		o.Progress = func(probe, target string, res *diagnostics.Result) {
			if res == nil {
				fmt.Fprintf(f.IO.ErrOut, "… %s %s\n", probe, target)
			} else if strings.HasPrefix(probe, "speed_") {
				fmt.Fprintln(f.IO.ErrOut)
			}
		}
	}
	out, err := diagrun.Run(ctx, site, o)
	if err != nil {
		return err
	}
	if st != nil {
		// Stored before anything is shown: the readings are the record.
		if err := storeDiag(ctx, st, opts.Order, out); err != nil {
			return err
		}
	}
	return printOutcome(f, out, lang)
}

// printOutcome prints a diagnosis (its readings table and findings, or
// JSON) and returns exit status 1 when a check failed.
func printOutcome(f *Factory, out diagrun.Outcome, lang verdict.Lang) error {
	if f.jsonOutput() {
		if err := f.writeJSON(out); err != nil {
			return err
		}
	} else {
		if err := out.Report.WriteTable(f.IO.Out); err != nil {
			return err
		}
		if len(out.Report.Findings) > 0 {
			fmt.Fprintln(f.IO.Out)
			if err := out.Report.WriteFindings(f.IO.Out, lang); err != nil {
				return err
			}
		}
	}
	if out.Report.Failed() {
		return &silentError{err: errors.New("diag run: a check failed"), code: exitCheckFailed}
	}
	return nil
}

// storeDiag keeps a diag run's readings, findings and verdict with the
// order, under the step "diag_run".
func storeDiag(ctx context.Context, st *store.Store, orderID string, out diagrun.Outcome) error {
	var rs []store.Reading
	for _, res := range out.Results {
		for _, r := range res.Readings {
			if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
				continue
			}
			rs = append(rs, store.Reading{Name: r.Name, Value: r.Value, Unit: r.Unit, At: r.Time})
		}
	}
	if err := st.AddReadings(ctx, orderID, "diag_run", rs); err != nil {
		return err
	}
	var fs []store.Finding
	for _, fd := range out.Report.Findings {
		fs = append(fs, store.Finding{Code: string(fd.Code), Severity: string(fd.Severity), Symptom: fd.Symptom, Cause: fd.Cause, Fix: fd.Fix})
	}
	if len(fs) > 0 {
		if err := st.AddFindings(ctx, orderID, "diag_run", fs); err != nil {
			return err
		}
	}
	return st.AddEvent(ctx, orderID, "diag_run", fmt.Sprintf("%s: %d checks, %d findings", out.Report.Status, len(out.Report.Checks), len(out.Report.Findings)))
}

// gatewayTests are the gateway-side probes the driver offers: its own
// download from the speed server's /file/N and a ping of the speed server.
func gatewayTests(drv drivers.Identifier, speedURL string, bytes int64) (map[string]diagnostics.Probe, map[string]string) {
	probes, targets := map[string]diagnostics.Probe{}, map[string]string{}
	if speedURL == "" {
		return probes, targets
	}
	if dt, ok := drv.(drivers.DownloadTester); ok {
		probes["gateway_download"] = gateway.DownloadProbe(dt, drivers.TransferOptions{})
		targets["gateway_download"] = strings.TrimSuffix(speedURL, "/") + "/file/" + strconv.FormatInt(bytes, 10)
	}
	if p, ok := drv.(drivers.Pinger); ok {
		probes["gateway_ping"] = gateway.PingProbe(p, drivers.PingOptions{Count: 5})
		targets["gateway_ping"] = diagrun.HostOf(speedURL)
	}
	return probes, targets
}

// gatewayBytes sizes the gateway's download test: about 4 s at the package
// rate, at least 10 MB and at most 500 MB.
func gatewayBytes(packageMbps float64) int64 {
	b := int64(packageMbps * 1e6 / 8 * 4)
	return min(max(b, 10_000_000), 500_000_000)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
