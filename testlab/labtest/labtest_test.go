package labtest_test

import (
	"testing"
	"time"

	"fieldagent/testlab"
	"fieldagent/testlab/labtest"
)

// TestLabDevices opens every device of a full site through the harness.
func TestLabDevices(t *testing.T) {
	l := labtest.Start(t, testlab.Config{STB: true, XT2: true})
	ctx := labtest.Ctx(t, 20*time.Second)
	id, err := l.Gateway(ctx, t).Identify(ctx)
	if err != nil || id.Serial != testlab.SampleGatewaySN {
		t.Errorf("gateway identity %+v, %v", id, err)
	}
	sid, err := l.STB(ctx, t).Identify(ctx)
	if err != nil || sid.Serial != testlab.SampleSTBSN {
		t.Errorf("set-top box identity %+v, %v", sid, err)
	}
	xid, err := l.XT2(ctx, t).Identify(ctx)
	if err != nil || xid.Serial != testlab.SampleXT2SN {
		t.Errorf("XT-2 identity %+v, %v", xid, err)
	}
}
