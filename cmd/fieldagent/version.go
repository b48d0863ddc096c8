package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

type versionOptions struct {
	f *Factory
}

// versionInfo is what `fieldagent version` prints.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func newVersionCmd(f *Factory, runF func(context.Context, *versionOptions) error) *cobra.Command {
	opts := &versionOptions{f: f}
	return &cobra.Command{
		Use:   "version",
		Short: "Print version, commit, build date, Go version and platform",
		Example: `  fieldagent version
  fieldagent version --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runVersion(cmd.Context(), opts)
		},
	}
}

func runVersion(_ context.Context, opts *versionOptions) error {
	f := opts.f
	v := versionInfo{
		Version: f.Build.Version, Commit: f.Build.Commit, BuildDate: f.Build.Date,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	if f.jsonOutput() {
		return f.writeJSON(v)
	}
	_, err := fmt.Fprintf(f.IO.Out, "fieldagent %s\ncommit:     %s\nbuilt:      %s\ngo:         %s\nplatform:   %s\n",
		v.Version, v.Commit, v.BuildDate, v.GoVersion, v.Platform)
	return err
}
