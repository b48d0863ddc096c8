package main

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"

	"fieldagent/agent/config"
	"fieldagent/agent/ordersys"
)

// Exit codes, the same for every command.
const (
	exitOK          = 0 // everything passed
	exitCheckFailed = 1 // a check or a step failed
	exitUsage       = 2 // bad flags, arguments or configuration
	exitUnreachable = 3 // a device or a service could not be reached
)

// usageError marks an error in the command line or configuration.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// silentError carries an exit code for a failure the command already
// reported on its output (e.g. a failed step shown in the run's table).
type silentError struct {
	err  error
	code int
}

func (e *silentError) Error() string { return e.err.Error() }
func (e *silentError) Unwrap() error { return e.err }

// codedError is a failure printed like any other but with its own exit
// code (e.g. exitUnreachable for a device that never answered).
type codedError struct {
	err  error
	code int
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var se *silentError
	if errors.As(err, &se) && se.code != 0 {
		return se.code
	}
	var ce *codedError
	if errors.As(err, &ce) && ce.code != 0 {
		return ce.code
	}
	var ue *usageError
	if errors.As(err, &ue) || errors.Is(err, config.ErrInvalid) || isCobraUsage(err) {
		return exitUsage
	}
	if unreachable(err) {
		return exitUnreachable
	}
	return exitCheckFailed
}

func unreachable(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.Is(err, ordersys.ErrUnreachable) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &oe) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// isCobraUsage recognises cobra's own argument and flag errors, which it
// returns as plain errors.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires exactly", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}
