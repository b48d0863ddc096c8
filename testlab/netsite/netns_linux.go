package netsite

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// platformAvailable returns nil: namespaces are a linux feature.
func platformAvailable() error { return nil }

// inNetns runs fn on a goroutine locked to an OS thread that has joined the
// namespace bound at /run/netns/name. Afterwards the thread rejoins the
// namespace it came from and is unlocked; if it cannot, it stays locked and
// the runtime discards it when the goroutine ends, so no other goroutine
// ever runs in the wrong namespace.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open this thread's network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := setns(filepath.Join(netnsDir, name)); err != nil {
			runtime.UnlockOSThread() // a failed setns leaves the thread where it was
			errc <- err
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", name, err))
			return // locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// setns makes the calling thread join the network namespace at path.
func setns(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("join namespace %s: %w", path, err)
	}
	return nil
}
