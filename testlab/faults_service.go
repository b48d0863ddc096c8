package testlab

// serviceFaults are the faults of the IPTV service (set-top box, multicast)
// and of the XT-2.
func serviceFaults() []faultDef { return nil }
