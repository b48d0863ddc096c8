package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"fieldagent/testlab"
)

type labFaultOptions struct {
	f    *Factory
	Op   string // list, inject, clear
	ID   string
	Name string
	Lang string
}

func newLabFaultCmd(f *Factory, runF func(context.Context, *labFaultOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "List, inject and clear catalogued faults on a running lab",
		Long: `lab fault changes the site that 'fieldagent lab up' runs, through its
control API (URL and token in the lab's state file): list the fault
catalogue with what is active, inject a fault, clear it. Exit codes: 2 for
a fault the catalogue does not hold or the lab's devices cannot carry, 3
when no lab runs.`,
		Example: `  fieldagent lab fault list
  fieldagent lab fault inject pppoe_wrong_password
  fieldagent lab fault clear pppoe_wrong_password --name xt2lab`,
	}
	mk := func(use, short, example string, args cobra.PositionalArgs) *cobra.Command {
		opts := &labFaultOptions{f: f, Op: strings.Fields(use)[0]}
		c := &cobra.Command{
			Use: use, Short: short, Example: example, Args: args,
			RunE: func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					opts.ID = args[0]
				}
				if runF != nil {
					return runF(cmd.Context(), opts)
				}
				return runLabFault(cmd.Context(), opts)
			},
		}
		c.Flags().StringVar(&opts.Name, "name", defaultLabName, "the lab instance (lab up --name)")
		if opts.Op == "list" {
			c.Flags().StringVar(&opts.Lang, "lang", "en", "title language: en or zh")
		}
		return c
	}
	cmd.AddCommand(
		mk("list", "List the fault catalogue, with what is active on the lab",
			"  fieldagent lab fault list\n  fieldagent lab fault list --lang zh\n  fieldagent lab fault list --output json", cobra.NoArgs),
		mk("inject ID", "Inject a catalogued fault on the running lab",
			"  fieldagent lab fault inject pppoe_wrong_password\n  fieldagent lab fault inject pppoe_wrong_password --output json", cobra.ExactArgs(1)),
		mk("clear ID", "Clear an injected fault",
			"  fieldagent lab fault clear pppoe_wrong_password", cobra.ExactArgs(1)),
	)
	return cmd
}

// labClientFor finds the running lab name: exit 3 when there is none.
func labClientFor(ctx context.Context, f *Factory, name string) (*labClient, error) {
	if err := checkLabName(name); err != nil {
		return nil, err
	}
	st, p, err := readLabState(f.Env, name)
	if err != nil {
		if errors.Is(err, errNoLab) {
			return nil, &codedError{err: err, code: exitUnreachable}
		}
		return nil, err
	}
	c := &labClient{BaseURL: st.ControlURL, Token: st.Token}
	if !labAlive(ctx, st) {
		return nil, &codedError{err: fmt.Errorf("%w named %q: its state file %s is stale (pid %d; fieldagent lab clean removes it): start one with fieldagent lab up", errNoLab, name, p, st.PID), code: exitUnreachable}
	}
	return c, nil
}

// labFaultErr gives a control API error its exit code.
func labFaultErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errLabUnknownFault), errors.Is(err, errLabNotApplic), errors.Is(err, errLabUnauthorized):
		return &usageError{err}
	case errors.Is(err, errLabUnreachable):
		return &codedError{err: fmt.Errorf("%w: start one with fieldagent lab up", err), code: exitUnreachable}
	}
	return err
}

func runLabFault(ctx context.Context, opts *labFaultOptions) error {
	f := opts.f
	if opts.Op == "list" && opts.Lang != "en" && opts.Lang != "zh" {
		return &usageError{fmt.Errorf("--lang %q: want en or zh", opts.Lang)}
	}
	if opts.Op != "list" {
		// Checked here too, so that a typo says so even with no lab.
		known := false
		for _, flt := range testlab.Faults() {
			known = known || flt.ID == opts.ID
		}
		if !known {
			return &usageError{fmt.Errorf("%w: no fault %q in the catalogue (fieldagent lab fault list shows them)", errLabUnknownFault, opts.ID)}
		}
	}
	c, err := labClientFor(ctx, f, opts.Name)
	if err != nil {
		return err
	}
	switch opts.Op {
	case "list":
		l, err := c.List(ctx)
		if err != nil {
			return labFaultErr(err)
		}
		if f.jsonOutput() {
			return f.writeJSON(l)
		}
		if len(l.Faults) == 0 {
			fmt.Fprintln(f.IO.Out, "the fault catalogue is empty")
			return nil
		}
		tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tDEVICE\tFINDING\tACTIVE\tTITLE")
		for _, flt := range l.Faults {
			active := "-"
			switch {
			case flt.Active:
				active = "yes"
			case !flt.Applicable:
				active = "n/a"
			}
			title := flt.Title
			if opts.Lang == "zh" && flt.TitleZH != "" {
				title = flt.TitleZH
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", flt.ID, flt.Device, flt.Finding, active, title)
		}
		return tw.Flush()
	case "inject", "clear":
		var ch labFaultChange
		if opts.Op == "inject" {
			ch, err = c.Inject(ctx, opts.ID)
		} else {
			ch, err = c.Clear(ctx, opts.ID)
		}
		if err != nil {
			return labFaultErr(err)
		}
		if f.jsonOutput() {
			return f.writeJSON(ch)
		}
		flt := ch.Fault
		switch {
		case opts.Op == "inject" && ch.Changed:
			fmt.Fprintf(f.IO.Out, "injected %s on the %s: %s\n  where: %s\n  diagnosis should report: %s\n", flt.ID, flt.Device, flt.Title, flt.Where, flt.Finding)
		case opts.Op == "inject":
			fmt.Fprintf(f.IO.Out, "%s was already active: nothing changed\n", flt.ID)
		case ch.Changed:
			fmt.Fprintf(f.IO.Out, "cleared %s on the %s: %s\n", flt.ID, flt.Device, flt.Title)
		default:
			fmt.Fprintf(f.IO.Out, "%s was not active: nothing changed\n", flt.ID)
		}
		active := strings.Join(ch.Active, ", ")
		if active == "" {
			active = "none"
		}
		fmt.Fprintf(f.IO.Out, "active faults: %s\n", active)
		return nil
	}
	return &usageError{fmt.Errorf("lab fault %s: unknown operation", opts.Op)}
}
