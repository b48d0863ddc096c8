package main

// Reads of one device that only a serve daemon answers (--server): its
// status getters, its recent Informs, its findings, and the audit log.

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"fieldagent/agent/server"
)

func newDeviceRemoteCmds(f *Factory) []*cobra.Command {
	get := func(cmd *cobra.Command, what, path string, out any) error {
		c, err := needRemote(f, what)
		if err != nil {
			return err
		}
		if err := c.Do(cmd.Context(), http.MethodGet, path, nil, out); err != nil {
			return remoteErr(err)
		}
		return nil
	}
	devPath := func(id, sub string) string { return "/api/v1/devices/" + url.PathEscape(id) + "/" + sub }

	status := &cobra.Command{
		Use:     "status ID",
		Short:   "Read a device's state now through the remote serve: identity, WAN, optical, DSL, LAN, Wi-Fi",
		Example: "  fieldagent --server https://support.example:7550 device status 00D0D0-F650-ZTEG1A2B3C4D",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st server.DeviceStatus
			if err := get(cmd, "device status reads the device through a serve daemon", devPath(args[0], "status"), &st); err != nil {
				return err
			}
			if f.jsonOutput() {
				return f.writeJSON(st)
			}
			tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
			if id := st.Identity; id != nil {
				fmt.Fprintf(tw, "Device\t%s %s %s, firmware %s, %s\n", id.Vendor, id.Model, id.Serial, id.Firmware, id.Access)
			}
			for _, w := range st.WAN {
				fmt.Fprintf(tw, "WAN\t%s %s %s\n", w.Status, w.ExternalIP, w.LastError)
			}
			if o := st.Optical; o != nil {
				fmt.Fprintf(tw, "Optical\tRx %.1f dBm, Tx %.1f dBm\n", o.RxPowerDBm, o.TxPowerDBm)
			}
			if d := st.DSL; d != nil {
				fmt.Fprintf(tw, "DSL\t%s, %d/%d kbit/s, SNR margin %.1f/%.1f dB\n", d.Status, d.DownstreamKbps, d.UpstreamKbps, d.DownstreamSNRdB, d.UpstreamSNRdB)
			}
			for _, p := range st.LANPorts {
				fmt.Fprintf(tw, "LAN%d\t%s %d Mbit/s %s\n", p.Port, p.Status, p.SpeedMbps, p.Duplex)
			}
			for _, w := range st.WiFi {
				fmt.Fprintf(tw, "Wi-Fi %d\t%s, channel %d, enabled %t, %d clients\n", w.Index, w.SSID, w.Channel, w.Enabled, w.Clients)
			}
			if len(st.LANHosts) > 0 {
				fmt.Fprintf(tw, "LAN hosts\t%d\n", len(st.LANHosts))
			}
			for name, e := range st.Errors {
				fmt.Fprintf(tw, "%s\tnot read: %s\n", name, e)
			}
			return tw.Flush()
		},
	}

	events := &cobra.Command{
		Use:     "events ID",
		Short:   "A device's recent Informs (event codes and times), newest first, from the remote serve",
		Example: "  fieldagent --server https://support.example:7550 device events 00D0D0-F650-ZTEG1A2B3C4D",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ev server.DeviceEvents
			if err := get(cmd, "device events asks a serve daemon", devPath(args[0], "events"), &ev); err != nil {
				return err
			}
			if f.jsonOutput() {
				return f.writeJSON(ev)
			}
			tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tEVENTS")
			for _, in := range ev.Informs {
				fmt.Fprintf(tw, "%s\t%s\n", fmtTime(in.At), strings.Join(in.Events, ", "))
			}
			return tw.Flush()
		},
	}

	var limit int
	findings := &cobra.Command{
		Use:     "findings ID",
		Short:   "The findings of a device's latest diagnoses (cause and fix), from the remote serve",
		Example: "  fieldagent --server https://support.example:7550 device findings 00D0D0-F650-ZTEG1A2B3C4D --limit 3",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := devPath(args[0], "findings")
			if limit > 0 {
				path += fmt.Sprintf("?limit=%d", limit)
			}
			var fd server.DeviceFindings
			if err := get(cmd, "device findings asks a serve daemon", path, &fd); err != nil {
				return err
			}
			if f.jsonOutput() {
				return f.writeJSON(fd)
			}
			tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
			for _, d := range fd.Diagnoses {
				fmt.Fprintf(tw, "%s\t%s (job %s)\n", fmtTime(d.FinishedAt), dash(d.Status), d.JobID)
				for _, x := range d.Findings {
					fmt.Fprintf(tw, "  %s\t%s: %s → %s\n", x.Code, x.Severity, x.Cause, x.Fix)
				}
			}
			if len(fd.Diagnoses) == 0 {
				fmt.Fprintln(tw, "no stored diagnosis: run one with 'diag run --device "+args[0]+"'")
			}
			return tw.Flush()
		},
	}
	findings.Flags().IntVar(&limit, "limit", 0, "at most this many diagnoses (server default)")

	var device, since string
	var auditLimit int
	audit := &cobra.Command{
		Use:     "audit",
		Short:   "The remote serve's audit log of device actions: who, what, when, before and after (configure role)",
		Example: "  fieldagent --server https://support.example:7550 device audit --device 00D0D0-F650-ZTEG1A2B3C4D --since 24h",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"device": device, "since": since} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if auditLimit > 0 {
				q.Set("limit", fmt.Sprint(auditLimit))
			}
			path := "/api/v1/audit"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var out struct {
				Entries []server.AuditView `json:"entries"`
				Count   int                `json:"count"`
			}
			if err := get(cmd, "device audit asks a serve daemon", path, &out); err != nil {
				return err
			}
			if f.jsonOutput() {
				return f.writeJSON(out)
			}
			tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tTIME\tWHO\tDEVICE\tACTION\tOUTCOME\tBEFORE\tAFTER")
			for _, e := range out.Entries {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, fmtTime(e.At), e.Actor, e.DeviceID, e.Action, e.Outcome,
					compactJSON(e.Before), compactJSON(e.After))
			}
			return tw.Flush()
		},
	}
	audit.Flags().StringVar(&device, "device", "", "only this device's entries")
	audit.Flags().StringVar(&since, "since", "", "only entries since this duration ago (24h) or RFC 3339 time")
	audit.Flags().IntVar(&auditLimit, "limit", 0, "at most this many entries (server default 100)")
	return []*cobra.Command{status, events, findings, audit}
}
