package exam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/order"
	"fieldagent/diagnostics/iptv"
	"fieldagent/diagnostics/speedtest"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers/catalog"
	"fieldagent/drivers/e8"
	"fieldagent/drivers/itv"
	"fieldagent/drivers/snmp"
	"fieldagent/drivers/sshcli"
	"fieldagent/drivers/xt2"
	"fieldagent/testlab"
	"fieldagent/tr069/acs"
)

// diagnoser is the candidate's troubleshooting: for each fault, the
// diagnosis a technician runs with fieldagent, and what it reports.
type diagnoser struct {
	site          *testlab.Site
	acs           *acs.Server
	ord           *order.Order
	speedDuration time.Duration
	logger        *slog.Logger
	dir           string
	gw            *e8.Driver
	box           *itv.Driver
	router        *xt2.Driver
}

func (d *diagnoser) close() {
	if d.router != nil {
		_ = d.router.Close()
	}
}

// fault sets f, diagnoses the site, takes f away and waits for the site to
// recover.
func (d *diagnoser) fault(ctx context.Context, f testlab.Fault) (FaultResult, error) {
	start := time.Now()
	res := FaultResult{Fault: f}
	if err := d.site.InjectFault(f.ID); err != nil {
		if errors.Is(err, testlab.ErrFaultNotApplicable) {
			res.Skipped = err.Error()
			return res, nil
		}
		return res, err
	}
	rep, derr := d.diagnose(ctx, f.Device)
	if err := d.site.ClearFault(f.ID); err != nil {
		return res, err
	}
	if derr != nil {
		return res, derr
	}
	for _, fd := range rep.Findings {
		res.Reported = append(res.Reported, string(fd.Code))
	}
	res.Found = slices.Contains(res.Reported, string(f.Finding))
	res.Took = Duration(time.Since(start))
	return res, d.recover(ctx)
}

// gateway opens the site's gateway through the catalogue.
func (d *diagnoser) gateway(ctx context.Context) (*e8.Driver, error) {
	if d.gw != nil {
		return d.gw, nil
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dev, err := d.acs.WaitDevice(wctx, func(a acs.Device) bool { return a.DeviceId.SerialNumber == testlab.SampleGatewaySN })
	if err != nil {
		return nil, fmt.Errorf("the gateway did not inform: %w", err)
	}
	drv, _, err := catalog.OpenTR069(ctx, catalog.New(catalog.Options{ACS: d.acs, PollInterval: 50 * time.Millisecond}), dev)
	if err != nil {
		return nil, err
	}
	gw, ok := drv.(*e8.Driver)
	if !ok {
		return nil, fmt.Errorf("%s is not an e8 gateway", dev.ID)
	}
	d.gw = gw
	return gw, nil
}

// diagnose runs the diagnosis a technician runs with fieldagent (diag
// run): the gateway's line, WAN and IPTV configuration, the set-top box,
// the XT-2, the IPTV channel, and the laptop's ping, DNS and speed tests.
func (d *diagnoser) diagnose(ctx context.Context, device string) (verdict.Report, error) {
	svc := service(d.ord, order.DeviceE8)
	site := diagrun.Site{
		SpeedURL: d.site.SpeedURL, PingTarget: diagrun.HostOf(d.site.SpeedURL),
		Facts: map[string]string{},
	}
	if d.site.DNSAddr != "" {
		site.Resolvers = []string{d.site.DNSAddr}
	}
	if d.ord.RequiredFirmware != "" {
		site.Facts[verdict.FactFirmwareRequired] = d.ord.RequiredFirmware
	}
	switch {
	case d.site.Gateway != nil:
		gw, err := d.gateway(ctx)
		if err != nil {
			return verdict.Report{}, err
		}
		site.Gateway, site.Access, site.PackageDownMbps = gw, string(svc.Access), float64(svc.BandwidthMbps)
	case d.site.XT2 != nil:
		xt, err := d.xt2(ctx)
		if err != nil {
			return verdict.Report{}, err
		}
		svc = service(d.ord, order.DeviceXT2)
		site.XT2, site.Access, site.PackageDownMbps = xt, string(svc.Access), float64(svc.BandwidthMbps)
	default:
		return verdict.Report{}, fmt.Errorf("%w: %s", errNoDiagnosis, device)
	}
	if d.site.STB != nil {
		stb, err := d.stb(ctx)
		if err != nil {
			return verdict.Report{}, err
		}
		site.STB, site.STBPort, site.StreamWindow = stb, testlab.STBPort, 500*time.Millisecond
	}
	if d.site.Channel != "" {
		site.IPTV = iptv.Probe(iptv.Options{Duration: 2 * time.Second, JoinTimeout: 2 * time.Second, Interval: 500 * time.Millisecond})
		site.IPTVTarget = d.site.Channel
	}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := diagrun.Run(dctx, site, diagrun.Options{Logger: d.logger, Timeout: 20 * time.Second,
		Speed: speedtest.ClientOptions{Duration: d.speedDuration}})
	return out.Report, err
}

// stb opens the site's set-top box through the catalogue.
func (d *diagnoser) stb(ctx context.Context) (*itv.Driver, error) {
	if d.box != nil {
		return d.box, nil
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dev, err := d.acs.WaitDevice(wctx, func(a acs.Device) bool { return a.DeviceId.SerialNumber == testlab.SampleSTBSN })
	if err != nil {
		return nil, fmt.Errorf("the set-top box did not inform: %w", err)
	}
	drv, _, err := catalog.OpenTR069(ctx, catalog.New(catalog.Options{ACS: d.acs, PollInterval: 50 * time.Millisecond}), dev)
	if err != nil {
		return nil, err
	}
	box, ok := drv.(*itv.Driver)
	if !ok {
		return nil, fmt.Errorf("%s is not an iTV set-top box", dev.ID)
	}
	d.box = box
	return box, nil
}

// xt2 opens the site's XT-2 once.
func (d *diagnoser) xt2(ctx context.Context) (*xt2.Driver, error) {
	if d.router != nil {
		return d.router, nil
	}
	x, err := xt2Opener(d.site, d.dir)(ctx)
	if err != nil {
		return nil, err
	}
	d.router = x
	return x, nil
}

// recover waits until the internet is back after a fault is taken away,
// so that the next fault starts from a working site.
func (d *diagnoser) recover(ctx context.Context) error {
	if d.site.Gateway == nil {
		xt, err := d.xt2(ctx)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for {
			w, err := xt.WANStatus(wctx)
			if err == nil && w.Up() {
				return nil
			}
			select {
			case <-wctx.Done():
				return fmt.Errorf("the XT-2 did not recover after the fault was taken away: %w", wctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	gw, err := d.gateway(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := gw.WaitWANUp(wctx); err != nil {
		return fmt.Errorf("the site did not recover after the fault was taken away: %w", err)
	}
	return nil
}

func service(o *order.Order, k order.DeviceKind) order.Service {
	for _, s := range o.Services {
		if s.Device == k {
			return s
		}
	}
	return order.Service{}
}

// xt2Opener connects to the site's XT-2, its host key written to a
// known_hosts file in dir (a temporary one when dir is empty).
func xt2Opener(site *testlab.Site, dir string) func(context.Context) (*xt2.Driver, error) {
	if site.XT2 == nil {
		return nil
	}
	return func(ctx context.Context) (*xt2.Driver, error) {
		kdir := dir
		if kdir == "" {
			var err error
			if kdir, err = os.MkdirTemp("", "fieldagent-exam-ssh-"); err != nil {
				return nil, err
			}
		}
		acc := site.XT2Access
		kh := filepath.Join(kdir, "known_hosts")
		if err := os.WriteFile(kh, []byte(acc.KnownHostsLine()), 0o600); err != nil {
			return nil, err
		}
		return xt2.Open(ctx, xt2.Config{
			SSH:  sshcli.Config{Addr: acc.SSHAddr, User: acc.Username, Password: acc.Password, KnownHostsFile: kh},
			SNMP: snmp.Target{Addr: acc.SNMPAddr, Version: snmp.V2c, Community: acc.SNMPCommunity, Timeout: time.Second, Retries: 2},
		})
	}
}
