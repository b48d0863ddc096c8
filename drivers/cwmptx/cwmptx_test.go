package cwmptx

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"fieldagent/drivers"
	"fieldagent/tr069/cwmp"
)

// fakeACS is an in-memory device: a flat parameter map, all writable but
// names under "ro.", plus hooks that misbehave.
type fakeACS struct {
	mu     sync.Mutex
	params map[string]string
	// ignore, if set, is a parameter whose writes the device drops.
	ignore string
	// failSet makes every SetParameterValues fail once it is set.
	failSet error
}

func (f *fakeACS) GetParameterValues(_ context.Context, _ string, names ...string) ([]cwmp.ParameterValueStruct, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cwmp.ParameterValueStruct
	for _, n := range names {
		for k, v := range f.params {
			if k == n || (strings.HasSuffix(n, ".") && strings.HasPrefix(k, n)) {
				out = append(out, cwmp.ParameterValueStruct{Name: k, Value: v, Type: "xsd:string"})
			}
		}
	}
	return out, nil
}

func (f *fakeACS) SetParameterValues(_ context.Context, _ string, ps []cwmp.ParameterValueStruct, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSet != nil {
		return f.failSet
	}
	for _, p := range ps {
		if p.Name != f.ignore {
			f.params[p.Name] = p.Value
		}
	}
	return nil
}

func (f *fakeACS) GetParameterNames(_ context.Context, _ string, path string, _ bool) ([]cwmp.ParameterInfoStruct, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cwmp.ParameterInfoStruct
	for k := range f.params {
		if strings.HasPrefix(k, path) {
			out = append(out, cwmp.ParameterInfoStruct{Name: k, Writable: !strings.HasPrefix(k, "ro.")})
		}
	}
	return out, nil
}

func (f *fakeACS) DeleteObject(context.Context, string, string, string) error { return nil }

func TestTransactVerifyMismatchRestores(t *testing.T) {
	f := &fakeACS{params: map[string]string{"A.x": "1", "A.y": "old", "A.z": "keep"}, ignore: "A.x"}
	d := New(f, "dev")
	_, err := d.Transact(context.Background(), "change", []string{"A."}, func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
		return d.Set(ctx, "k", []cwmp.ParameterValueStruct{Str("A.x", "2"), Str("A.y", "new")})
	})
	var re *drivers.RestoreError
	if !errors.As(err, &re) || !errors.Is(err, drivers.ErrVerify) || !re.Restored() {
		t.Fatalf("err = %v, want a restored ErrVerify", err)
	}
	if f.params["A.y"] != "old" {
		t.Errorf("A.y = %q after the rollback", f.params["A.y"])
	}
	if !strings.Contains(err.Error(), `A.x is "1", wrote "2"`) {
		t.Errorf("error does not name the mismatch: %v", err)
	}
}

func TestTransactReportsFailedRestore(t *testing.T) {
	f := &fakeACS{params: map[string]string{"A.y": "old"}}
	d := New(f, "dev")
	lost := errors.New("session lost")
	_, err := d.Transact(context.Background(), "change", []string{"A."}, func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
		ps, err := d.Set(ctx, "k", []cwmp.ParameterValueStruct{Str("A.y", "new")})
		f.failSet = lost // the device is gone from here on
		if err != nil {
			return ps, err
		}
		return ps, errors.New("later step failed")
	})
	if !errors.Is(err, drivers.ErrRestoreFailed) || !errors.Is(err, lost) {
		t.Fatalf("err = %v, want ErrRestoreFailed wrapping the lost session", err)
	}
	if !strings.Contains(err.Error(), "later step failed") {
		t.Errorf("error lost the original failure: %v", err)
	}
}

func TestSameValue(t *testing.T) {
	for _, tc := range [][2]string{{"true", "1"}, {"False", "0"}, {"x", "x"}} {
		if !SameValue(tc[0], tc[1]) {
			t.Errorf("SameValue(%q, %q) = false", tc[0], tc[1])
		}
	}
	if SameValue("1", "2") {
		t.Error("1 == 2")
	}
}
