package testlab

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"fieldagent/diagnostics/verdict"
)

// Fault is one catalogued fault: what a technician meets, where the lab
// injects it, what fieldagent's diagnosis must report, and the fix.
type Fault struct {
	// ID names the fault, e.g. "pppoe_wrong_password".
	ID string `json:"id"`
	// Title and TitleZH describe it as a technician would.
	Title   string `json:"title"`
	TitleZH string `json:"title_zh"`
	// Device is the device the fault is on or behind: "e8", "itv",
	// "xt2" (the site part that must run for it).
	Device string `json:"device"`
	// Where says where the lab injects it (which simulator, what it
	// changes).
	Where string `json:"where"`
	// Finding is the finding fieldagent's diagnosis must report.
	Finding verdict.Code `json:"finding"`
	// Fix and FixZH are what a technician does about it.
	Fix   string `json:"fix"`
	FixZH string `json:"fix_zh"`
}

// faultDef is a catalogued fault with its injection.
type faultDef struct {
	Fault
	// inject puts the fault on the running site; clear takes it away,
	// back to the state before inject.
	inject func(s *Site) error
	clear  func(s *Site) error
}

// Errors of InjectFault and ClearFault.
var (
	// ErrUnknownFault: no fault with that ID in the catalogue.
	ErrUnknownFault = errors.New("testlab: no such fault in the catalogue")
	// ErrFaultNotApplicable: the site does not run the device the fault
	// needs (e.g. an XT-2 fault on a site without the XT-2).
	ErrFaultNotApplicable = errors.New("testlab: the site does not run the device this fault needs")
)

// catalogue is every fault, e8 and operator faults first.
func catalogue() []faultDef { return slices.Concat(e8Faults(), serviceFaults()) }

// Faults returns the fault catalogue, in a stable order.
func Faults() []Fault {
	var out []Fault
	for _, d := range catalogue() {
		out = append(out, d.Fault)
	}
	return out
}

func findFault(id string) (faultDef, error) {
	for _, d := range catalogue() {
		if d.ID == id {
			return d, nil
		}
	}
	return faultDef{}, fmt.Errorf("%w: %q (fieldagent lab fault list shows them)", ErrUnknownFault, id)
}

// faultState is the faults active on a site.
type faultState struct {
	mu     sync.Mutex
	active []string
}

// runs reports whether the site runs the device a fault needs.
func (s *Site) runs(device string) bool {
	switch device {
	case "e8":
		return s.Gateway != nil
	case "itv":
		return s.STB != nil
	case "xt2":
		return s.XT2 != nil
	}
	return false
}

// InjectFault puts the catalogued fault id on the running site. Injecting
// an active fault again does nothing.
func (s *Site) InjectFault(id string) error {
	d, err := findFault(id)
	if err != nil {
		return err
	}
	if !s.runs(d.Device) {
		return fmt.Errorf("%w: %s needs the %s", ErrFaultNotApplicable, id, d.Device)
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	if slices.Contains(s.faults.active, id) {
		return nil
	}
	if err := d.inject(s); err != nil {
		return fmt.Errorf("testlab: inject %s: %w", id, err)
	}
	s.faults.active = append(s.faults.active, id)
	return nil
}

// ClearFault takes an injected fault away. Clearing a fault that is not
// active does nothing.
func (s *Site) ClearFault(id string) error {
	d, err := findFault(id)
	if err != nil {
		return err
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	i := slices.Index(s.faults.active, id)
	if i < 0 {
		return nil
	}
	if err := d.clear(s); err != nil {
		return fmt.Errorf("testlab: clear %s: %w", id, err)
	}
	s.faults.active = slices.Delete(s.faults.active, i, i+1)
	return nil
}

// ActiveFaults returns the IDs of the injected faults, oldest first.
func (s *Site) ActiveFaults() []string {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return slices.Clone(s.faults.active)
}
