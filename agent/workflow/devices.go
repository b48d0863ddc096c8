package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fieldagent/agent/order"
	"fieldagent/agent/report"
	"fieldagent/drivers"
	"fieldagent/drivers/catalog"
	"fieldagent/drivers/e8"
	"fieldagent/drivers/itv"
	"fieldagent/tr069/acs"
)

// Device roles an order's visit records (store.SetOrderDevice), so that a
// resumed run works on the same boxes.
const (
	RoleGateway = "gateway"
	RoleSTB     = "stb"
)

// DefaultIPTVVLAN is the IPTV VLAN when neither the order nor the config
// gives one.
const DefaultIPTVVLAN = 85

func (ru *run) catalog() *drivers.Registry {
	return catalog.New(catalog.Options{ACS: ru.ACS, Logger: ru.Logger, PollInterval: ru.PollInterval})
}

// waitInform waits for the order's gateway to inform and records it.
func (ru *run) waitInform(ctx context.Context) (string, error) {
	reg := ru.catalog()
	serial := ru.Serial
	if serial == "" {
		serial = ru.service(order.DeviceE8).Serial // the box the order was issued with
	}
	d, err := ru.ACS.WaitDevice(ctx, func(d acs.Device) bool {
		if serial != "" {
			return d.DeviceId.SerialNumber == serial
		}
		// Any gateway, or a device no driver knows (to say so); not the
		// customer's set-top box informing on the same LAN.
		e, err := reg.Lookup(drivers.SeenFromInform(d))
		return err != nil || e.Kind == drivers.KindE8
	})
	if err != nil {
		what := "any gateway"
		if serial != "" {
			what = "gateway " + serial
		}
		return "", fmt.Errorf("no Inform from %s: check that the gateway is powered, its WAN/LAN cable to this laptop, and that its ACS URL points here: %w", what, err)
	}
	if err := ru.openGateway(ctx, d); err != nil {
		return "", err
	}
	if err := ru.remember(ctx, RoleGateway, d.ID); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s from %s", d.ID, d.RemoteAddr), nil
}

// remember records which device plays a role in the visit. The ACS's
// registry is flushed first (when it keeps one), so that a resumed run's
// ACS knows the device and can reach it by connection request.
func (ru *run) remember(ctx context.Context, role, deviceID string) error {
	if f, ok := ru.ACS.(interface{ Flush(context.Context) error }); ok {
		if err := f.Flush(ctx); err != nil {
			return fmt.Errorf("save the device registry: %w", err)
		}
	}
	return ru.Store.SetOrderDevice(ctx, ru.out.OrderID, role, deviceID)
}

func (ru *run) openGateway(ctx context.Context, d acs.Device) error {
	drv, kind, err := catalog.OpenTR069(ctx, ru.catalog(), d)
	if err != nil {
		return err
	}
	gw, ok := drv.(*e8.Driver)
	if !ok {
		return fmt.Errorf("%w: %s is a %s device, the order installs an e8 gateway: check --serial", drivers.ErrMismatch, d.ID, kind)
	}
	ru.gwID, ru.gw = d.ID, gw
	return nil
}

// gateway returns the order's gateway driver; in a resumed run it reaches
// the gateway an earlier run recorded (by connection request, or at its
// next Inform).
func (ru *run) gateway(ctx context.Context) (*e8.Driver, error) {
	if ru.gw != nil {
		return ru.gw, nil
	}
	id, err := ru.Store.OrderDevice(ctx, ru.out.OrderID, RoleGateway)
	if err != nil {
		return nil, fmt.Errorf("no gateway recorded for this visit: %w", err)
	}
	d, err := ru.ACS.WaitDevice(ctx, func(d acs.Device) bool { return d.ID == id })
	if err != nil {
		return nil, fmt.Errorf("gateway %s, found by an earlier run, has not informed this ACS: check that it is powered and its ACS URL points here: %w", id, err)
	}
	if err := ru.openGateway(ctx, d); err != nil {
		return nil, err
	}
	return ru.gw, nil
}

// identify reads the gateway's identity and checks it against the order
// (kind, access, model, serial, class): another box stops the visit here,
// before anything is configured.
func (ru *run) identify(ctx context.Context) (string, error) {
	var (
		id   drivers.Identity
		err  error
		want = drivers.Expectation{Firmware: ru.ord.RequiredFirmware}
	)
	svc := ru.gatewayService()
	want.Access, want.Model, want.Serial = string(svc.Access), svc.Model, svc.Serial
	switch {
	case ru.ord.HasDevice(order.DeviceXT2):
		want.Kind = drivers.KindXT2
		want.Access = "" // an XT-2 has one Ethernet WAN whatever the line
		if ru.xt == nil {
			if _, err := ru.connectXT2(ctx); err != nil {
				return "", err
			}
		}
		id, err = ru.xt.Identify(ctx)
	case ru.ord.HasDevice(order.DeviceE8):
		want.Kind = drivers.KindE8
		gw, gerr := ru.gateway(ctx)
		if gerr != nil {
			return "", gerr
		}
		id, err = gw.Identify(ctx)
	default:
		return "no gateway on this order", errSkipped
	}
	if err != nil {
		return "", err
	}
	ru.out.Device = id
	if err := id.Check(want); err != nil {
		return "", err
	}
	ru.keep = id
	return fmt.Sprintf("%s %s SN %s firmware %s (%s)", id.Vendor, id.Model, id.Serial, id.Firmware, id.Access), nil
}

// configureInternet sets up routed internet: the PPPoE WAN dialled by the
// gateway, NAT, service INTERNET.
func (ru *run) configureInternet(ctx context.Context) (string, error) {
	if err := ru.needCredentials(); err != nil {
		return "", err
	}
	cfg := drivers.PPPoEConfig{Username: ru.ord.PPPoE.Username, Password: ru.ord.PPPoE.Password}
	if cfg.Username == "" {
		return "", errors.New("the order has no PPPoE account (pppoe.username): ask dispatch for it")
	}
	var (
		undo drivers.Undo
		err  error
	)
	if ru.ord.HasDevice(order.DeviceXT2) {
		xt, xerr := ru.xt2(ctx)
		if xerr != nil {
			return "", xerr
		}
		undo, err = xt.ConfigurePPPoE(ctx, cfg)
	} else {
		gw, gerr := ru.gateway(ctx)
		if gerr != nil {
			return "", gerr
		}
		undo, err = gw.ConfigurePPPoE(ctx, cfg)
	}
	if err != nil {
		return "", err
	}
	ru.undo = append(ru.undo, namedUndo{"internet WAN connection", undo})
	if ru.ord.HasDevice(order.DeviceXT2) {
		return "PPPoE dialer with NAT outbound, account " + cfg.Username, nil
	}
	return "PPPoE WAN IP_Routed, NAT on, service INTERNET, account " + cfg.Username, nil
}

// registerLOID registers the ONT with the operator's ITMS (PON access).
func (ru *run) registerLOID(ctx context.Context) (string, error) {
	if ru.ord.LOID.LOID.IsZero() {
		if ru.service(order.DeviceE8).Access.IsPON() {
			return "", errors.New("the order has no LOID for a PON access: ask dispatch for the LOID")
		}
		return "no LOID on the order (not a PON access)", errSkipped
	}
	if err := ru.needCredentials(); err != nil {
		return "", err
	}
	gw, err := ru.gateway(ctx)
	if err != nil {
		return "", err
	}
	res, undo, err := gw.RegisterLOID(ctx, ru.ord.LOID.LOID.Reveal(), ru.ord.LOID.Password.Reveal())
	ru.out.LOID = &report.LOID{Registered: res.Registered, Status: res.Status, Result: res.Result}
	if undo != nil && !res.Registered {
		ru.undo = append(ru.undo, namedUndo{"LOID on the gateway", undo})
	}
	if err != nil {
		return res.Detail, err
	}
	ru.keep = ru.out.LOID
	return res.Detail, nil
}

// waitWAN waits for the internet WAN to connect.
func (ru *run) waitWAN(ctx context.Context) (string, error) {
	var (
		st  drivers.WANStatus
		err error
	)
	if ru.ord.HasDevice(order.DeviceXT2) {
		xt, xerr := ru.xt2(ctx)
		if xerr != nil {
			return "", xerr
		}
		st, err = waitXT2WAN(ctx, xt, ru.PollInterval)
	} else {
		gw, gerr := ru.gateway(ctx)
		if gerr != nil {
			return "", gerr
		}
		st, err = gw.WaitWANUp(ctx)
	}
	ru.out.WAN = st
	if err != nil {
		return fmt.Sprintf("WAN %s, last error %s", st.Status, st.LastError), err
	}
	ru.keep = st
	return fmt.Sprintf("WAN connected, address %s", st.ExternalIP), nil
}

// factoryReset takes the service out: the gateway back to its factory
// state (the customer's accounts and the LOID gone from it).
func (ru *run) factoryReset(ctx context.Context) (string, error) {
	gw, err := ru.gateway(ctx)
	if err != nil {
		return "", err
	}
	if err := gw.FactoryReset(ctx); err != nil {
		return "", err
	}
	wans, err := gw.WANConnections(ctx)
	if err != nil {
		return "", fmt.Errorf("read the gateway after the reset: %w", err)
	}
	for _, w := range wans {
		if w.ServiceList != "" && w.Up() {
			return "", fmt.Errorf("after the factory reset the gateway still has WAN %s (%s) up", w.Instance, w.ServiceList)
		}
	}
	return fmt.Sprintf("factory reset done, gateway back with %d WAN connections", len(wans)), nil
}

// planSTB adds the set-top box steps: the gateway's IPTV WAN (when there
// is a gateway on the order), then the box's account and its login to the
// EPG.
func (ru *run) planSTB(add func(string, stepKind, time.Duration, func(context.Context) (string, error), func([]byte) error), withGateway bool) {
	st := ru.Limits.StepTimeout
	if withGateway {
		add(StepIPTV, kindChange, st, ru.configureIPTV, nil)
	}
	add(StepWaitSTB, kindObserve, ru.Limits.InformTimeout, ru.waitSTB, nil)
	add(StepSTBAccount, kindChange, st, ru.configureSTB, nil)
	add(StepSTBAuth, kindObserve, ru.Limits.WANTimeout, ru.waitSTBAuth, ru.restoreSTB)
}

func (ru *run) iptvVLAN() int {
	switch {
	case ru.ord.IPTV.VLAN > 0:
		return ru.ord.IPTV.VLAN
	case ru.IPTV.VLAN > 0:
		return ru.IPTV.VLAN
	}
	return DefaultIPTVVLAN
}

// configureIPTV makes the gateway's bridged IPTV WAN on the IPTV VLAN,
// bound to LAN port 4 with IGMP snooping and proxy.
func (ru *run) configureIPTV(ctx context.Context) (string, error) {
	gw, err := ru.gateway(ctx)
	if err != nil {
		return "", err
	}
	vlan := ru.iptvVLAN()
	undo, err := gw.ConfigureIPTV(ctx, drivers.IPTVConfig{VLAN: vlan, LANPorts: []int{4}, IGMPSnooping: true, IGMPProxy: true})
	if err != nil {
		return "", err
	}
	ru.undo = append(ru.undo, namedUndo{"IPTV WAN connection", undo})
	return fmt.Sprintf("IPTV WAN bridged on VLAN %d, LAN port 4, IGMP snooping and proxy on", vlan), nil
}

// waitSTB waits for the set-top box to inform and records it.
func (ru *run) waitSTB(ctx context.Context) (string, error) {
	reg := ru.catalog()
	serial := ru.service(order.DeviceITV).Serial
	d, err := ru.ACS.WaitDevice(ctx, func(d acs.Device) bool {
		if serial != "" {
			return d.DeviceId.SerialNumber == serial
		}
		e, err := reg.Lookup(drivers.SeenFromInform(d))
		return err == nil && e.Kind == drivers.KindITV
	})
	if err != nil {
		return "", fmt.Errorf("no Inform from the set-top box: check its power, its cable to LAN port 4, and that its TR-069 URL points here: %w", err)
	}
	if err := ru.openSTB(ctx, d); err != nil {
		return "", err
	}
	if err := ru.remember(ctx, RoleSTB, d.ID); err != nil {
		return "", err
	}
	return fmt.Sprintf("set-top box %s from %s", d.ID, d.RemoteAddr), nil
}

func (ru *run) openSTB(ctx context.Context, d acs.Device) error {
	drv, kind, err := catalog.OpenTR069(ctx, ru.catalog(), d)
	if err != nil {
		return err
	}
	stb, ok := drv.(*itv.Driver)
	if !ok {
		return fmt.Errorf("%w: %s is a %s device, the order installs an iTV set-top box", drivers.ErrMismatch, d.ID, kind)
	}
	ru.stbID, ru.stb = d.ID, stb
	return nil
}

func (ru *run) stbDriver(ctx context.Context) (*itv.Driver, error) {
	if ru.stb != nil {
		return ru.stb, nil
	}
	id, err := ru.Store.OrderDevice(ctx, ru.out.OrderID, RoleSTB)
	if err != nil {
		return nil, fmt.Errorf("no set-top box recorded for this visit: %w", err)
	}
	d, err := ru.ACS.WaitDevice(ctx, func(d acs.Device) bool { return d.ID == id })
	if err != nil {
		return nil, fmt.Errorf("set-top box %s has not informed this ACS: %w", id, err)
	}
	if err := ru.openSTB(ctx, d); err != nil {
		return nil, err
	}
	return ru.stb, nil
}

// configureSTB writes the IPTV account and the EPG servers to the box.
func (ru *run) configureSTB(ctx context.Context) (string, error) {
	if err := ru.needCredentials(); err != nil {
		return "", err
	}
	if ru.ord.IPTV.Account == "" {
		return "", errors.New("the order has no IPTV account (iptv.account): ask dispatch for it")
	}
	if ru.IPTV.AuthURL == "" {
		return "", errors.New("no EPG authentication server configured (iptv.auth_url)")
	}
	stb, err := ru.stbDriver(ctx)
	if err != nil {
		return "", err
	}
	undo, err := stb.ConfigureAccount(ctx, drivers.STBAccount{
		UserID: ru.ord.IPTV.Account, Password: ru.ord.IPTV.Password,
		AuthURL: ru.IPTV.AuthURL, AuthURLBackup: ru.IPTV.AuthURLBackup, Mode: "dhcp",
	})
	if err != nil {
		return "", err
	}
	ru.undo = append(ru.undo, namedUndo{"set-top box account", undo})
	return "IPTV account " + ru.ord.IPTV.Account + ", EPG " + ru.IPTV.AuthURL, nil
}

// stbKept is what wait_stb_auth keeps for a resumed run.
type stbKept struct {
	Identity drivers.Identity `json:"identity"`
}

// waitSTBAuth waits for the box to log in to the EPG.
func (ru *run) waitSTBAuth(ctx context.Context) (string, error) {
	stb, err := ru.stbDriver(ctx)
	if err != nil {
		return "", err
	}
	st, err := stb.WaitAuthenticated(ctx)
	if err != nil {
		return fmt.Sprintf("set-top box status %+v", st), err
	}
	id, err := stb.Identify(ctx)
	if err != nil {
		return "", err
	}
	ru.out.Others = append(ru.out.Others, id)
	ru.keep = stbKept{Identity: id}
	return fmt.Sprintf("set-top box %s %s logged in to the EPG", id.Model, id.Serial), nil
}

func (ru *run) restoreSTB(b []byte) error {
	var k stbKept
	if err := restoreInto(&k)(b); err != nil {
		return err
	}
	ru.out.Others = append(ru.out.Others, k.Identity)
	return nil
}
