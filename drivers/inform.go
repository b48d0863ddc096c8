package drivers

import (
	"strings"

	"fieldagent/tr069/acs"
)

// SeenFromInform is what a TR-069 device reported in its Inform: the
// DeviceId and the data model root, read from the Inform's parameter names
// ("Device.STBService" when a Device-rooted box reports STBService in its
// DeviceSummary or sends X_CTC_IPTV parameters).
func SeenFromInform(d acs.Device) Seen {
	s := Seen{
		Target: d.ID, Manufacturer: d.DeviceId.Manufacturer, OUI: d.DeviceId.OUI,
		ProductClass: d.DeviceId.ProductClass,
	}
	for name, v := range d.Params {
		switch {
		case strings.HasPrefix(name, "InternetGatewayDevice."):
			s.RootObject = "InternetGatewayDevice"
		case strings.HasPrefix(name, "Device.") && s.RootObject != "InternetGatewayDevice":
			if s.RootObject != "Device.STBService" {
				s.RootObject = "Device"
			}
			if strings.HasPrefix(name, "Device.X_CTC_IPTV.") || strings.HasPrefix(name, "Device.STBService.") ||
				(name == "Device.DeviceSummary" && strings.Contains(v, "STBService")) {
				s.RootObject = "Device.STBService"
			}
		}
		if strings.HasSuffix(name, ".DeviceInfo.ModelName") {
			s.ModelName = v
		}
	}
	return s
}
