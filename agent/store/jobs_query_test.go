package store

import (
	"context"
	"slices"
	"testing"

	"fieldagent/agent/order"
	"fieldagent/agent/secret"
)

func TestFindJobs(t *testing.T) {
	s, _ := openTemp(t)
	s.Now = fakeClock()
	ctx := context.Background()
	for i, j := range []Job{
		{ID: "j1", Kind: "diagnose", Devices: []string{"a"}},
		{ID: "j2", Kind: "fleet_diagnose", Devices: []string{"a", "b"}},
		{ID: "j3", Kind: "diagnose", Devices: []string{"b"}},
	} {
		if err := s.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := s.FinishJob(ctx, j.ID, JobCancelled, "cancelled by request"); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name string
		q    JobQuery
		want []string
	}{
		{"all", JobQuery{}, []string{"j3", "j2", "j1"}},
		{"kind", JobQuery{Kind: "diagnose"}, []string{"j3", "j1"}},
		{"state", JobQuery{State: JobQueued}, []string{"j3", "j2"}},
		{"both", JobQuery{State: JobCancelled, Kind: "diagnose"}, []string{"j1"}},
		{"limit", JobQuery{Limit: 1}, []string{"j3"}},
		{"none", JobQuery{Kind: "act"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jobs, err := s.FindJobs(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, j := range jobs {
				got = append(got, j.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("FindJobs(%+v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func TestDeviceResults(t *testing.T) {
	s, _ := openTemp(t)
	s.Now = fakeClock()
	ctx := context.Background()
	for _, j := range []Job{
		{ID: "j1", Kind: "diagnose", Devices: []string{"a"}},
		{ID: "j2", Kind: "fleet_diagnose", Devices: []string{"a", "b"}},
		{ID: "j3", Kind: "act", Devices: []string{"a"}},
	} {
		if err := s.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []JobResult{
		{JobID: "j1", DeviceID: "a", State: ResultDone, Result: []byte(`{"n":1}`)},
		{JobID: "j2", DeviceID: "b", State: ResultDone, Result: []byte(`{"n":2}`)},
		{JobID: "j2", DeviceID: "a", State: ResultFailed, Error: "unreachable"},
		{JobID: "j3", DeviceID: "a", State: ResultDone, Result: []byte(`{"n":3}`)},
	} {
		if err := s.AddJobResult(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		q    DeviceResultQuery
		want []string // job IDs
	}{
		{"all", DeviceResultQuery{DeviceID: "a"}, []string{"j3", "j2", "j1"}},
		{"kinds", DeviceResultQuery{DeviceID: "a", Kinds: []string{"diagnose", "fleet_diagnose"}}, []string{"j2", "j1"}},
		{"with result", DeviceResultQuery{DeviceID: "a", Kinds: []string{"diagnose", "fleet_diagnose"}, WithResult: true}, []string{"j1"}},
		{"limit", DeviceResultQuery{DeviceID: "a", Limit: 2}, []string{"j3", "j2"}},
		{"other device", DeviceResultQuery{DeviceID: "b"}, []string{"j2"}},
		{"unknown", DeviceResultQuery{DeviceID: "z"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := s.DeviceResults(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.JobID)
				if r.DeviceID != tc.q.DeviceID || r.JobKind == "" {
					t.Errorf("result %+v", r)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("DeviceResults(%+v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func TestDevicesByAccount(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	orders := []*order.Order{
		{ID: "o1", PPPoE: order.Account{Username: "ln0001@isp", Password: secret.New("pw")}, BBMSCustomerID: "BB-1"},
		{ID: "o2", PPPoE: order.Account{Username: "ln0001@isp", Password: secret.New("pw")}},
		{ID: "o3", IPTV: order.IPTVAccount{Account: "itv9", Password: secret.New("pw")}},
		{ID: "o4"},
	}
	for _, o := range orders {
		if err := s.PutOrder(ctx, o, "fetched"); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range [][3]string{
		{"o1", "gateway", "GW-1"}, {"o1", "stb", "STB-1"}, {"o2", "gateway", "GW-2"}, {"o3", "stb", "STB-3"}, {"o4", "xt2", "10.0.0.1:22"},
	} {
		if err := s.SetOrderDevice(ctx, d[0], d[1], d[2]); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		account string
		want    []string
	}{
		{"ln0001@isp", []string{"GW-1", "GW-2", "STB-1"}},
		{"LN0001@ISP", []string{"GW-1", "GW-2", "STB-1"}},
		{"BB-1", []string{"GW-1", "STB-1"}},
		{"itv9", []string{"STB-3"}},
		{"nobody", nil},
		{"", nil},
	}
	for _, tc := range tests {
		got, err := s.DevicesByAccount(ctx, tc.account)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("DevicesByAccount(%q) = %v, want %v", tc.account, got, tc.want)
		}
	}
}
