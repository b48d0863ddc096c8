package acs_test

import (
	"io"
	"log/slog"
	"os"
	"sync"
)

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// newLogger logs everything as text to w, guarded by mu.
func newLogger(w io.Writer, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{mu: mu, w: w}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
