package main

// The remote side of the CLI: with --server URL (remote.server) the device,
// diag, fleet and job commands call a `fieldagent serve` API instead of the
// local store and ACS, so a remote engineer uses the technician's commands.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/jobs"
	"fieldagent/agent/remote"
	"fieldagent/agent/server"
	"fieldagent/diagnostics/verdict"
)

// remoteClient returns the serve API client when --server (remote.server)
// is set, and nil otherwise.
func remoteClient(f *Factory) (*remote.Client, error) {
	cfg := f.Config()
	if cfg.Remote.Server == "" {
		return nil, nil
	}
	c, err := remote.New(remote.Options{Server: cfg.Remote.Server, Token: cfg.Remote.Token, CAFile: cfg.Remote.CAFile, Timeout: cfg.Remote.Timeout})
	if err != nil {
		return nil, &usageError{err}
	}
	return c, nil
}

// needRemote is remoteClient for the commands that only a serve daemon
// answers (what names them in the error).
func needRemote(f *Factory, what string) (*remote.Client, error) {
	c, err := remoteClient(f)
	if err == nil && c == nil {
		err = &usageError{fmt.Errorf("%s: give --server URL (or remote.server in the config)", what)}
	}
	return c, err
}

// remoteErr gives a serve API error its exit code.
func remoteErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, remote.ErrUnreachable), errors.Is(err, remote.ErrDevice), errors.Is(err, remote.ErrBusy):
		return &codedError{err: err, code: exitUnreachable}
	case errors.Is(err, remote.ErrUnauthorized), errors.Is(err, remote.ErrForbidden),
		errors.Is(err, remote.ErrNotFound), errors.Is(err, remote.ErrBadRequest):
		return &usageError{err}
	}
	return err
}

// remoteDeviceList prints the devices the server knows that match q.
func remoteDeviceList(ctx context.Context, f *Factory, c *remote.Client, q url.Values) error {
	l, err := c.Devices(ctx, q)
	if err != nil {
		return remoteErr(err)
	}
	if f.jsonOutput() {
		return f.writeJSON(l)
	}
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tMODEL\tSERIAL\tLAST INFORM\tONLINE")
	for _, d := range l.Devices {
		online := "no"
		if d.Online {
			online = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Model, d.Serial, fmtTime(d.LastInform), online)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if l.Total > l.Count {
		fmt.Fprintf(f.IO.ErrOut, "%d of %d devices (page with --limit/--offset)\n", l.Count, l.Total)
	}
	return nil
}

// remoteDeviceShow prints one device as the server knows it.
func remoteDeviceShow(ctx context.Context, f *Factory, c *remote.Client, id string) error {
	d, err := c.Device(ctx, id)
	if err != nil {
		return remoteErr(err)
	}
	if f.jsonOutput() {
		return f.writeJSON(d)
	}
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\t%s\nModel\t%s\nManufacturer\t%s\nOUI\t%s\nProduct class\t%s\nSerial\t%s\nOnline\t%t\nFirst Inform\t%s\nLast Inform\t%s (%s)\nFrom\t%s\n",
		d.ID, d.Model, d.Manufacturer, d.OUI, d.ProductClass, d.Serial, d.Online, fmtTime(d.FirstInform), fmtTime(d.LastInform),
		strings.Join(d.LastEvents, ", "), d.RemoteAddr)
	names := make([]string, 0, len(d.Params))
	for n := range d.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", n, d.Params[n])
	}
	return tw.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// resolveRemoteDevice turns a device ID or a serial number into the
// server's device ID.
func resolveRemoteDevice(ctx context.Context, c *remote.Client, idOrSerial string) (string, error) {
	if _, err := c.Device(ctx, idOrSerial); err == nil {
		return idOrSerial, nil
	} else if !errors.Is(err, remote.ErrNotFound) {
		return "", err
	}
	l, err := c.Devices(ctx, url.Values{"serial": {idOrSerial}})
	if err != nil {
		return "", err
	}
	switch len(l.Devices) {
	case 0:
		return "", fmt.Errorf("%s: %w: no device with this ID or serial number has informed the server's ACS (fieldagent --server %s device list)", idOrSerial, remote.ErrNotFound, c.Server())
	case 1:
		return l.Devices[0].ID, nil
	}
	return "", fmt.Errorf("%s: %w: %d devices have this serial number; give the device ID", idOrSerial, remote.ErrBadRequest, len(l.Devices))
}

// followJob streams a job's events, printing each device's end on stderr
// (progress), and returns the job as stored once it has finished.
func followJob(ctx context.Context, f *Factory, c *remote.Client, jobID string) (server.JobView, error) {
	seen := map[string]bool{}
	err := c.Follow(ctx, jobID, func(ev jobs.Event) error {
		if ev.Type != jobs.EventDeviceFinished || seen[ev.DeviceID] {
			return nil
		}
		seen[ev.DeviceID] = true
		line := fmt.Sprintf("[%d/%d] %s %s", ev.Done, ev.Total, ev.DeviceID, ev.State)
		if ev.Error != "" {
			line += ": " + ev.Error
		} else if st := outcomeStatus(ev.Result); st != "" {
			line += " (" + st + ")"
		}
		fmt.Fprintln(f.IO.ErrOut, line)
		return nil
	})
	if err != nil {
		return server.JobView{}, err
	}
	return c.Job(ctx, jobID)
}

// outcomeStatus is a stored diagnosis result's verdict (ok, warn, fail).
func outcomeStatus(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var out struct {
		Report struct {
			Status string `json:"status"`
		} `json:"report"`
	}
	if json.Unmarshal(raw, &out) != nil {
		return ""
	}
	return out.Report.Status
}

// remoteDiagnose diagnoses one device through the server and prints its
// report as `diag run` does on site.
func remoteDiagnose(ctx context.Context, opts *diagRunOptions, c *remote.Client) error {
	f := opts.f
	target := firstNonEmpty(opts.Device, opts.Serial)
	if target == "" {
		return &usageError{errors.New("with --server, give the device to diagnose: --device ID (or --serial); `fieldagent --server URL device list` lists them")}
	}
	id, err := resolveRemoteDevice(ctx, c, target)
	if err != nil {
		return remoteErr(err)
	}
	acc, err := c.Diagnose(ctx, id, remote.DiagnoseRequest{Probes: opts.Probes})
	if err != nil {
		return remoteErr(err)
	}
	fmt.Fprintf(f.IO.ErrOut, "diagnosing %s on %s (job %s)\n", id, c.Server(), acc.JobID)
	job, err := followJob(ctx, f, c, acc.JobID)
	if err != nil {
		return remoteErr(err)
	}
	if len(job.Results) == 0 {
		return &codedError{err: fmt.Errorf("job %s ended %s without a result: %s", job.ID, job.State, job.Error), code: exitCheckFailed}
	}
	res := job.Results[0]
	if res.State != "done" && len(res.Result) == 0 {
		return &codedError{err: fmt.Errorf("diagnosis of %s %s: %s", id, res.State, res.Error), code: exitUnreachable}
	}
	var out diagrun.Outcome
	if err := json.Unmarshal(res.Result, &out); err != nil {
		return fmt.Errorf("job %s: the stored result is not a diagnosis: %w", job.ID, err)
	}
	if res.Error != "" {
		fmt.Fprintf(f.IO.ErrOut, "note: %s\n", res.Error)
	}
	return printOutcome(f, out, verdict.Lang(opts.Lang))
}
