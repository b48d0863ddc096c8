//go:build !unix

package main

import (
	"fmt"
	"io/fs"
)

// checkPrivateDir refuses a lab state directory that is not a directory;
// ownership is the platform's (per-user temp directory) to enforce.
func checkPrivateDir(dir string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("lab state directory %s is not a directory: remove it", dir)
	}
	return nil
}
