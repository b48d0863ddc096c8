//go:build !linux

package netsite

import (
	"fmt"
	"runtime"
)

// platformAvailable fails: network namespaces are linux only.
func platformAvailable() error {
	return fmt.Errorf("%w: network namespaces are linux only, not %s", ErrUnavailable, runtime.GOOS)
}

func inNetns(name string, fn func() error) error { return platformAvailable() }
