package ulink

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// tunPath is the TUN clone device.
const tunPath = "/dev/net/tun"

// netnsDir is where `ip netns add` binds named namespaces.
const netnsDir = "/run/netns"

// Available returns nil when this process can create TUN devices and
// network namespaces: it runs as root on linux, /dev/net/tun opens and the
// ip command is on PATH. Otherwise its error wraps ErrUnsupported and says
// what is missing, for a t.Skip message.
func Available() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, fmt.Sprintf("root (running as uid %d)", os.Geteuid()))
	} else if fd, err := unix.Open(tunPath, unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
		missing = append(missing, fmt.Sprintf("%s (%v)", tunPath, err))
	} else {
		unix.Close(fd)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing = append(missing, "the ip command (iproute2)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: TUN links need %s", ErrUnsupported, strings.Join(missing, ", "))
	}
	return nil
}

// openTUN creates TUN device name (IPv4/IPv6 packets without the packet
// information header) in namespace netns ("" for this process's) and
// returns it as a file on the runtime poller, so that Close interrupts a
// blocked Read. The device lives until the file is closed.
func openTUN(netns Netns, name string) (device, error) {
	var f *os.File
	err := inNetns(netns, func() error {
		fd, err := unix.Open(tunPath, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", tunPath, notPermitted(err))
		}
		ifr, err := unix.NewIfreq(name)
		if err == nil {
			ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("create TUN device %s: %w", name, notPermitted(err))
		}
		f = os.NewFile(uintptr(fd), tunPath)
		return nil
	})
	if err != nil && netns != "" {
		return nil, fmt.Errorf("namespace %s: %w", netns, err)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// inNetns runs fn on an OS thread that has joined the named network
// namespace netns, or directly when netns is "". The thread is never
// unlocked, so the runtime ends it when fn returns and no other goroutine
// ever runs in netns. Files fn opens stay in netns whichever thread uses them.
func inNetns(netns Netns, fn func() error) error {
	if netns == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			path := filepath.Join(netnsDir, string(netns))
			nsfd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open %s: %w", path, err)
			}
			defer unix.Close(nsfd)
			if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("join %s: %w", path, notPermitted(err))
			}
			return fn()
		}()
	}()
	return <-errc
}

// notPermitted marks EPERM and EACCES as ErrNotPermitted.
func notPermitted(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w: %w", ErrNotPermitted, err)
	}
	return err
}
