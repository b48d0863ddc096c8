// Command fieldagent provisions and diagnoses customer premises equipment —
// e8 home gateways and iTV set-top boxes over TR-069, XT-2 business routers
// over SSH and SNMP — for field technicians and remote support.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"
)

// Stamped at build time with -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	f := &Factory{
		IO: &IOStreams{
			In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
			ErrIsTerminal: term.IsTerminal(int(os.Stderr.Fd())),
		},
		Env:   os.Environ(),
		Now:   time.Now,
		Build: BuildInfo{Version: version, Commit: commit, Date: date},
	}
	root := newRootCmd(f)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		var silent *silentError
		if !errors.As(err, &silent) {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
	}
	os.Exit(exitCode(err))
}
