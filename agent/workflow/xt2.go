package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fieldagent/diagnostics"
	"fieldagent/drivers"
	"fieldagent/drivers/xt2"
)

// RoleXT2 is the order-device role of an XT-2 (recorded by its address).
const RoleXT2 = "xt2"

// connectXT2 opens SSH and SNMP to the customer's XT-2.
func (ru *run) connectXT2(ctx context.Context) (string, error) {
	if _, err := ru.xt2(ctx); err != nil {
		return "", err
	}
	if ru.XT2Address != "" {
		// The customer's account then finds the router (serve's search).
		if err := ru.remember(ctx, RoleXT2, ru.XT2Address); err != nil {
			return "", err
		}
	}
	return "SSH CLI and SNMP open", nil
}

// xt2 returns the XT-2 driver, connecting on first use.
func (ru *run) xt2(ctx context.Context) (*xt2.Driver, error) {
	if ru.xt != nil {
		return ru.xt, nil
	}
	if ru.OpenXT2 == nil {
		return nil, errors.New("no XT-2 connection configured: set xt2.address (SSH), xt2.username, xt2.password and xt2.snmp in the config")
	}
	d, err := ru.OpenXT2(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to the XT-2: %w", err)
	}
	ru.xt = d
	return d, nil
}

// lineTestXT2 reads the WAN port and the PPPoE client, and keeps the
// link speed as a reading.
func (ru *run) lineTestXT2(ctx context.Context) (string, error) {
	xt, err := ru.xt2(ctx)
	if err != nil {
		return "", err
	}
	lt, err := xt.LineTest(ctx)
	if err != nil {
		return "", err
	}
	up := 0.0
	if lt.WANUp {
		up = 1
	}
	now := ru.now()
	rs := []diagnostics.Reading{
		{Name: "wan_link_up", Value: up, Unit: "bool", Time: now},
		{Name: "wan_link_speed_mbps", Value: float64(lt.SpeedMbps), Unit: "Mbit/s", Time: now},
	}
	if err := ru.record(ctx, StepLineTest, rs); err != nil {
		return "", err
	}
	if !lt.WANUp {
		return "", fmt.Errorf("the WAN port is %s: check the cable from the operator's line to GE0/0/0", lt.WANState)
	}
	return fmt.Sprintf("WAN port %s %d Mbit/s %s", lt.WANState, lt.SpeedMbps, lt.Duplex), nil
}

// bindBBMS binds the router to the customer in BBMS.
func (ru *run) bindBBMS(ctx context.Context) (string, error) {
	if ru.ord.BBMSCustomerID == "" {
		return "", errors.New("the order has no BBMS customer id (bbms_customer_id): ask dispatch for it")
	}
	xt, err := ru.xt2(ctx)
	if err != nil {
		return "", err
	}
	b, undo, err := xt.BindBBMS(ctx, ru.ord.BBMSCustomerID)
	if err != nil {
		return "", err
	}
	if undo != nil {
		ru.undo = append(ru.undo, namedUndo{"BBMS binding", undo})
	}
	return fmt.Sprintf("bound to BBMS customer %s (serial %s)", b.Customer, b.Serial), nil
}

// saveXT2 saves the running configuration, so that it survives a reboot.
func (ru *run) saveXT2(ctx context.Context) (string, error) {
	xt, err := ru.xt2(ctx)
	if err != nil {
		return "", err
	}
	if err := xt.Save(ctx); err != nil {
		return "", err
	}
	return "configuration saved", nil
}

// waitXT2WAN polls the router's PPPoE session until it is up.
func waitXT2WAN(ctx context.Context, xt *xt2.Driver, every time.Duration) (drivers.WANStatus, error) {
	if every <= 0 {
		every = time.Second
	}
	for {
		st, err := xt.WANStatus(ctx)
		if err == nil && st.Up() {
			return st, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("%w: PPPoE %s, last error %q", drivers.ErrTimeout, st.Status, st.LastError)
			}
			return st, err
		case <-time.After(every):
		}
	}
}
