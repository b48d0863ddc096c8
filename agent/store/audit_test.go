package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestAuditLifecycle(t *testing.T) {
	s, path := openTemp(t)
	s.Now = fakeClock()
	ctx := context.Background()

	id, err := s.StartAudit(ctx, AuditEntry{Actor: "ops-li", Role: "configure", DeviceID: "dev-1", Action: "set_wan_vlan",
		Params: []byte(`{"vlan":41,"wan":"internet"}`)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Audit(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if e.Outcome != AuditStarted || e.At.IsZero() || !e.FinishedAt.IsZero() || e.Before != nil || string(e.Params) != `{"vlan":41,"wan":"internet"}` {
		t.Errorf("started entry: %+v", e)
	}
	if err := s.RecordAuditBefore(ctx, id, []byte(`{"vlan":46}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishAudit(ctx, id, AuditOK, []byte(`{"vlan":41}`), ""); err != nil {
		t.Fatal(err)
	}
	e, _ = s.Audit(ctx, id)
	if e.Outcome != AuditOK || string(e.Before) != `{"vlan":46}` || string(e.After) != `{"vlan":41}` || !e.FinishedAt.After(e.At) ||
		e.Actor != "ops-li" || e.Role != "configure" || e.DeviceID != "dev-1" || e.Action != "set_wan_vlan" {
		t.Errorf("finished entry: %+v", e)
	}

	// A finished entry is final, and none can be deleted, not even by SQL.
	if err := s.FinishAudit(ctx, id, AuditFailed, nil, "again"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("FinishAudit of a finished entry = %v, want ErrInvalidArgument", err)
	}
	if err := s.RecordAuditBefore(ctx, id, []byte(`{}`)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("RecordAuditBefore of a finished entry = %v, want ErrInvalidArgument", err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE audit_log SET after = '{}' WHERE id = ?`, id); err == nil {
		t.Error("the schema let a finished entry change")
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM audit_log`); err == nil {
		t.Error("the schema let audit entries be deleted")
	}
	if err := s.FinishAudit(ctx, 999, AuditOK, nil, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("FinishAudit of an unknown entry = %v, want ErrNotFound", err)
	}
	if _, err := s.Audit(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Audit(999) = %v, want ErrNotFound", err)
	}

	// Who did what to which device cannot be rewritten on a started entry.
	id2, err := s.StartAudit(ctx, AuditEntry{Actor: "ops-li", DeviceID: "dev-2", Action: "reboot"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE audit_log SET actor = 'someone-else' WHERE id = ?`, id2); err == nil {
		t.Error("the schema let a started entry's actor change")
	}
	if e, _ := s.Audit(ctx, id2); string(e.Params) != "{}" {
		t.Errorf("params of an entry without any: %q, want {}", e.Params)
	}

	// An agent that stops mid-change leaves the entry started; the next
	// start marks it interrupted.
	_ = s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.MarkAuditInterrupted(ctx)
	if err != nil || n != 1 {
		t.Fatalf("MarkAuditInterrupted = %d, %v; want 1", n, err)
	}
	e, _ = s.Audit(ctx, id2)
	if e.Outcome != AuditInterrupted || e.FinishedAt.IsZero() || !strings.Contains(e.Error, "interrupted") {
		t.Errorf("interrupted entry: %+v", e)
	}
	if n, _ := s.MarkAuditInterrupted(ctx); n != 0 {
		t.Errorf("MarkAuditInterrupted again marked %d", n)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

func TestStartAuditRefusesBadInput(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	tests := []struct {
		name string
		e    AuditEntry
	}{
		{"no actor", AuditEntry{DeviceID: "d", Action: "reboot"}},
		{"no device", AuditEntry{Actor: "a", Action: "reboot"}},
		{"no action", AuditEntry{Actor: "a", DeviceID: "d"}},
		{"params not JSON", AuditEntry{Actor: "a", DeviceID: "d", Action: "reboot", Params: []byte("{")}},
		{"before not JSON", AuditEntry{Actor: "a", DeviceID: "d", Action: "reboot", Before: []byte("x")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.StartAudit(ctx, tc.e); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("StartAudit = %v, want ErrInvalidArgument", err)
			}
		})
	}
	id, err := s.StartAudit(ctx, AuditEntry{Actor: "a", DeviceID: "d", Action: "reboot"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishAudit(ctx, id, AuditStarted, nil, ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("FinishAudit(started) = %v, want ErrInvalidArgument", err)
	}
	if err := s.FinishAudit(ctx, id, AuditOK, []byte("{"), ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("FinishAudit with bad JSON = %v, want ErrInvalidArgument", err)
	}
	if got, _ := s.AuditLog(ctx, AuditQuery{}); len(got) != 1 {
		t.Errorf("%d entries after refused starts, want 1", len(got))
	}
}

func TestAuditLogQuery(t *testing.T) {
	s, _ := openTemp(t)
	clock := fakeClock()
	s.Now = clock
	ctx := context.Background()
	var ids []int64
	for _, dev := range []string{"a", "b", "a", "a", "b"} {
		id, err := s.StartAudit(ctx, AuditEntry{Actor: "ops", DeviceID: dev, Action: "reboot"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	third, _ := s.Audit(ctx, ids[2])
	tests := []struct {
		name string
		q    AuditQuery
		want []int64
	}{
		{"all, newest first", AuditQuery{}, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"one device", AuditQuery{DeviceID: "a"}, []int64{ids[3], ids[2], ids[0]}},
		{"limit", AuditQuery{Limit: 2}, []int64{ids[4], ids[3]}},
		{"since", AuditQuery{Since: third.At}, []int64{ids[4], ids[3], ids[2]}},
		{"device and since", AuditQuery{DeviceID: "b", Since: third.At}, []int64{ids[4]}},
		{"unknown device", AuditQuery{DeviceID: "c"}, nil},
		{"since the future", AuditQuery{Since: third.At.Add(time.Hour)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.AuditLog(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []int64
			for _, e := range got {
				gotIDs = append(gotIDs, e.ID)
			}
			if len(gotIDs) != len(tc.want) {
				t.Fatalf("ids %v, want %v", gotIDs, tc.want)
			}
			for i := range gotIDs {
				if gotIDs[i] != tc.want[i] {
					t.Fatalf("ids %v, want %v", gotIDs, tc.want)
				}
			}
		})
	}
}

func TestAuditInDump(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if _, err := s.StartAudit(ctx, AuditEntry{Actor: "ops-li", DeviceID: "dev-1", Action: "reregister_loid", Params: []byte(`{"loid":"(set)"}`)}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := s.Dump(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `audit_log: id=1`) || !strings.Contains(b.String(), `actor=ops-li`) {
		t.Errorf("dump has no audit entry:\n%s", b.String())
	}
}

// TestUpgradeFromSchema3 opens a database written by the previous version
// (schema 3): migration 4 adds the audit log and keeps the jobs.
func TestUpgradeFromSchema3(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.CreateJob(ctx, Job{ID: "j1", Kind: "diagnose", Devices: []string{"d1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `DROP TABLE audit_log; DROP INDEX job_results_device; DELETE FROM schema_migrations WHERE version = 4`); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != 4 {
		t.Fatalf("schema version after upgrade %d, %v; want 4", v, err)
	}
	if j, err := s.Job(ctx, "j1"); err != nil || j.Kind != "diagnose" {
		t.Errorf("job after upgrade: %+v, %v", j, err)
	}
	if _, err := s.StartAudit(ctx, AuditEntry{Actor: "a", DeviceID: "d1", Action: "reboot"}); err != nil {
		t.Errorf("StartAudit after upgrade: %v", err)
	}
}
