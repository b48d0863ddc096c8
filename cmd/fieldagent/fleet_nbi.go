package main

// diag run and fleet diagnose over the operator's GenieACS (acs.kind:
// genieacs): the gateway-side diagnosis through the NBI, the fleet's jobs
// and results kept in the local store as serve keeps them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/jobs"
	"fieldagent/agent/server"
	"fieldagent/agent/store"
	"fieldagent/diagnostics/verdict"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/genieacs"
)

// nbiPage is how many device IDs one NBI search returns while a fleet
// selection is read.
const nbiPage = 500

// nbiResolve finds a device by ID or serial number on GenieACS.
func nbiResolve(ctx context.Context, c *genieacs.Client, idOrSerial string) (acs.Device, error) {
	d, err := c.Device(ctx, idOrSerial)
	if err == nil || !errors.Is(err, acs.ErrUnknownDevice) {
		return d, err
	}
	ds, total, err := c.Devices(ctx, genieacs.Query{Filter: genieacs.Equal("_deviceId._SerialNumber", idOrSerial), Limit: 2})
	switch {
	case err != nil:
		return acs.Device{}, err
	case total == 0:
		return acs.Device{}, fmt.Errorf("%s: %w: GenieACS has no device with this ID or serial number", idOrSerial, acs.ErrUnknownDevice)
	case total > 1:
		return acs.Device{}, fmt.Errorf("%s: %w: %d devices on GenieACS have this serial number; give the device ID", idOrSerial, errUsage, total)
	}
	return ds[0], nil
}

// nbiDiagnoseOne is the run of one device in a GenieACS diagnosis.
func nbiDiagnoseOne(f *Factory, c *genieacs.Client, probes []string) func(ctx context.Context, d acs.Device) (diagrun.Outcome, error) {
	cfg := f.Config()
	return func(ctx context.Context, d acs.Device) (diagrun.Outcome, error) {
		out, err := diagrun.DiagnoseTR069(ctx, c, d, diagrun.TR069Options{SpeedURL: cfg.Diag.SpeedURL,
			Options: diagrun.Options{Timeout: cfg.Workflow.StepTimeout, Probes: probes, Logger: f.Logger()}})
		if err == nil {
			// Mark what fieldagent has diagnosed, for GenieACS's UI and queries.
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if terr := c.AddTag(tctx, d.ID, genieacs.TagDiagnosed); terr != nil {
				f.Logger().Warn("GenieACS tag not added", "device", d.ID, "tag", genieacs.TagDiagnosed, "err", terr)
			}
			cancel()
		}
		return out, err
	}
}

// runNBIDiagnose is diag run --device over GenieACS.
func runNBIDiagnose(ctx context.Context, opts *diagRunOptions) error {
	f := opts.f
	target := firstNonEmpty(opts.Device, opts.Serial)
	if target == "" {
		return &usageError{errors.New("with acs.kind: genieacs, give the device to diagnose: --device ID (or --serial)")}
	}
	c, err := nbiClient(f)
	if err != nil {
		return err
	}
	d, err := nbiResolve(ctx, c, target)
	if err != nil {
		return nbiErr(err)
	}
	fmt.Fprintf(f.IO.ErrOut, "diagnosing %s through GenieACS at %s\n", d.ID, c.URL())
	ctx, cancel := context.WithTimeout(ctx, diagrun.DefaultDiagnoseTimeout)
	defer cancel()
	out, err := nbiDiagnoseOne(f, c, opts.Probes)(ctx, d)
	if err != nil && len(out.Results) == 0 {
		return nbiErr(err)
	}
	return printOutcome(f, out, verdict.Lang(opts.Lang))
}

// nbiSelect reads the IDs of every device the GenieACS query matches,
// page by page.
func nbiSelect(ctx context.Context, c *genieacs.Client, filter string) ([]string, error) {
	var ids []string
	for skip := 0; ; skip += nbiPage {
		ds, total, err := c.Devices(ctx, genieacs.Query{Filter: filter, Projection: []string{"_id", "_deviceId"}, Sort: `{"_id":1}`, Skip: skip, Limit: nbiPage})
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		if len(ds) < nbiPage || len(ids) >= total {
			return ids, nil
		}
	}
}

// runNBIFleet is fleet diagnose over GenieACS: the devices the query (or
// the arguments) select are diagnosed as a job in the local store, at most
// --concurrency at once.
func runNBIFleet(ctx context.Context, opts *fleetOptions) error {
	f := opts.f
	if opts.SerialPrefix != "" {
		return &usageError{errors.New("--serial-prefix selects on a serve daemon's ACS; over GenieACS give --query, e.g. --query '{\"_deviceId._SerialNumber\":{\"$regex\":\"^ZTEG\"}}'")}
	}
	c, err := nbiClient(f, opts.KeepTasks)
	if err != nil {
		return err
	}
	var ids []string
	if opts.Query != "" {
		if !json.Valid([]byte(opts.Query)) {
			return &usageError{fmt.Errorf("--query %q is not JSON: give a GenieACS (MongoDB-style) query, e.g. '{\"_deviceId._ProductClass\":\"F650\"}'", opts.Query)}
		}
		if ids, err = nbiSelect(ctx, c, opts.Query); err != nil {
			return nbiErr(err)
		}
		if len(ids) == 0 {
			return &usageError{fmt.Errorf("--query %s matches no device on GenieACS", opts.Query)}
		}
	} else {
		for _, name := range opts.Devices {
			d, err := nbiResolve(ctx, c, name)
			if err != nil {
				return nbiErr(err)
			}
			ids = append(ids, d.ID)
		}
	}
	cfg := f.Config()
	if err := ensureDir(cfg.Store); err != nil {
		return fmt.Errorf("store directory: %w", err)
	}
	st, err := store.Open(cfg.Store)
	if err != nil {
		return fmt.Errorf("open store %s: %w", cfg.Store, err)
	}
	defer st.Close()
	concurrency := opts.Concurrency
	if concurrency <= 0 {
		concurrency = cfg.Serve.Concurrency
	}
	runner := &jobs.Runner{Store: st, Concurrency: concurrency, Logger: f.Logger().With("component", "jobs")}
	if _, err := runner.Recover(ctx); err != nil {
		return err
	}
	one := nbiDiagnoseOne(f, c, nil)
	run := func(ctx context.Context, id string) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, diagrun.DefaultDiagnoseTimeout)
		defer cancel()
		d, err := c.Device(ctx, id)
		if err != nil {
			return nil, err
		}
		out, err := one(ctx, d)
		if err != nil && len(out.Results) == 0 {
			return nil, err
		}
		return out, err
	}
	params := map[string]any{"query": opts.Query, "devices": opts.Devices, "concurrency": concurrency, "acs": c.URL()}
	jobID, err := runner.Submit(ctx, server.JobKindFleetDiagnose, "local", ids, params, run)
	if err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "fleet diagnosis of %d devices through GenieACS at %s (job %s, %d at once)\n", len(ids), c.URL(), jobID, concurrency)
	events, unsubscribe, err := runner.Subscribe(ctx, jobID)
	if err != nil {
		return err
	}
	for ev := range events {
		if ev.Type == jobs.EventDeviceFinished {
			line := fmt.Sprintf("[%d/%d] %s %s", ev.Done, ev.Total, ev.DeviceID, ev.State)
			if ev.Error != "" {
				line += ": " + ev.Error
			} else if s := outcomeStatus(ev.Result); s != "" {
				line += " (" + s + ")"
			}
			fmt.Fprintln(f.IO.ErrOut, line)
		}
		if ev.Type == jobs.EventJobFinished {
			break
		}
	}
	unsubscribe()
	// An interrupt (ctx) cancels the job; its finished results stay.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = runner.Shutdown(sctx)
	j, err := st.Job(sctx, jobID)
	if err != nil {
		return err
	}
	rs, err := st.JobResults(sctx, jobID)
	if err != nil {
		return err
	}
	return printJob(f, server.JobViewOf(j, rs))
}
