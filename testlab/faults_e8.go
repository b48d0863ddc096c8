package testlab

// e8Faults are the faults of the e8 gateway, its line and the operator's
// access side.
func e8Faults() []faultDef { return nil }
