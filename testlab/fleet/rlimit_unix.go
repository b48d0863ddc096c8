//go:build unix

package fleet

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit raises the soft RLIMIT_NOFILE to need (a gateway needs
// about 3 file descriptors) if the hard limit allows; it returns an error
// saying what to raise if it does not.
func RaiseFileLimit(need uint64) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if rl.Cur >= need {
		return nil
	}
	rl.Cur = min(need, rl.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE to %d: %w", rl.Cur, err)
	}
	if rl.Cur < need {
		return fmt.Errorf("RLIMIT_NOFILE hard limit %d is below the %d file descriptors needed: raise ulimit -Hn", rl.Max, need)
	}
	return nil
}
