package genieacs_test

// The e8 driver's calls that the recorded exchanges cover, run through the
// client over the strict replay. The recording's device is genieacs-sim's
// Huawei BM632w (TR-098); its calls are not e8 calls, so only these match:
// Reboot (faulted), UpgradeFirmware's first read (device offline) and
// WANConnections (a refresh of the WAN connection devices and their read).

import (
	"errors"
	"testing"

	"fieldagent/drivers"
	"fieldagent/drivers/e8"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/genieacs"
	"fieldagent/tr069/genieacs/internal/nbireplay"
)

func TestE8RebootFaulted(t *testing.T) {
	c := replay(t, nil, append(append(load(t, "20"), faultByID(t, dev0+":task_6b071524816002b3b1d27417")), load(t, "23")...)...)
	err := e8.New(c, dev0).Reboot(testCtx(t))
	var f *cwmp.Fault
	if !errors.As(err, &f) || f.Code != cwmp.FaultMethodNotSupported {
		t.Fatalf("Reboot = %v, want the device's fault 9000", err)
	}
}

func TestE8UpgradeFirmwareDeviceOffline(t *testing.T) {
	c := replay(t, nil, append(load(t, "30"), deleteTask(t, "6b071529816002b3b1d2741a"))...)
	_, upgraded, err := e8.New(c, dev0).UpgradeFirmware(testCtx(t), drivers.FirmwareImage{Version: "V100R001IRQC56B018", URL: "fixture-firmware.bin"})
	if upgraded || !errors.Is(err, drivers.ErrFirmware) || !errors.Is(err, acs.ErrConnectionRequest) || !errors.Is(err, genieacs.ErrDeviceOffline) {
		t.Fatalf("UpgradeFirmware = %v, %v; want ErrFirmware and the device offline", upgraded, err)
	}
}

func TestE8WANConnections(t *testing.T) {
	// 14 refreshed WANDevice.1; the driver reads (and so refreshes) only
	// its WANConnectionDevice subtree, which 15 reads back.
	refresh := load(t, "14")[0].WithRequestBody(`{"name":"refreshObject","objectName":"InternetGatewayDevice.WANDevice.1.WANConnectionDevice"}`,
		"refresh of WANConnectionDevice, a subtree of what 14 refreshed; same answer")
	c := replay(t, nil, append([]nbireplay.Exchange{refresh}, load(t, "15")...)...)
	wans, err := e8.New(c, dev0).WANConnections(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := drivers.WANStatus{Instance: "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.",
		ConnectionType: "IP_Routed", Status: "Connected", ExternalIP: "172.3.89.139", LastError: "ERROR_USER_DISCONNECT", NAT: true, Uptime: 62703}
	if len(wans) != 1 || wans[0] != want {
		t.Fatalf("WANConnections = %+v, want [%+v]", wans, want)
	}
}
