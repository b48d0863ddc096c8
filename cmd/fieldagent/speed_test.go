package main

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// speed serve answers the TR-143 file and sink a gateway uses, and stops
// when its context ends.
func TestSpeedServe(t *testing.T) {
	f, _, errOut, _ := newTestFactory(t)
	ready := make(chan string, 1)
	root := newRootCmd(f)
	sp := findSub(root.Commands(), "speed")
	sp.RemoveCommand(findSub(sp.Commands(), "serve"))
	sp.AddCommand(newSpeedServeCmd(f, func(ctx context.Context, o *speedServeOptions) error {
		o.ready = func(a string) { ready <- a }
		return runSpeedServe(ctx, o)
	}))
	root.SetArgs([]string{"speed", "serve", "--listen", "127.0.0.1:0", "--max-file-bytes", "1000000"})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- root.ExecuteContext(ctx) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-served:
		t.Fatalf("speed serve stopped: %v\n%s", err, errOut)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/file/123456")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || n != 123456 {
		t.Errorf("GET /file/123456: %s, %d bytes", resp.Status, n)
	}
	resp, err = c.Get("http://" + addr + "/file/2000000")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a file over --max-file-bytes: %s, want 400", resp.Status)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("speed serve ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("speed serve did not stop")
	}
}
