package cpe

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"fieldagent/tr069/cwmp"
)

func testTree() *Tree {
	t := NewTree()
	t.Set(Param{Name: "Device.DeviceInfo.SerialNumber", Value: "SN1"})
	t.Set(Param{Name: "Device.DeviceInfo.UpTime", Value: "5", Type: "xsd:unsignedInt"})
	t.Set(Param{Name: "Device.WiFi.SSID.1.SSID", Value: "a", Writable: true})
	t.Set(Param{Name: "Device.WiFi.SSID.10.SSID", Value: "b", Writable: true})
	t.Set(Param{Name: "Device.WiFi.SSID.2.SSID", Value: "c", Writable: true})
	t.Set(Param{Name: "Device.WiFi.SSIDNumberOfEntries", Value: "3", Type: "xsd:unsignedInt"})
	t.Template("Device.WiFi.SSID.", []Param{{Name: "SSID", Writable: true}, {Name: "Enable", Value: "0", Type: "xsd:boolean", Writable: true}})
	return t
}

func names[T any](list []T, name func(T) string) []string {
	var out []string
	for _, x := range list {
		out = append(out, name(x))
	}
	return out
}

func TestGetValues(t *testing.T) {
	tree := testTree()
	tests := []struct {
		name  string
		in    []string
		want  []string
		fault int
	}{
		{"param", []string{"Device.DeviceInfo.UpTime"}, []string{"Device.DeviceInfo.UpTime"}, 0},
		{"subtree in numeric order", []string{"Device.WiFi.SSID."}, []string{"Device.WiFi.SSID.1.SSID", "Device.WiFi.SSID.2.SSID", "Device.WiFi.SSID.10.SSID"}, 0},
		{"unknown", []string{"Device.Nope"}, nil, cwmp.FaultInvalidParameterName},
		{"unknown object", []string{"Device.Nope."}, nil, cwmp.FaultInvalidParameterName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, f := tree.getValues(tc.in)
			if tc.fault != 0 {
				if f == nil || f.Code != tc.fault {
					t.Fatalf("fault = %v, want %d", f, tc.fault)
				}
				return
			}
			if f != nil {
				t.Fatal(f)
			}
			if n := names(got, func(p cwmp.ParameterValueStruct) string { return p.Name }); !reflect.DeepEqual(n, tc.want) {
				t.Fatalf("got %v", n)
			}
		})
	}
	if all, _ := tree.getValues([]string{""}); len(all) != 6 {
		t.Fatalf("empty name gave %d params", len(all))
	}
}

func TestGetNames(t *testing.T) {
	tree := testTree()
	tests := []struct {
		name  string
		path  string
		next  bool
		want  []string
		fault int
	}{
		{"root next level", "", true, []string{"Device."}, 0},
		{"object next level", "Device.WiFi.", true, []string{"Device.WiFi.SSID.", "Device.WiFi.SSIDNumberOfEntries"}, 0},
		{"object all", "Device.DeviceInfo.", false, []string{"Device.DeviceInfo.", "Device.DeviceInfo.SerialNumber", "Device.DeviceInfo.UpTime"}, 0},
		{"param", "Device.DeviceInfo.UpTime", false, []string{"Device.DeviceInfo.UpTime"}, 0},
		{"param next level", "Device.DeviceInfo.UpTime", true, nil, cwmp.FaultInvalidArguments},
		{"unknown", "Device.X.", false, nil, cwmp.FaultInvalidParameterName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, f := tree.getNames(tc.path, tc.next)
			if tc.fault != 0 {
				if f == nil || f.Code != tc.fault {
					t.Fatalf("fault = %v, want %d", f, tc.fault)
				}
				return
			}
			if n := names(got, func(p cwmp.ParameterInfoStruct) string { return p.Name }); !reflect.DeepEqual(n, tc.want) {
				t.Fatalf("got %v", n)
			}
		})
	}
}

func TestSetAddDelete(t *testing.T) {
	tree := testTree()
	if _, f := tree.applySet([]cwmp.ParameterValueStruct{
		{Name: "Device.WiFi.SSID.1.SSID", Value: "new"}, {Name: "Device.DeviceInfo.UpTime", Value: "1"},
	}); f == nil || f.Code != cwmp.FaultNonWritableParameter || len(f.SetParameterValuesFaults) != 1 {
		t.Fatalf("fault = %v", f)
	}
	if tree.Value("Device.WiFi.SSID.1.SSID") != "a" {
		t.Fatal("partial set applied")
	}
	if _, f := tree.applySet([]cwmp.ParameterValueStruct{{Name: "Device.WiFi.SSID.1.SSID", Value: "x"}, {Name: "Device.WiFi.SSID.1.SSID", Value: "y"}}); f == nil || f.Code != cwmp.FaultInvalidArguments {
		t.Fatalf("duplicate: fault = %v", f)
	}
	n, f := tree.addObject("Device.WiFi.SSID.")
	if f != nil || n != 11 {
		t.Fatalf("addObject = %d, %v", n, f)
	}
	if p, ok := tree.Get("Device.WiFi.SSID.11.Enable"); !ok || p.Type != "xsd:boolean" || !p.Writable {
		t.Fatalf("new instance param = %+v", p)
	}
	if tree.Value("Device.WiFi.SSIDNumberOfEntries") != "4" {
		t.Fatalf("count = %s", tree.Value("Device.WiFi.SSIDNumberOfEntries"))
	}
	if f := tree.deleteObject("Device.WiFi.SSID.1."); f != nil {
		t.Fatal(f)
	}
	if _, ok := tree.Get("Device.WiFi.SSID.1.SSID"); ok || tree.Value("Device.WiFi.SSIDNumberOfEntries") != "3" {
		t.Fatal("instance 1 not deleted")
	}
	if f := tree.deleteObject("Device.WiFi.SSID."); f == nil {
		t.Fatal("deleted the table itself")
	}
	if err := tree.SetValue("Device.Nope", "1"); !errors.Is(err, ErrUnknownParam) {
		t.Fatalf("SetValue unknown: %v", err)
	}
}

func TestValidValue(t *testing.T) {
	tests := []struct {
		typ, v string
		ok     bool
	}{
		{"xsd:boolean", "true", true}, {"xsd:boolean", "2", false}, {"xsd:boolean", "", false},
		{"xsd:unsignedInt", "4294967295", true}, {"xsd:unsignedInt", "-1", false},
		{"xsd:int", "-5", true}, {"xsd:int", "x", false},
		{"xsd:dateTime", "2024-01-02T03:04:05Z", true}, {"xsd:dateTime", "0001-01-01T00:00:00Z", true}, {"xsd:dateTime", "yesterday", false},
		{"xsd:base64", "aGk=", true}, {"xsd:base64", "!!", false},
		{"xsd:string", "anything", true},
	}
	for _, tc := range tests {
		if got := validValue(tc.typ, tc.v); got != tc.ok {
			t.Errorf("validValue(%s, %q) = %v", tc.typ, tc.v, got)
		}
	}
}

func TestNewConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no url", Config{}},
		{"bad scheme", Config{ACSURL: "ftp://x/"}},
		{"bad namespace", Config{ACSURL: "http://127.0.0.1/", Namespace: "urn:x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, nil); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// failFirstInformACS is a fake ACS that answers the first Inform with 503
// and every later one with an InformResponse; it counts the Informs.
func failFirstInformACS(t *testing.T) (*atomic.Int32, *httptest.Server) {
	t.Helper()
	informs := new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body [1]byte
		if n, _ := r.Body.Read(body[:]); n == 0 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if informs.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		data, _ := cwmp.Encode(&cwmp.Envelope{Body: &cwmp.InformResponse{MaxEnvelopes: 1}})
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return informs, srv
}

// TestRetryAndCoalesce runs the engine against a fake ACS that fails the
// first Inform, then checks that the engine retries and that a burst of
// connection requests leads to sessions without piling up.
func TestRetryAndCoalesce(t *testing.T) {
	informs, srv := failFirstInformACS(t)
	e, err := New(Config{ACSURL: srv.URL, ConnReqAddr: "127.0.0.1:0", RetryBase: time.Millisecond}, testTree())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	<-e.Ready()
	if e.ConnectionRequestURL() == "" || e.Tree().Value("Device.ManagementServer.ConnectionRequestURL") != e.ConnectionRequestURL() {
		t.Fatalf("CR URL %q not in tree", e.ConnectionRequestURL())
	}
	waitInforms := func(n int32) {
		for informs.Load() < n {
			select {
			case <-ctx.Done():
				t.Fatalf("only %d informs, want %d", informs.Load(), n)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	waitInforms(2) // failed boot, retried boot
	for i := 0; i < 5; i++ {
		resp, err := http.Get(e.ConnectionRequestURL())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("CR status %d", resp.StatusCode)
		}
	}
	waitInforms(3) // at least one connection request session
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := informs.Load(); n > 2+5 {
		t.Fatalf("%d informs for 5 connection requests", n)
	}
}

// TestAddInstanceClearTable covers the device-side table API: result
// tables the ACS cannot AddObject to, filled and emptied by the device.
func TestAddInstanceClearTable(t *testing.T) {
	tree := NewTree()
	tree.Set(Param{Name: "Device.Diag.ResultNumberOfEntries", Value: "0", Type: "xsd:unsignedInt"})
	tree.defineTemplate("Device.Diag.Result.", []Param{{Name: "Bytes", Value: "0", Type: "xsd:unsignedInt"}}, nil, false)

	if _, f := tree.addObject("Device.Diag.Result."); f == nil {
		t.Fatal("the ACS added a row to a read-only result table")
	}
	for want := uint32(1); want <= 3; want++ {
		n, err := tree.AddInstance("Device.Diag.Result.")
		if err != nil || n != want {
			t.Fatalf("AddInstance = %d, %v, want %d", n, err, want)
		}
	}
	if v := tree.Value("Device.Diag.Result.3.Bytes"); v != "0" {
		t.Errorf("new row's Bytes = %q, want the default 0", v)
	}
	if v := tree.Value("Device.Diag.ResultNumberOfEntries"); v != "3" {
		t.Errorf("ResultNumberOfEntries = %s, want 3", v)
	}
	if err := tree.ClearTable("Device.Diag.Result."); err != nil {
		t.Fatal(err)
	}
	if _, ok := tree.Get("Device.Diag.Result.1.Bytes"); ok {
		t.Error("ClearTable left row 1")
	}
	if v := tree.Value("Device.Diag.ResultNumberOfEntries"); v != "0" {
		t.Errorf("ResultNumberOfEntries after ClearTable = %s, want 0", v)
	}
	if n, err := tree.AddInstance("Device.Diag.Result."); err != nil || n != 1 {
		t.Errorf("AddInstance after ClearTable = %d, %v, want 1 (numbering restarts)", n, err)
	}
	for _, bad := range []string{"Device.Diag.", "Device.Nope.", "Device.Diag.Result.1."} {
		if _, err := tree.AddInstance(bad); !errors.Is(err, ErrUnknownParam) {
			t.Errorf("AddInstance(%s) = %v, want ErrUnknownParam", bad, err)
		}
		if err := tree.ClearTable(bad); !errors.Is(err, ErrUnknownParam) {
			t.Errorf("ClearTable(%s) = %v, want ErrUnknownParam", bad, err)
		}
	}
}

// TestConnectionRequestEndsRetryWait: after a failed session the CPE waits
// (here an hour) before retrying, but a connection request — the ACS is
// back — starts a session at once.
func TestConnectionRequestEndsRetryWait(t *testing.T) {
	informs, srv := failFirstInformACS(t)
	e, err := New(Config{ACSURL: srv.URL, ConnReqAddr: "127.0.0.1:0", RetryBase: time.Hour}, testTree())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	<-e.Ready()
	for informs.Load() < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := http.Get(e.ConnectionRequestURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	deadline := time.After(5 * time.Second)
	for informs.Load() < 2 {
		select {
		case <-deadline:
			t.Fatal("no session after the connection request: the CPE sat out its retry wait")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
