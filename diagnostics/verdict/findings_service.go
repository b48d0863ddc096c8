package verdict

// serviceRules are the findings of the IPTV service and the XT-2 beyond the
// core rules.
var serviceRules = []rule{}
