package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"fieldagent/agent/secret"
)

type deviceActOptions struct {
	f            *Factory
	ID, Action   string
	VLAN         int
	WAN          string
	LOID         string
	LOIDPassword string
}

func newDeviceActCmds(f *Factory) []*cobra.Command {
	opts := &deviceActOptions{f: f}
	act := &cobra.Command{
		Use:   "act ID ACTION",
		Short: "Apply a fix to a device through a remote serve (configure role): redial_pppoe, reboot, set_wan_vlan, reregister_loid",
		Long: `act asks the remote serve daemon (--server) to apply one fix to a
gateway, the fixes its diagnosis proposes ('device actions ID' lists them):

  redial_pppoe      take the INTERNET WAN down and up again, wait until it is up
  reboot            reboot, wait for the 1 BOOT Inform
  set_wan_vlan      write the WAN's VLAN (--vlan, --wan internet|iptv), redial
  reregister_loid   write the LOID again (or --loid) so the gateway registers with ITMS

The server runs it within the request and audit-logs it (who, what, when,
before and after); the answer shows before and after. It needs a token with
the configure role. LOIDs and passwords go to the server only and are never
shown or logged.

Exit status: 0 the fix worked, 1 it ran and did not fix the device, 2 usage
or refused, 3 the server or the device is unreachable.`,
		Example: `  fieldagent --server https://support.example:7550 device act 00D0D0-F650-ZTEG1A2B3C4D redial_pppoe
  fieldagent --server https://support.example:7550 device act 00D0D0-F650-ZTEG1A2B3C4D set_wan_vlan --vlan 41
  fieldagent --server https://support.example:7550 device act 00D0D0-F650-ZTEG1A2B3C4D reregister_loid --loid env:LOID`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID, opts.Action = args[0], args[1]
			return runDeviceAct(cmd.Context(), opts, cmd.Flags().Changed("vlan"))
		},
	}
	fl := act.Flags()
	fl.IntVar(&opts.VLAN, "vlan", 0, "set_wan_vlan: the VLAN ID from the work order (0 untagged)")
	fl.StringVar(&opts.WAN, "wan", "", "set_wan_vlan: internet (default) or iptv")
	fl.StringVar(&opts.LOID, "loid", "", "reregister_loid: the LOID to write: env:NAME or file:/path (default: the gateway's own)")
	fl.StringVar(&opts.LOIDPassword, "loid-password", "", "reregister_loid: the LOID password: env:NAME or file:/path")
	_ = act.RegisterFlagCompletionFunc("wan", fixedCompletions("internet", "iptv"))

	actions := &cobra.Command{
		Use:     "actions ID",
		Short:   "List the fixes a device allows and those its latest diagnosis proposes (remote serve)",
		Example: "  fieldagent --server https://support.example:7550 device actions 00D0D0-F650-ZTEG1A2B3C4D",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := needRemote(f, "device actions asks a serve daemon")
			if err != nil {
				return err
			}
			raw, err := c.Actions(cmd.Context(), args[0])
			if err != nil {
				return remoteErr(err)
			}
			if f.jsonOutput() {
				_, err := f.IO.Out.Write(append(raw, '\n'))
				return err
			}
			var v struct {
				Available []string `json:"available"`
				Proposed  []string `json:"proposed"`
				Hint      string   `json:"hint"`
				Findings  []struct {
					Code    string   `json:"code"`
					Actions []string `json:"actions"`
					Fix     string   `json:"fix"`
				} `json:"findings"`
			}
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("the server's answer: %w", err)
			}
			tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "Available\t%s\nProposed\t%s\n", joinOr(v.Available), joinOr(v.Proposed))
			for _, fd := range v.Findings {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", fd.Code, joinOr(fd.Actions), fd.Fix)
			}
			if v.Hint != "" {
				fmt.Fprintf(tw, "\n%s\n", v.Hint)
			}
			return tw.Flush()
		},
	}
	return []*cobra.Command{act, actions}
}

func joinOr(ss []string) string {
	if len(ss) == 0 {
		return "-"
	}
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
	}
	return b.String()
}

func runDeviceAct(ctx context.Context, opts *deviceActOptions, vlanGiven bool) error {
	f := opts.f
	c, err := needRemote(f, "device act asks a serve daemon to apply the fix and audit-log it")
	if err != nil {
		return err
	}
	body := map[string]any{}
	switch opts.Action {
	case "set_wan_vlan":
		if !vlanGiven {
			return &usageError{errors.New("set_wan_vlan needs --vlan (from the work order; 0 is untagged)")}
		}
		body["vlan"] = opts.VLAN
		if opts.WAN != "" {
			body["wan"] = opts.WAN
		}
	case "reregister_loid":
		for flag, v := range map[string]string{"loid": opts.LOID, "password": opts.LOIDPassword} {
			if v == "" {
				continue
			}
			s, err := secret.Parse(v)
			if err != nil {
				return &usageError{fmt.Errorf("--%s: %w", map[string]string{"loid": "loid", "password": "loid-password"}[flag], err)}
			}
			body[flag] = s.Reveal()
		}
	}
	if opts.Action != "set_wan_vlan" && (vlanGiven || opts.WAN != "") {
		return &usageError{errors.New("--vlan and --wan are for set_wan_vlan")}
	}
	if opts.Action != "reregister_loid" && (opts.LOID != "" || opts.LOIDPassword != "") {
		return &usageError{errors.New("--loid and --loid-password are for reregister_loid")}
	}
	fmt.Fprintf(f.IO.ErrOut, "%s on %s through %s …\n", opts.Action, opts.ID, c.Server())
	res, err := c.Act(ctx, opts.ID, opts.Action, body)
	if err != nil {
		return remoteErr(err)
	}
	if f.jsonOutput() {
		if err := f.writeJSON(res); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "Device\t%s\nAction\t%s\nOutcome\t%s\nBefore\t%s\nAfter\t%s\nAudit\t#%d\n", res.DeviceID, res.Action, res.Outcome,
			compactJSON(res.Before), compactJSON(res.After), res.AuditID)
		if res.Error != "" {
			fmt.Fprintf(tw, "Error\t%s\n", res.Error)
		}
		if res.Hint != "" {
			fmt.Fprintf(tw, "Hint\t%s\n", res.Hint)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if res.Outcome != "ok" {
		return &silentError{err: fmt.Errorf("%s on %s: %s", opts.Action, opts.ID, res.Outcome), code: exitCheckFailed}
	}
	return nil
}

func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "-"
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// jobListQuery builds the query of job list.
func jobListQuery(state, kind string, limit int) url.Values {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if kind != "" {
		q.Set("kind", kind)
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	return q
}
