package testlab

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"fieldagent/testlab/relay"
)

// A loopback site with Config.Shape stands the gateway's WAN path up in
// userspace: the speed server listens on 127.0.0.1 as before, and SpeedURL
// is a relay (testlab/relay) in front of it, shaped to the e8 package and
// up exactly while the simulated gateway's INTERNET WAN is Connected
// (followWAN, as the gateway namespace's forwarding with Config.Net).

// checkShape checks the fields that go with Config.Shape.
func (c Config) checkShape() error {
	switch {
	case c.ShapeUpMbps < 0:
		return fmt.Errorf("testlab: %w: ShapeUpMbps %g must not be negative (0 is a tenth of the package)", ErrConfig, c.ShapeUpMbps)
	case c.Shape && c.Net == nil && c.NoGateway:
		return fmt.Errorf("testlab: %w: Shape follows the e8 gateway's WAN: unset NoGateway or Shape", ErrConfig)
	}
	return nil
}

// shapeRates are the WAN relay's rates in Mbit/s: the package down, and
// ShapeUpMbps or a tenth of the package up.
func (c Config) shapeRates() (down, up float64) {
	down = float64(c.bandwidth())
	up = c.ShapeUpMbps
	if up == 0 {
		up = down / 10
	}
	return down, up
}

// startShape puts a WAN relay, down until followWAN finds the gateway's
// WAN connected, in front of the speed server at speedURL and returns the
// relay's URL.
func (s *Site) startShape(ctx context.Context, cfg Config, speedURL string, log *slog.Logger) (string, error) {
	u, err := url.Parse(speedURL)
	if err != nil {
		return "", fmt.Errorf("testlab: speed server URL: %w", err)
	}
	down, up := cfg.shapeRates()
	r, err := relay.Start(ctx, relay.Options{Target: u.Host, DownMbps: down, UpMbps: up, Logger: log})
	if err != nil {
		return "", fmt.Errorf("testlab: start the WAN relay: %w", err)
	}
	r.SetUp(false) // nobody has its address yet
	s.relay = r
	return "http://" + r.Addr(), nil
}
