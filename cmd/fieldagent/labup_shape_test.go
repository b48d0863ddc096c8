package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fieldagent/tr069/acs"
)

// lab up --shape sets the option; without it a loopback lab is unshaped.
func TestLabUpShapeFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"lab", "up", "--shape"}, true},
		{[]string{"lab", "up"}, false},
	} {
		f, _, _, _ := newTestFactory(t)
		var got *labUpOptions
		root := newRootCmd(f)
		lab := findSub(root.Commands(), "lab")
		lab.RemoveCommand(findSub(lab.Commands(), "up"))
		lab.AddCommand(newLabUpCmd(f, func(_ context.Context, o *labUpOptions) error { got = o; return nil }))
		root.SetArgs(tc.args)
		if err := root.ExecuteContext(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got.Shape != tc.want {
			t.Errorf("%v: Shape %t, want %t", tc.args, got.Shape, tc.want)
		}
	}
	f, out, _, _ := newTestFactory(t)
	if err := execute(t, f, "lab", "up", "--help"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "--shape") || !strings.Contains(out.String(), "--netns shapes with tc tbf instead") {
		t.Errorf("lab up --help does not explain --shape and --netns:\n%s", out)
	}
}

// lab up --shape puts the speed server behind the gateway's WAN: a
// factory-fresh gateway (default scenario) leaves it unreachable, an
// installed one (move) brings it up, and the output says it is shaped.
func TestLabUpShape(t *testing.T) {
	a := acs.New(acs.Config{})
	srv := httptest.NewServer(a)
	defer srv.Close()
	get := func(u string) error {
		c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(u + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	fx := startLabUp(t, "--shape", "--acs-url", srv.URL+"/", "--name", "shapefac")
	if !fx.res.SpeedShaped || !strings.Contains(fx.out.String(), "behind the gateway's WAN") {
		t.Errorf("lab up --shape does not say the speed server is shaped (%+v):\n%s", fx.res, fx.out)
	}
	time.Sleep(150 * time.Millisecond) // a few WAN polls
	if fx.site.WANUp() {
		t.Error("WANUp with a factory-fresh gateway")
	}
	if err := get(fx.res.SpeedURL); err == nil {
		t.Errorf("the speed server %s answers behind a factory-fresh gateway", fx.res.SpeedURL)
	}

	mv := startLabUp(t, "move", "--shape", "--acs-url", srv.URL+"/", "--name", "shapemv")
	deadline := time.Now().Add(10 * time.Second)
	for !mv.site.WANUp() {
		if time.Now().After(deadline) {
			t.Fatal("the installed gateway's WAN did not bring the speed server up in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := get(mv.res.SpeedURL); err != nil {
		t.Errorf("the speed server behind an installed gateway: %v", err)
	}

	plain := startLabUp(t, "--acs-url", srv.URL+"/", "--name", "plain")
	if plain.res.SpeedShaped || strings.Contains(plain.out.String(), "behind the gateway's WAN") {
		t.Errorf("lab up without --shape says the speed server is shaped:\n%s", plain.out)
	}
	if err := get(plain.res.SpeedURL); err != nil {
		t.Errorf("the speed server without --shape: %v", err)
	}
}
