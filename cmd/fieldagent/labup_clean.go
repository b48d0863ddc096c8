package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"fieldagent/testlab/scenario"
)

type labCleanOptions struct {
	f *Factory
}

func newLabCleanCmd(f *Factory, runF func(context.Context, *labCleanOptions) error) *cobra.Command {
	opts := &labCleanOptions{f: f}
	return &cobra.Command{
		Use:   "clean",
		Short: "Remove what labs that are no longer running left behind",
		Long: `lab clean removes the directories (state file, config, store) of labs
that died without cleaning up — killed, or their machine suspended — and
the network namespaces of such a lab's site. Running labs are left alone.`,
		Example: `  fieldagent lab clean
  fieldagent lab clean --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLabClean(cmd.Context(), opts)
		},
	}
}

// labCleanResult is lab clean's JSON document.
type labCleanResult struct {
	Removed []string `json:"removed"`
	Running []string `json:"running"`
	Netns   []string `json:"netns_removed"`
}

func runLabClean(ctx context.Context, opts *labCleanOptions) error {
	f := opts.f
	res := labCleanResult{Removed: []string{}, Running: []string{}, Netns: []string{}}
	rt, err := labRuntimeDir(f.Env, false)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var errs []error
	if err == nil {
		ents, err := os.ReadDir(filepath.Join(rt, "labs"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, e := range ents {
			name := e.Name()
			if st, _, err := readLabState(f.Env, name); err == nil && labAlive(ctx, st) {
				res.Running = append(res.Running, name)
				continue
			}
			if err := os.RemoveAll(labDir(rt, name)); err != nil {
				errs = append(errs, err)
				continue
			}
			res.Removed = append(res.Removed, name)
			if labNameRE.MatchString(name) {
				ns, err := cleanNetns(ctx, name)
				res.Netns = append(res.Netns, ns...)
				if err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if f.jsonOutput() {
		if err := f.writeJSON(res); err != nil {
			return err
		}
	} else {
		if len(res.Removed) == 0 {
			fmt.Fprintln(f.IO.Out, "nothing to clean")
		}
		for _, n := range res.Removed {
			fmt.Fprintf(f.IO.Out, "removed the stale lab %q\n", n)
		}
		for _, n := range res.Netns {
			fmt.Fprintf(f.IO.Out, "removed network namespace %s\n", n)
		}
		for _, n := range res.Running {
			fmt.Fprintf(f.IO.Out, "left the running lab %q alone\n", n)
		}
	}
	return errors.Join(errs...)
}

type labScenariosOptions struct{ f *Factory }

func newLabScenariosCmd(f *Factory) *cobra.Command {
	opts := &labScenariosOptions{f: f}
	return &cobra.Command{
		Use:     "scenarios",
		Short:   "List the built-in scenarios of lab up",
		Example: "  fieldagent lab scenarios\n  fieldagent lab scenarios --output json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return runLabScenarios(opts)
		},
	}
}

func runLabScenarios(opts *labScenariosOptions) error {
	f := opts.f
	type entry struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Devices     string `json:"devices"`
		Order       string `json:"order"`
	}
	var list []entry
	for _, n := range scenario.Names() {
		s, err := scenario.Builtin(n)
		if err != nil {
			return err
		}
		var kinds []string
		for _, k := range s.Devices {
			kinds = append(kinds, string(k))
		}
		list = append(list, entry{Name: n, Description: s.Description, Devices: strings.Join(kinds, "+"), Order: s.Order})
	}
	if f.jsonOutput() {
		return f.writeJSON(list)
	}
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDEVICES\tORDER\tDESCRIPTION")
	for _, e := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, e.Devices, e.Order, e.Description)
	}
	return tw.Flush()
}
