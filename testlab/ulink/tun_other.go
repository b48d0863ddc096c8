//go:build !linux

package ulink

import (
	"fmt"
	"runtime"
)

// Available returns nil when this process can create TUN devices and
// network namespaces. Off linux it always fails with ErrUnsupported.
func Available() error {
	return fmt.Errorf("%w: TUN links are linux only, not %s", ErrUnsupported, runtime.GOOS)
}

func openTUN(netns Netns, name string) (device, error) { return nil, Available() }
