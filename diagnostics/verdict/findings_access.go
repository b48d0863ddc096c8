package verdict

// accessRules are the findings of the gateway and its access line beyond
// the core rules (account, VLAN, firmware, LAN and Wi-Fi state).
var accessRules = []rule{}
