package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldagent/agent/order"
	"fieldagent/agent/secret"
)

func testOrder(id string) *order.Order {
	start := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	return &order.Order{
		ID: id, Type: order.TypeNewInstall, Technician: "zhang.wei",
		Customer:    order.Customer{Name: "Li Na", Address: "12 Garden Road"},
		Appointment: order.Window{Start: start, End: start.Add(2 * time.Hour)},
		Services:    []order.Service{{Device: order.DeviceE8, Access: order.AccessGPON, BandwidthMbps: 300}},
		PPPoE:       order.Account{Username: "ln@isp", Password: secret.New("pppoe-TOPSECRET")},
		LOID:        order.LOIDCredential{LOID: secret.New("LOID-TOPSECRET"), Password: secret.New("loidpw-TOP")},
		IPTV:        order.IPTVAccount{Account: "itv1", Password: secret.New("iptv-TOPSECRET")},
	}
}

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func TestOpenFileMode(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(path string) error
	}{
		{"new file", func(string) error { return nil }},
		{"existing world-readable file", func(path string) error { return os.WriteFile(path, nil, 0o644) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agent.db")
			if err := tc.prepare(path); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.PutOrder(context.Background(), testOrder("WO-1"), "fetched"); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{path, path + "-wal"} {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want 0600", filepath.Base(f), fi.Mode().Perm())
				}
			}
		})
	}
}

func TestOpenRejectsDSN(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(t.TempDir(), "a.db?_pragma=x")} {
		if _, err := Open(p); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Open(%q) = %v, want ErrInvalidArgument", p, err)
		}
	}
}

func TestReopenKeepsDataAndMigrationsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutOrder(ctx, testOrder("WO-1"), "fetched"); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, OutboxItem{OrderID: "WO-1", Kind: "completion", IdempotencyKey: "k1", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s, err = Open(path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		if err := s.migrate(ctx); err != nil {
			t.Fatalf("migrate again: %v", err)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != CurrentSchemaVersion || v != len(migrations()) {
			t.Fatalf("schema version %d, %v; want %d", v, err, CurrentSchemaVersion)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migrations()) {
			t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(migrations()))
		}
		o, state, err := s.GetOrder(ctx, "WO-1")
		if err != nil || state != "fetched" || o.Customer.Name != "Li Na" {
			t.Fatalf("after reopen: %+v %q %v", o, state, err)
		}
		items, err := s.Outbox(ctx, "WO-1")
		if err != nil || len(items) != 1 {
			t.Fatalf("outbox after reopen: %v %v", items, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (99, 'x')`); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "upgrade fieldagent") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

func TestOrders(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }

	if _, _, err := s.GetOrder(ctx, "WO-404"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetOrder of a missing order: %v", err)
	}
	o2 := testOrder("WO-2")
	o1 := testOrder("WO-1")
	o2.Appointment.Start = o1.Appointment.Start.Add(-time.Hour)
	for _, o := range []*order.Order{o1, o2} {
		if err := s.PutOrder(ctx, o, "fetched"); err != nil {
			t.Fatal(err)
		}
	}
	got, state, err := s.GetOrder(ctx, "WO-1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"state", state, "fetched"},
		{"technician", got.Technician, "zhang.wei"},
		{"service", got.Services[0], o1.Services[0]},
		{"appointment", got.Appointment.Start.Equal(o1.Appointment.Start), true},
		{"pppoe user kept", got.PPPoE.Username, "ln@isp"},
		{"pppoe password not stored", got.PPPoE.Password.IsZero(), true},
		{"loid not stored", got.LOID.LOID.IsZero(), true},
		{"iptv password not stored", got.IPTV.Password.IsZero(), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}

	if err := s.SetOrderState(ctx, "WO-1", "running"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOrderState(ctx, "WO-404", "running"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetOrderState of a missing order: %v", err)
	}
	list, err := s.ListOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "WO-2" || list[1].ID != "WO-1" || list[1].State != "running" || !list[1].FetchedAt.Equal(now) {
		t.Errorf("ListOrders = %+v", list)
	}
}

func TestStepsReadingsFindingsEventsReports(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if err := s.PutOrder(ctx, testOrder("WO-1"), "fetched"); err != nil {
		t.Fatal(err)
	}
	a, err := s.BeginStep(ctx, "WO-1", "identify")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.BeginStep(ctx, "WO-1", "pppoe")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishStep(ctx, a, StepDone, "E8 model HG8245", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishStep(ctx, b, StepFailed, "", "691 authentication rejected"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishStep(ctx, b, "exploded", "", ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("unknown state: %v", err)
	}
	if err := s.FinishStep(ctx, 999, StepDone, "", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown step: %v", err)
	}
	steps, err := s.Steps(ctx, "WO-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].Seq != 1 || steps[0].State != StepDone || steps[1].Seq != 2 ||
		steps[1].Error != "691 authentication rejected" || steps[1].FinishedAt.IsZero() || steps[0].StartedAt.IsZero() {
		t.Errorf("Steps = %+v", steps)
	}
	if _, err := s.BeginStep(ctx, "WO-404", "identify"); !errors.Is(err, ErrNotFound) {
		t.Errorf("BeginStep for a missing order: %v", err)
	}

	rs := []Reading{{Name: "rx_power", Value: -18.5, Unit: "dBm"}, {Name: "sync_down", Value: 300, Unit: "Mbit/s"}}
	if err := s.AddReadings(ctx, "WO-1", "line", rs); err != nil {
		t.Fatal(err)
	}
	if err := s.AddReadings(ctx, "WO-1", "line", []Reading{{Name: "bad", Value: math.NaN()}}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NaN reading: %v", err)
	}
	got, err := s.Readings(ctx, "WO-1")
	if err != nil || len(got) != 2 || got[0].Step != "line" || got[0].Value != -18.5 || got[1].Unit != "Mbit/s" || got[0].At.IsZero() {
		t.Errorf("Readings = %+v, %v", got, err)
	}

	if err := s.AddFindings(ctx, "WO-1", "line", []Finding{{Code: "LOW_RX", Severity: "warn", Symptom: "low rx", Cause: "dirty connector", Fix: "clean it"}}); err != nil {
		t.Fatal(err)
	}
	fs, err := s.Findings(ctx, "WO-1")
	if err != nil || len(fs) != 1 || fs[0].Code != "LOW_RX" || fs[0].Step != "line" {
		t.Errorf("Findings = %+v, %v", fs, err)
	}

	if err := s.AddEvent(ctx, "WO-1", "fetched", "from order system"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEvent(ctx, "WO-404", "fetched", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddEvent for a missing order: %v", err)
	}
	evs, err := s.Events(ctx, "WO-1")
	if err != nil || len(evs) != 1 || evs[0].Kind != "fetched" {
		t.Errorf("Events = %+v, %v", evs, err)
	}

	if _, err := s.Report(ctx, "WO-1", "json"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing report: %v", err)
	}
	for _, body := range []string{`{"v":1}`, `{"v":2}`} {
		if err := s.PutReport(ctx, "WO-1", "json", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := s.Report(ctx, "WO-1", "json")
	if err != nil || string(rep) != `{"v":2}` {
		t.Errorf("Report = %s, %v", rep, err)
	}
}

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	if err := s.PutOrder(ctx, testOrder("WO-1"), "done"); err != nil {
		t.Fatal(err)
	}
	item := OutboxItem{OrderID: "WO-1", Kind: "completion", IdempotencyKey: "WO-1/completion/1", Body: []byte(`{"result":"ok"}`)}
	for range 3 {
		if err := s.Enqueue(ctx, item); err != nil {
			t.Fatal(err)
		}
	}
	other := item
	other.IdempotencyKey, other.Body = "WO-1/completion/2", []byte(`{"result":"changed"}`)
	if err := s.Enqueue(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, OutboxItem{OrderID: "WO-1", Kind: "completion"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("enqueue without a key: %v", err)
	}
	if err := s.Enqueue(ctx, OutboxItem{OrderID: "WO-404", Kind: "completion", IdempotencyKey: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("enqueue for a missing order: %v", err)
	}

	due, err := s.Due(ctx, now)
	if err != nil || len(due) != 2 {
		t.Fatalf("Due = %+v, %v; want 2 items (same key enqueued 3 times = 1 item)", due, err)
	}
	first, second := due[0], due[1]
	if first.IdempotencyKey != item.IdempotencyKey || string(first.Body) != `{"result":"ok"}` || first.Attempts != 0 {
		t.Errorf("first due item = %+v", first)
	}

	if err := s.MarkAttempt(ctx, first.ID, errors.New("503 service unavailable"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed(ctx, second.ID, errors.New("400 result is required")); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		at   time.Time
		want int
	}{
		{"backing off", now.Add(30 * time.Second), 0},
		{"due again", now.Add(time.Minute), 1},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			due, err := s.Due(ctx, st.at)
			if err != nil || len(due) != st.want {
				t.Fatalf("Due(%v) = %+v, %v; want %d", st.at, due, err, st.want)
			}
		})
	}
	if err := s.MarkDelivered(ctx, first.ID, []byte(`{"receipt":"R1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(ctx, first.ID, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("delivering twice: %v", err)
	}
	if due, _ := s.Due(ctx, now.Add(time.Hour)); len(due) != 0 {
		t.Errorf("delivered or failed items still due: %+v", due)
	}
	all, err := s.Outbox(ctx, "WO-1")
	if err != nil || len(all) != 2 {
		t.Fatal(all, err)
	}
	if !all[0].Delivered() || all[0].Attempts != 2 || string(all[0].Response) != `{"receipt":"R1"}` || all[0].LastError != "503 service unavailable" {
		t.Errorf("delivered item = %+v", all[0])
	}
	if !all[1].Failed() || all[1].Delivered() || all[1].Attempts != 1 || all[1].LastError != "400 result is required" {
		t.Errorf("failed item = %+v", all[1])
	}
	if err := s.RetryFailed(ctx, all[1].ID); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.Due(ctx, now); len(due) != 1 || due[0].ID != all[1].ID {
		t.Errorf("retried item not due: %+v", due)
	}
}

func TestACSDevices(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	d := ACSDevice{ID: "00259E-HG8245-SN1", Serial: "SN1", OUI: "00259E", ProductClass: "HG8245", LastInform: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	if err := s.PutACSDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.ACSDevice(ctx, d.ID)
	if err != nil || got.Serial != "SN1" || !got.LastInform.Equal(d.LastInform) || string(got.JSON) != "{}" {
		t.Errorf("ACSDevice = %+v, %v", got, err)
	}
	if _, err := s.ACSDevice(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing device: %v", err)
	}
	all, err := s.ACSDevices(ctx)
	if err != nil || len(all) != 1 {
		t.Errorf("ACSDevices = %+v, %v", all, err)
	}
}

// TestDumpHoldsNoSecrets stores an order with credentials and checks that no
// table holds them.
func TestDumpHoldsNoSecrets(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	o := testOrder("WO-1")
	if err := s.PutOrder(ctx, o, "fetched"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEvent(ctx, "WO-1", "fetched", fmt.Sprintf("pppoe %v", o.PPPoE.Password)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Dump(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	dump := buf.String()
	for _, want := range []string{"orders: id=WO-1", "state=fetched", "ln@isp", "events: ", "schema_migrations: version=1"} {
		if !strings.Contains(dump, want) {
			t.Errorf("dump lacks %q:\n%s", want, dump)
		}
	}
	for _, sec := range []secret.Secret{o.PPPoE.Password, o.LOID.LOID, o.LOID.Password, o.IPTV.Password} {
		if strings.Contains(dump, sec.Reveal()) {
			t.Errorf("the store holds a credential:\n%s", dump)
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	const workers, each = 8, 20
	for w := range workers {
		if err := s.PutOrder(ctx, testOrder(fmt.Sprintf("WO-%d", w)), "fetched"); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("WO-%d", w)
			for i := range each {
				step, err := s.BeginStep(ctx, id, fmt.Sprintf("step-%d", i))
				if err == nil {
					err = s.AddReadings(ctx, id, "s", []Reading{{Name: "n", Value: float64(i), Unit: "u"}})
				}
				if err == nil {
					err = s.FinishStep(ctx, step, StepDone, "", "")
				}
				if err == nil {
					err = s.Enqueue(ctx, OutboxItem{OrderID: id, Kind: "event", IdempotencyKey: fmt.Sprintf("%s/%d", id, i%5), Body: []byte("{}")})
				}
				if err == nil {
					_, err = s.Due(ctx, time.Now())
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range workers {
		id := fmt.Sprintf("WO-%d", w)
		steps, _ := s.Steps(ctx, id)
		rs, _ := s.Readings(ctx, id)
		items, _ := s.Outbox(ctx, id)
		if len(steps) != each || len(rs) != each || len(items) != 5 {
			t.Errorf("%s: %d steps, %d readings, %d outbox items; want %d, %d, 5", id, len(steps), len(rs), len(items), each, each)
		}
		for i, st := range steps {
			if st.Seq != i+1 {
				t.Errorf("%s: step %d has seq %d", id, i, st.Seq)
			}
		}
	}
}

// TestTwoStoresOneFile opens the same file twice (two processes: the agent
// and a CLI command) and writes through both.
func TestTwoStoresOneFile(t *testing.T) {
	ctx := context.Background()
	a, path := openTemp(t)
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				if err := s.PutOrder(ctx, testOrder(fmt.Sprintf("WO-%d-%d", i, j)), "fetched"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	list, err := a.ListOrders(ctx)
	if err != nil || len(list) != 40 {
		t.Errorf("ListOrders: %d orders, %v; want 40", len(list), err)
	}
}

// TestResumeRecords: readings and findings carry the step run that took
// them, a step keeps its result, an order remembers its devices.
func TestResumeRecords(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if err := s.PutOrder(ctx, testOrder("WO-1"), "running"); err != nil {
		t.Fatal(err)
	}
	id, err := s.BeginStep(ctx, "WO-1", "ping")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddReadings(ctx, "WO-1", "ping", []Reading{{StepID: id, Name: "ping_loss", Value: 0, Unit: "%"}, {Name: "outside", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Readings(ctx, "WO-1")
	if err != nil || len(rs) != 2 || rs[0].StepID != id || rs[1].StepID != 0 {
		t.Errorf("Readings = %+v, %v; want the first tied to step %d, the second to none", rs, err, id)
	}
	if err := s.AddFindings(ctx, "WO-1", "ping", []Finding{{StepID: id, Code: "PACKET_LOSS"}}); err != nil {
		t.Fatal(err)
	}
	if fs, err := s.Findings(ctx, "WO-1"); err != nil || len(fs) != 1 || fs[0].StepID != id {
		t.Errorf("Findings = %+v, %v", fs, err)
	}
	if err := s.SetStepResult(ctx, id, []byte(`{"loss":0}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStepResult(ctx, 999, []byte(`{}`)); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetStepResult of an unknown step: %v", err)
	}
	steps, err := s.Steps(ctx, "WO-1")
	if err != nil || len(steps) != 1 || string(steps[0].Result) != `{"loss":0}` {
		t.Errorf("Steps = %+v, %v", steps, err)
	}
	if _, err := s.OrderDevice(ctx, "WO-1", "gateway"); !errors.Is(err, ErrNotFound) {
		t.Errorf("OrderDevice before any: %v", err)
	}
	for _, dev := range []string{"00D0D0-F650-A", "00D0D0-F650-B"} {
		if err := s.SetOrderDevice(ctx, "WO-1", "gateway", dev); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.OrderDevice(ctx, "WO-1", "gateway"); err != nil || got != "00D0D0-F650-B" {
		t.Errorf("OrderDevice = %q, %v; want the latest", got, err)
	}
	if err := s.SetOrderDevice(ctx, "WO-1", "", "x"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("SetOrderDevice without a role: %v", err)
	}
}
