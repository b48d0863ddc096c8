//go:build unix

package main

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkPrivateDir refuses a lab state directory that is a symlink, that
// another user owns or that others may enter.
func checkPrivateDir(dir string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("lab state directory %s is not a directory (a symlink?): remove it", dir)
	case ok && int(st.Uid) != os.Getuid():
		return fmt.Errorf("lab state directory %s belongs to uid %d, not to you (%d): remove it or set XDG_RUNTIME_DIR", dir, st.Uid, os.Getuid())
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("lab state directory %s has mode %v: others may enter it; chmod 700 it", dir, fi.Mode().Perm())
	}
	return nil
}
