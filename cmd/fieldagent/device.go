package main

import (
	"context"
	"fmt"
	"net"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"fieldagent/drivers/catalog"
	"fieldagent/tr069/acs"
)

func newDeviceCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Devices: inspect and change gateways and set-top boxes through the ACS",
		Long: `device acts on the TR-069 devices that inform the ACS run by 'fieldagent acs
serve', through its device API (acs.api_url, authenticated with acs.api_token).
Device ids are OUI-ProductClass-SerialNumber, as 'device list' shows them.

'device identify' needs no running ACS: it starts one on acs.listen, waits
for a gateway's Inform and prints what the gateway says it is.`,
		Example: `  fieldagent device list
  fieldagent device get 00D0D0-F650-ZTEG1A2B3C4D InternetGatewayDevice.DeviceInfo.
  fieldagent device set 00D0D0-F650-ZTEG1A2B3C4D InternetGatewayDevice.ManagementServer.PeriodicInformInterval:unsignedInt=600
  fieldagent device identify --serial ZTEG1A2B3C4D`,
	}
	cmd.AddCommand(newDeviceIdentifyCmd(f, nil))
	cmd.AddCommand(newDeviceAPICmds(f)...)
	cmd.AddCommand(newDeviceActCmds(f)...)
	cmd.AddCommand(newDeviceRemoteCmds(f)...)
	return cmd
}

type deviceIdentifyOptions struct {
	f      *Factory
	Serial string
}

func newDeviceIdentifyCmd(f *Factory, runF func(context.Context, *deviceIdentifyOptions) error) *cobra.Command {
	opts := &deviceIdentifyOptions{f: f}
	cmd := &cobra.Command{
		Use:   "identify",
		Short: "Wait for a device's Inform on the ACS and print its identity (changes nothing)",
		Long: `identify starts an ACS on acs.listen, waits for the first e8 gateway or iTV
set-top box to inform (or the one with --serial), picks its driver from what
it reported and prints what it says it is: kind, e8 class (e8-B or e8-C),
vendor, model, serial, firmware, access type, STBID.

Exit status: 0 identified, 1 a device informed that no driver knows (the
error lists what it reported), 3 nothing informed in workflow.inform_timeout.`,
		Example: `  fieldagent device identify
  fieldagent device identify --serial ZTEG1A2B3C4D --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDeviceIdentify(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Serial, "serial", "", "serial number to wait for (default: the first gateway that informs)")
	return cmd
}

func runDeviceIdentify(ctx context.Context, opts *deviceIdentifyOptions) error {
	f := opts.f
	cfg := f.Config()
	ln, err := net.Listen("tcp", cfg.ACS.Listen)
	if err != nil {
		return fmt.Errorf("ACS cannot listen on %s (acs.listen): %w", cfg.ACS.Listen, err)
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := startACS(actx, cfg, ln, f.Logger())
	if !f.jsonOutput() {
		fmt.Fprintf(f.IO.ErrOut, "waiting up to %s for an Inform on %s …\n", cfg.Workflow.InformTimeout, ln.Addr())
	}
	wctx, wcancel := context.WithTimeout(ctx, cfg.Workflow.InformTimeout)
	defer wcancel()
	d, err := a.WaitDevice(wctx, func(d acs.Device) bool { return opts.Serial == "" || d.DeviceId.SerialNumber == opts.Serial })
	if err != nil {
		return &codedError{err: fmt.Errorf("no Inform within %s (workflow.inform_timeout): check the device is powered, cabled to this laptop and its ACS URL points at %s: %w", cfg.Workflow.InformTimeout, ln.Addr(), err), code: exitUnreachable}
	}
	sctx, scancel := context.WithTimeout(ctx, cfg.Workflow.StepTimeout)
	defer scancel()
	reg := catalog.New(catalog.Options{ACS: a, Logger: f.Logger()})
	drv, _, err := catalog.OpenTR069(sctx, reg, d)
	if err != nil {
		return err
	}
	id, err := drv.Identify(sctx)
	if err != nil {
		return err
	}
	if f.jsonOutput() {
		return f.writeJSON(id)
	}
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("Kind", string(id.Kind))
	row("Class", id.Class)
	row("Vendor", id.Vendor)
	row("Model", id.Model)
	row("Serial", id.Serial)
	row("OUI", id.OUI)
	row("Product class", id.ProductClass)
	row("Firmware", id.Firmware)
	row("Hardware", id.Hardware)
	row("Access", id.Access)
	row("STBID", id.STBID)
	return tw.Flush()
}
