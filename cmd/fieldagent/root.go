package main

import (
	"github.com/spf13/cobra"

	"fieldagent/agent/config"
)

func newRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "fieldagent",
		Short: "Provision and diagnose customer premises equipment (e8, iTV, XT-2)",
		Long: `fieldagent takes a work order from the order system to completion (报竣):
it finds and identifies the device, configures internet, IPTV and the
customer's binding (LOID with ITMS, BBMS for XT-2), runs line, connectivity
and speed tests, and uploads the results — keeping everything in a local
store so that nothing is lost without signal.

Configuration comes from a YAML file (--config), then FIELDAGENT_*
environment variables, then flags. Exit codes: 0 ok, 1 a check or step
failed, 2 usage or configuration error, 3 a device or service unreachable.`,
		Example: `  # Run the lab demo: a simulated site and one e8 order, end to end
  fieldagent lab demo

  # Run a work order against a real gateway
  fieldagent order run WO-20261125-0001

  # Scripts: one JSON document instead of a table
  fieldagent lab demo --output json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return f.load(func(name string) bool {
				fl := cmd.Flags().Lookup(name)
				return fl != nil && fl.Changed
			})
		},
	}
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	pf := root.PersistentFlags()
	pf.StringVar(&f.global.ConfigPath, "config", config.DefaultPath(), "configuration file (YAML); env FIELDAGENT_CONFIG")
	pf.StringVar(&f.global.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&f.global.LogFormat, "log-format", "text", "log format on stderr: text or json")
	pf.StringVarP(&f.global.Output, "output", "o", "table", "result format: table or json")
	pf.StringVar(&f.global.Server, "server", "", "the `URL` of a remote fieldagent serve API for the device, diag, fleet and job commands; env FIELDAGENT_REMOTE_SERVER, token in FIELDAGENT_REMOTE_TOKEN")
	_ = root.RegisterFlagCompletionFunc("log-level", fixedCompletions("debug", "info", "warn", "error"))
	_ = root.RegisterFlagCompletionFunc("log-format", fixedCompletions("text", "json"))
	_ = root.RegisterFlagCompletionFunc("output", fixedCompletions("table", "json"))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })

	root.AddCommand(
		newVersionCmd(f, nil),
		newOrderCmd(f),
		newDeviceCmd(f),
		newDiagCmd(f),
		newLabCmd(f),
		newUploadCmd(f, nil),
		newACSCmd(f),
		newSpeedCmd(f),
		newServeCmd(f, nil),
		newFleetCmd(f),
		newJobCmd(f),
	)
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Example = `  # bash, for this shell
  source <(fieldagent completion bash)
  # zsh, permanently
  fieldagent completion zsh > "${fpath[1]}/_fieldagent"
  # fish
  fieldagent completion fish | source`
			for _, sub := range c.Commands() {
				sub.Example = "  fieldagent completion " + sub.Name() + " --help"
			}
		}
	}
	return root
}

func fixedCompletions(vals ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return vals, cobra.ShellCompDirectiveNoFileComp
	}
}
