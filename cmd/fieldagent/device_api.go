package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"fieldagent/agent/secret"
	"fieldagent/agent/server"
)

// deviceOptions are the inputs of the device API commands.
type deviceOptions struct {
	f      *Factory
	Op     string
	ID     string
	Args   []string
	Key    string
	Next   bool
	DL     server.DownloadRequest
	DLPass string
	// filters, on device list, returns the search flags given.
	filters func() url.Values
}

// apiClient builds the device API client from the configuration.
func apiClient(f *Factory) (*server.Client, error) {
	cfg := f.Config()
	if cfg.ACS.APIToken.IsZero() {
		return nil, &usageError{errors.New("acs.api_token is not set: use the token 'fieldagent acs serve' runs with (config, or FIELDAGENT_ACS_API_TOKEN)")}
	}
	return &server.Client{BaseURL: cfg.ACS.APIURL, Token: cfg.ACS.APIToken}, nil
}

// apiErr turns a device API error into an exit code.
func apiErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, server.ErrUnreachable), errors.Is(err, server.ErrDeviceUnreachable):
		return &codedError{err: err, code: exitUnreachable}
	case errors.Is(err, server.ErrUnknownDevice), errors.Is(err, server.ErrBadRequest), errors.Is(err, server.ErrUnauthorized):
		return &usageError{err}
	}
	return err
}

func newDeviceAPICmds(f *Factory) []*cobra.Command {
	mk := func(use, short, example string, args cobra.PositionalArgs, setup func(*cobra.Command, *deviceOptions)) *cobra.Command {
		opts := &deviceOptions{f: f, Op: strings.Fields(use)[0]}
		c := &cobra.Command{
			Use: use, Short: short, Example: example, Args: args,
			RunE: func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					opts.ID, opts.Args = args[0], args[1:]
				}
				err := runDevice(cmd.Context(), opts)
				if usesGenieACS(f) {
					return nbiErr(err)
				}
				return apiErr(err)
			},
		}
		if setup != nil {
			setup(c, opts)
		}
		return c
	}
	return []*cobra.Command{
		mk("list", "List the devices that have informed the ACS",
			"  fieldagent device list\n  fieldagent device list --output json\n  # remote support: search the serve daemon's devices\n  fieldagent --server https://support.example:7550 device list --loid 12345678901 --online",
			cobra.NoArgs, func(c *cobra.Command, o *deviceOptions) {
				fl := c.Flags()
				fl.String("query", "", "with acs.kind: genieacs: a GenieACS (MongoDB-style) query")
				for _, name := range []string{"serial", "model", "q", "kind", "loid", "account", "seen-since", "limit", "offset"} {
					usage := map[string]string{
						"serial": "search (--server or GenieACS): this serial number", "model": "search (--server or GenieACS): this model or product class",
						"q": "with --server: text in the ID, serial, model or manufacturer", "kind": "with --server: e8, itv or xt2", "loid": "search (--server or GenieACS): the gateway's LOID (matched, never shown)",
						"account":    "with --server: the customer account of an order that installed the device",
						"seen-since": "search (--server or GenieACS): informed within this duration (24h) or since this RFC 3339 time",
						"limit":      "with --server: at most this many devices", "offset": "with --server: skip this many (paging)",
					}[name]
					fl.String(name, "", usage)
				}
				fl.String("online", "", "with --server: true or false")
				o.filters = func() url.Values {
					q := url.Values{}
					for _, name := range []string{"serial", "model", "q", "kind", "loid", "account", "seen-since", "limit", "offset", "online", "query"} {
						if fl.Changed(name) {
							q.Set(strings.ReplaceAll(name, "-", "_"), fl.Lookup(name).Value.String())
						}
					}
					return q
				}
			}),
		mk("show ID", "Show a device and the parameters of its last Inform",
			"  fieldagent device show 00D0D0-F650-ZTEG1A2B3C4D", cobra.ExactArgs(1), nil),
		mk("get ID NAME...", "Read parameter values (a name ending in '.' reads a whole subtree)",
			"  fieldagent device get 00D0D0-F650-ZTEG1A2B3C4D InternetGatewayDevice.DeviceInfo.\n  fieldagent device get 00D0D0-F650-ZTEG1A2B3C4D InternetGatewayDevice.X_CT-COM_UserInfo.Status --output json",
			cobra.MinimumNArgs(2), nil),
		mk("names ID PATH", "List parameter names under a path (GetParameterNames)",
			"  fieldagent device names 00D0D0-F650-ZTEG1A2B3C4D InternetGatewayDevice.WANDevice.1. --next-level",
			cobra.ExactArgs(2), func(c *cobra.Command, o *deviceOptions) {
				c.Flags().BoolVar(&o.Next, "next-level", false, "only the level directly below PATH")
			}),
		mk("set ID NAME[:TYPE]=VALUE...", "Write parameter values atomically (all or none)",
			"  fieldagent device set 00D0D0-F650-ZTEG1A2B3C4D InternetGatewayDevice.ManagementServer.PeriodicInformInterval:unsignedInt=600\n  # TYPE is string (default), int, unsignedInt, boolean, dateTime, base64 or hexBinary",
			cobra.MinimumNArgs(2), func(c *cobra.Command, o *deviceOptions) {
				c.Flags().StringVar(&o.Key, "key", "", "ParameterKey to set with the change")
			}),
		mk("add ID OBJECT.", "Add an instance of a multi-instance object (AddObject)",
			"  fieldagent device add 00D0D0-F650-ZTEG1A2B3C4D InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.",
			cobra.ExactArgs(2), func(c *cobra.Command, o *deviceOptions) {
				c.Flags().StringVar(&o.Key, "key", "", "ParameterKey to set with the change")
			}),
		mk("delete ID OBJECT.", "Delete an object instance (DeleteObject)",
			"  fieldagent device delete 00D0D0-F650-ZTEG1A2B3C4D InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.2.",
			cobra.ExactArgs(2), func(c *cobra.Command, o *deviceOptions) {
				c.Flags().StringVar(&o.Key, "key", "", "ParameterKey to set with the change")
			}),
		mk("reboot ID", "Reboot a device (it informs again with 1 BOOT)",
			"  fieldagent device reboot 00D0D0-F650-ZTEG1A2B3C4D", cobra.ExactArgs(1), nil),
		mk("download ID [URL]", "Make a device download a file (firmware or config) with the Download RPC",
			"  # a file of acs.files_dir, served to this device alone; wait for its TransferComplete\n  fieldagent device download 00D0D0-F650-ZTEG1A2B3C4D --file F650-V2.2.bin --wait\n  # any URL the device can reach\n  fieldagent device download 00D0D0-F650-ZTEG1A2B3C4D http://files.example/F650-V2.2.bin --file-size 16777216",
			cobra.RangeArgs(1, 2), func(c *cobra.Command, o *deviceOptions) {
				c.Flags().StringVar(&o.DL.File, "file", "", "a file of acs.files_dir (instead of URL)")
				c.Flags().BoolVar(&o.DL.Wait, "wait", false, "wait for the device's TransferComplete and report its result")
				c.Flags().StringVar(&o.DL.FileType, "file-type", "1 Firmware Upgrade Image", `TR-069 file type: "1 Firmware Upgrade Image", "3 Vendor Configuration File", ...`)
				c.Flags().Uint32Var(&o.DL.FileSize, "file-size", 0, "file size in bytes (0: unknown)")
				c.Flags().StringVar(&o.DL.TargetFileName, "target", "", "target file name on the device")
				c.Flags().StringVar(&o.DL.Username, "username", "", "user name for the file server")
				c.Flags().StringVar(&o.DLPass, "password", "", "password for the file server: env:NAME or file:/path (inline values show in `ps`)")
				c.Flags().StringVar(&o.DL.CommandKey, "command-key", "fieldagent-download", "CommandKey the TransferComplete will carry")
			}),
	}
}

// parseSet parses NAME[:TYPE]=VALUE.
func parseSet(arg string) (server.Parameter, error) {
	name, value, ok := strings.Cut(arg, "=")
	if !ok || name == "" {
		return server.Parameter{}, fmt.Errorf("%q is not NAME[:TYPE]=VALUE", arg)
	}
	p := server.Parameter{Name: name, Value: value}
	if n, t, ok := strings.Cut(name, ":"); ok {
		p.Name, p.Type = n, t
		switch t {
		case "string", "int", "unsignedInt", "boolean", "dateTime", "base64", "hexBinary":
		default:
			return server.Parameter{}, fmt.Errorf("%q: type %q is not one of string, int, unsignedInt, boolean, dateTime, base64, hexBinary", arg, t)
		}
	}
	return p, nil
}

func runDevice(ctx context.Context, o *deviceOptions) error {
	f := o.f
	var filters url.Values
	if o.filters != nil {
		filters = o.filters()
	}
	if rc, err := remoteClient(f); err != nil {
		return err
	} else if rc != nil {
		switch o.Op {
		case "list":
			if filters.Has("query") {
				return &usageError{errors.New("--query is a GenieACS query (acs.kind: genieacs); serve's device search takes --serial, --model, --q, --kind, --loid, --account, --seen-since, --online")}
			}
			return remoteDeviceList(ctx, f, rc, filters)
		case "show":
			return remoteDeviceShow(ctx, f, rc, o.ID)
		}
		return &usageError{fmt.Errorf("device %s is not offered through --server: the remote API runs diagnoses (diag run --device) and the fixes of `device act`; changing parameters one by one stays with the site's ACS", o.Op)}
	}
	var c deviceAPI
	if usesGenieACS(f) {
		nc, err := nbiClient(f)
		if err != nil {
			return err
		}
		nd := nbiDevices{c: nc, filesDir: f.Config().ACS.FilesDir}
		if nd.filter, nd.offset, nd.limit, err = nbiListFilter(filters, f.Now()); err != nil {
			return err
		}
		c = nd
	} else {
		if len(filters) > 0 {
			return &usageError{errors.New("the search flags of device list need --server (the serve daemon's registry) or acs.kind: genieacs; without them, device list shows every device of the local ACS")}
		}
		ac, err := apiClient(f)
		if err != nil {
			return err
		}
		c = ac
	}
	var err error
	ctx, cancel := context.WithTimeout(ctx, 3*f.Config().Workflow.StepTimeout)
	defer cancel()
	out := f.IO.Out
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch o.Op {
	case "list":
		ds, err := c.Devices(ctx)
		if err != nil {
			return err
		}
		if f.jsonOutput() {
			return f.writeJSON(map[string]any{"devices": ds})
		}
		fmt.Fprintln(tw, "ID\tMANUFACTURER\tSERIAL\tLAST INFORM\tEVENTS")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Manufacturer, d.Serial, d.LastInform.Local().Format("2006-01-02 15:04:05"), strings.Join(d.LastEvents, ", "))
		}
	case "show":
		d, err := c.Device(ctx, o.ID)
		if err != nil {
			return err
		}
		if f.jsonOutput() {
			return f.writeJSON(d)
		}
		fmt.Fprintf(tw, "ID\t%s\nManufacturer\t%s\nOUI\t%s\nProduct class\t%s\nSerial\t%s\nLast Inform\t%s (%s)\nFrom\t%s\nConnection request\t%s\n",
			d.ID, d.Manufacturer, d.OUI, d.ProductClass, d.Serial, d.LastInform.Local().Format("2006-01-02 15:04:05"), strings.Join(d.LastEvents, ", "), d.RemoteAddr, d.ConnectionRequestURL)
		names := make([]string, 0, len(d.Params))
		for n := range d.Params {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(tw, "  %s\t%s\n", n, d.Params[n])
		}
	case "get", "names":
		var ps []server.Parameter
		if o.Op == "get" {
			ps, err = c.Get(ctx, o.ID, o.Args...)
		} else {
			ps, err = c.Names(ctx, o.ID, o.Args[0], o.Next)
		}
		if err != nil {
			return err
		}
		if f.jsonOutput() {
			return f.writeJSON(map[string]any{"parameters": ps})
		}
		for _, p := range ps {
			if p.Writable != nil {
				fmt.Fprintf(tw, "%s\twritable=%v\n", p.Name, *p.Writable)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Value, p.Type)
		}
	case "set":
		var ps []server.Parameter
		for _, a := range o.Args {
			p, err := parseSet(a)
			if err != nil {
				return &usageError{err}
			}
			ps = append(ps, p)
		}
		if err := c.Set(ctx, o.ID, ps, o.Key); err != nil {
			return err
		}
		return done(f, map[string]any{"device": o.ID, "set": len(ps)}, fmt.Sprintf("set %d parameter(s) on %s", len(ps), o.ID))
	case "add":
		n, err := c.Add(ctx, o.ID, o.Args[0], o.Key)
		if err != nil {
			return err
		}
		return done(f, map[string]any{"device": o.ID, "object": o.Args[0], "instance": n}, fmt.Sprintf("added %s%d.", o.Args[0], n))
	case "delete":
		if err := c.Delete(ctx, o.ID, o.Args[0], o.Key); err != nil {
			return err
		}
		return done(f, map[string]any{"device": o.ID, "deleted": o.Args[0]}, "deleted "+o.Args[0])
	case "reboot":
		if err := c.Reboot(ctx, o.ID, "fieldagent-reboot"); err != nil {
			return err
		}
		return done(f, map[string]any{"device": o.ID, "rebooting": true}, o.ID+" is rebooting; it informs again with 1 BOOT")
	case "download":
		if len(o.Args) == 1 {
			o.DL.URL = o.Args[0]
		}
		if (o.DL.URL == "") == (o.DL.File == "") {
			return &usageError{errors.New("download: give either a URL or --file NAME")}
		}
		if o.DLPass != "" {
			pw, err := secret.Parse(o.DLPass)
			if err != nil {
				return &usageError{fmt.Errorf("--password: %w", err)}
			}
			o.DL.Password = pw
		}
		st, key, err := c.Download(ctx, o.ID, o.DL)
		if err != nil {
			return err
		}
		msg := "download finished"
		if st == 1 {
			msg = "download started; the device reports the result with TransferComplete (command key " + key + ")"
		}
		return done(f, map[string]any{"device": o.ID, "status": st, "command_key": key}, msg)
	}
	return nil
}

func done(f *Factory, v any, text string) error {
	if f.jsonOutput() {
		return f.writeJSON(v)
	}
	_, err := fmt.Fprintln(f.IO.Out, text)
	return err
}
