package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"fieldagent/agent/remote"
	"fieldagent/agent/server"
)

type fleetOptions struct {
	f            *Factory
	Devices      []string
	SerialPrefix string
	Query        string
	Concurrency  int
	Detach       bool
	KeepTasks    bool
}

func newFleetCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Many devices at once: a diagnosis over a selection of gateways (remote support)",
		Example: `  fieldagent --server https://support.example:7550 fleet diagnose --serial-prefix ZTEG --concurrency 20
  fieldagent --server https://support.example:7550 fleet diagnose 00D0D0-F650-ZTEG1A2B3C4D 00D0D0-F650-ZTEG5E6F7A8B`,
	}
	cmd.AddCommand(newFleetDiagnoseCmd(f, nil))
	return cmd
}

func newFleetDiagnoseCmd(f *Factory, runF func(context.Context, *fleetOptions) error) *cobra.Command {
	opts := &fleetOptions{f: f}
	cmd := &cobra.Command{
		Use:   "diagnose [DEVICE...]",
		Short: "Diagnose a selection of gateways with bounded concurrency; results stream as they come",
		Long: `fleet diagnose runs diag run on every selected gateway, at most
--concurrency at once, through the remote serve daemon (--server): the job
and each device's result are stored there, so a dropped connection loses
nothing ('fieldagent job watch ID' follows it again). Each device's end
prints on stderr as it comes; the summary table (or --output json, the job
with every result) follows at the end.

Over the operator's GenieACS (acs.kind: genieacs, acs.nbi_url) it runs
here instead: the devices a --query selects are diagnosed through GenieACS's
NBI, the job and results kept in the local store. Offline or faulted devices
are recorded as failed and the run goes on; no task is left queued on
GenieACS for them.

Select devices by ID or serial number as arguments, --serial-prefix (serve),
or --query (GenieACS).

Exit status: 0 every device diagnosed and no check failed, 1 a device
failed or a check failed, 2 usage, 3 the server is unreachable.`,
		Example: `  fieldagent --server https://support.example:7550 fleet diagnose --serial-prefix ZTEG --concurrency 20
  fieldagent --server https://support.example:7550 fleet diagnose ZTEG1A2B3C4D ZTEG5E6F7A8B --output json
  fieldagent --server https://support.example:7550 fleet diagnose --serial-prefix ZTEG --detach
  # through the operator's GenieACS (acs.kind: genieacs)
  fieldagent fleet diagnose --query '{"_deviceId._ProductClass":"F650","_tags":{"$ne":"vip"}}' --concurrency 50`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Devices = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runFleetDiagnose(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.SerialPrefix, "serial-prefix", "", "every device whose serial number starts with this")
	fl.IntVar(&opts.Concurrency, "concurrency", 0, "devices diagnosed at once (default: the server's serve.concurrency)")
	fl.StringVar(&opts.Query, "query", "", "a GenieACS (MongoDB-style) query selecting the devices (acs.kind: genieacs here, or on the --server), e.g. '{\"_deviceId._ProductClass\":\"F650\"}'")
	fl.BoolVar(&opts.KeepTasks, "keep-tasks", false, "over GenieACS: leave the tasks of offline devices queued, to run at their next Inform (default: delete them)")
	fl.BoolVar(&opts.Detach, "detach", false, "print the job ID and return; follow it later with 'job watch ID'")
	return cmd
}

func runFleetDiagnose(ctx context.Context, opts *fleetOptions) error {
	f := opts.f
	selections := 0
	for _, given := range []bool{len(opts.Devices) > 0, opts.SerialPrefix != "", opts.Query != ""} {
		if given {
			selections++
		}
	}
	if selections != 1 {
		return &usageError{errors.New("select the devices one way: as arguments, --serial-prefix (serve), or --query (GenieACS)")}
	}
	if opts.Concurrency < 0 {
		return &usageError{fmt.Errorf("--concurrency %d: give a positive number", opts.Concurrency)}
	}
	c, err := remoteClient(f)
	if err != nil {
		return err
	}
	if c == nil {
		if usesGenieACS(f) {
			return runNBIFleet(ctx, opts)
		}
		return &usageError{errors.New("fleet diagnose runs on a serve daemon (--server URL) or through GenieACS (acs.kind: genieacs with acs.nbi_url)")}
	}
	if opts.KeepTasks {
		return &usageError{errors.New("--keep-tasks is for a fleet run here over GenieACS; serve deletes the tasks its jobs leave")}
	}
	if opts.Query != "" && !json.Valid([]byte(opts.Query)) {
		return &usageError{fmt.Errorf("--query %q is not JSON: give a GenieACS (MongoDB-style) query", opts.Query)}
	}
	acc, err := c.FleetDiagnose(ctx, remote.FleetRequest{Devices: opts.Devices, SerialPrefix: opts.SerialPrefix, Concurrency: opts.Concurrency, Query: opts.Query})
	if err != nil {
		return remoteErr(err)
	}
	if opts.Detach {
		if f.jsonOutput() {
			return f.writeJSON(acc)
		}
		fmt.Fprintln(f.IO.Out, acc.JobID)
		return nil
	}
	fmt.Fprintf(f.IO.ErrOut, "fleet diagnosis of %d devices on %s (job %s)\n", len(acc.Devices), c.Server(), acc.JobID)
	job, err := followJob(ctx, f, c, acc.JobID)
	if err != nil {
		return remoteErr(err)
	}
	return printJob(f, job)
}

// printJob prints a job's results (or the job as JSON) and returns the
// exit status it deserves: 1 if a device failed or a check failed.
func printJob(f *Factory, job server.JobView) error {
	if f.jsonOutput() {
		if err := f.writeJSON(job); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "Job\t%s (%s, by %s)\nState\t%s: %d of %d devices, %d failed\n\n", job.ID, job.Kind, job.CreatedBy, job.State, job.Done, job.Total, job.Failed)
		fmt.Fprintln(tw, "DEVICE\tSTATE\tVERDICT\tFINDINGS")
		for _, r := range job.Results {
			codes, status := findingCodes(r.Result)
			detail := strings.Join(codes, ", ")
			if r.Error != "" {
				detail = strings.TrimSpace(detail + " " + r.Error)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.DeviceID, r.State, dash(status), dash(detail))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	failed := job.Failed > 0 || (job.State != "done" && job.FinishedAt != nil)
	for _, r := range job.Results {
		if _, st := findingCodes(r.Result); st == "fail" {
			failed = true
		}
	}
	if failed {
		return &silentError{err: fmt.Errorf("job %s: a device failed or a check failed", job.ID), code: exitCheckFailed}
	}
	return nil
}

// findingCodes are a stored diagnosis's finding codes and its verdict.
func findingCodes(raw json.RawMessage) ([]string, string) {
	if len(raw) == 0 {
		return nil, ""
	}
	var out struct {
		Report struct {
			Status   string `json:"status"`
			Findings []struct {
				Code string `json:"code"`
			} `json:"findings"`
		} `json:"report"`
	}
	if json.Unmarshal(raw, &out) != nil {
		return nil, ""
	}
	codes := make([]string, 0, len(out.Report.Findings))
	for _, fd := range out.Report.Findings {
		codes = append(codes, fd.Code)
	}
	return codes, out.Report.Status
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newJobCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Jobs of a remote serve daemon: show one, or follow it until it ends",
		Example: `  fieldagent --server https://support.example:7550 job show job-4f1c…
  fieldagent --server https://support.example:7550 job watch job-4f1c…`,
	}
	for _, use := range []string{"show", "watch"} {
		cmd.AddCommand(&cobra.Command{
			Use:     use + " ID",
			Short:   map[string]string{"show": "Show a job and its stored results", "watch": "Follow a job's progress until it ends, then show it"}[use],
			Example: "  fieldagent --server https://support.example:7550 job " + use + " job-4f1c…",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := needRemote(f, "jobs live on a serve daemon")
				if err != nil {
					return err
				}
				var job server.JobView
				if use == "watch" {
					job, err = followJob(cmd.Context(), f, c, args[0])
				} else {
					job, err = c.Job(cmd.Context(), args[0])
				}
				if err != nil {
					return remoteErr(err)
				}
				return printJob(f, job)
			},
		})
	}
	var state, kind string
	var limit int
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the server's jobs, newest first",
		Example: "  fieldagent --server https://support.example:7550 job list --state running",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := needRemote(f, "jobs live on a serve daemon")
			if err != nil {
				return err
			}
			l, err := c.Jobs(cmd.Context(), jobListQuery(state, kind, limit))
			if err != nil {
				return remoteErr(err)
			}
			if f.jsonOutput() {
				return f.writeJSON(l)
			}
			tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB	KIND	BY	STATE	DONE	FAILED	CREATED")
			for _, j := range l.Jobs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%d\t%s\n", j.ID, j.Kind, dash(j.CreatedBy), j.State, j.Done, j.Total, j.Failed, fmtTime(j.CreatedAt))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&state, "state", "", "only jobs in this state: queued, running, done, failed, cancelled, interrupted")
	list.Flags().StringVar(&kind, "kind", "", "only jobs of this kind: diagnose, fleet_diagnose")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (server default 50)")
	cancelCmd := &cobra.Command{
		Use:     "cancel ID",
		Short:   "Cancel a running job: unfinished devices are recorded cancelled, finished results kept",
		Example: "  fieldagent --server https://support.example:7550 job cancel job-4f1c…",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := needRemote(f, "jobs live on a serve daemon")
			if err != nil {
				return err
			}
			if err := c.CancelJob(cmd.Context(), args[0]); err != nil {
				return remoteErr(err)
			}
			return done(f, map[string]any{"job": args[0], "cancelled": true}, "cancelling "+args[0]+"; 'job show "+args[0]+"' shows what finished")
		},
	}
	cmd.AddCommand(list, cancelCmd)
	return cmd
}
