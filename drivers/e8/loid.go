package e8

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"fieldagent/drivers"
	"fieldagent/tr069/cwmp"
)

// RegisterLOID binds the gateway to the operator's record (建档/绑定): it
// writes the LOID to X_CT-COM_UserInfo.UserName and its password to
// UserId (the name the CT specification gives it), which makes the gateway
// register with ITMS, and polls Status/Result until ITMS answers or ctx
// ends. A gateway already registered with this LOID is left alone
// (outcome already_registered, nil Undo); one that used up its attempts
// (Times reached Limit) is not written to (attempts_exceeded). Failures wrap
// drivers.ErrLOIDRejected with a message that says what to do. The Undo
// clears the LOID on the gateway.
func (d *Driver) RegisterLOID(ctx context.Context, loid, password string) (drivers.LOIDResult, drivers.Undo, error) {
	if loid == "" {
		return drivers.LOIDResult{}, nil, errors.New("register loid: the order has no LOID")
	}
	cur, err := d.get(ctx, UserInfo+"UserName", UserInfo+"Status", UserInfo+"Result", UserInfo+"Limit", UserInfo+"Times")
	if err != nil {
		return drivers.LOIDResult{}, nil, fmt.Errorf("register loid: read X_CT-COM_UserInfo: %w", err)
	}
	if cur[UserInfo+"UserName"] == loid && cur[UserInfo+"Status"] == LOIDStatusRegistered && cur[UserInfo+"Result"] == LOIDResultSuccess {
		r := loidResult(LOIDStatusRegistered, LOIDResultSuccess)
		r.Outcome = drivers.LOIDAlreadyRegistered
		r.Detail = "already registered with ITMS with this LOID; nothing to do"
		return r, nil, nil
	}
	if r, exceeded := attemptsExceeded(cur); exceeded {
		return r, nil, fmt.Errorf("%w: %s", drivers.ErrLOIDRejected, r.Detail)
	}
	undo, err := d.transact(ctx, "register loid", []string{UserInfo}, func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
		return d.set(ctx, "fieldagent-loid", []cwmp.ParameterValueStruct{str(UserInfo+"UserName", loid), str(UserInfo+"UserId", password)}, ".UserId")
	})
	if err != nil {
		return drivers.LOIDResult{}, nil, fmt.Errorf("register loid: %w", err)
	}
	var last drivers.LOIDResult
	for {
		m, err := d.get(ctx, UserInfo+"Status", UserInfo+"Result", UserInfo+"Limit", UserInfo+"Times")
		if err != nil {
			return last, undo, fmt.Errorf("register loid: read status: %w", err)
		}
		last = loidResult(m[UserInfo+"Status"], m[UserInfo+"Result"])
		if last.Registered {
			return last, undo, nil
		}
		if last.Outcome == drivers.LOIDFailure {
			return last, undo, fmt.Errorf("%w: %s", drivers.ErrLOIDRejected, last.Detail)
		}
		if r, exceeded := attemptsExceeded(m); exceeded && last.Status == LOIDStatusNotAttempted {
			return r, undo, fmt.Errorf("%w: %s", drivers.ErrLOIDRejected, r.Detail)
		}
		if err := d.sleep(ctx); err != nil {
			return last, undo, fmt.Errorf("%w: loid registration: %s", drivers.ErrTimeout, last.Detail)
		}
	}
}

// attemptsExceeded reports whether the gateway used up its registration
// attempts (Times reached Limit).
func attemptsExceeded(m map[string]string) (drivers.LOIDResult, bool) {
	limit, _ := strconv.Atoi(m[UserInfo+"Limit"])
	times, _ := strconv.Atoi(m[UserInfo+"Times"])
	if limit <= 0 || times < limit {
		return drivers.LOIDResult{}, false
	}
	return drivers.LOIDResult{
		Outcome: drivers.LOIDAttemptsExceeded, Status: m[UserInfo+"Status"], Result: m[UserInfo+"Result"],
		Detail: fmt.Sprintf("the gateway used all %d registration attempts: factory-reset it or ask ITMS support to reset the counter, then register again", limit),
	}, true
}

func loidResult(status, result string) drivers.LOIDResult {
	r := drivers.LOIDResult{Status: status, Result: result, Outcome: drivers.LOIDFailure}
	switch status {
	case LOIDStatusRegistered:
		switch result {
		case LOIDResultSuccess:
			r.Registered = true
			r.Outcome = drivers.LOIDSuccess
			r.Detail = "registered with ITMS; service delivered"
		case LOIDResultFailed:
			r.Detail = "registered with ITMS but service delivery failed: ask ITMS support to re-deliver the work order"
		default:
			r.Outcome = drivers.LOIDInProgress
			r.Detail = "registered with ITMS; service delivery in progress"
		}
	case LOIDStatusNoSuchLOID:
		r.Detail = "ITMS does not know this LOID: check the LOID on the order"
	case LOIDStatusBadPassword:
		r.Detail = "ITMS rejected the LOID password: check the password on the order"
	case LOIDStatusTimeout:
		r.Detail = "registration timed out: check the optical line and that the ONU is authorised on the OLT"
	case LOIDStatusTaken:
		r.Detail = "the LOID is already bound to another gateway: ask ITMS support to release it"
	default:
		r.Outcome = drivers.LOIDInProgress
		r.Detail = "registration in progress"
	}
	return r
}

// LOIDStatus reads the gateway's LOID registration state (X_CT-COM_UserInfo
// Status and Result) without changing anything, e.g. for a diagnosis. A
// gateway with no LOID written (a LAN or DSL uplink, or not yet
// registered) gives the zero LOIDResult: there is nothing to judge.
func (d *Driver) LOIDStatus(ctx context.Context) (drivers.LOIDResult, error) {
	m, err := d.get(ctx, UserInfo+"UserName", UserInfo+"Status", UserInfo+"Result", UserInfo+"Limit", UserInfo+"Times")
	if err != nil {
		return drivers.LOIDResult{}, fmt.Errorf("loid status: read X_CT-COM_UserInfo: %w", err)
	}
	if r, exceeded := attemptsExceeded(m); exceeded && m[UserInfo+"Status"] != LOIDStatusRegistered {
		return r, nil
	}
	if m[UserInfo+"UserName"] == "" {
		return drivers.LOIDResult{}, nil
	}
	return loidResult(m[UserInfo+"Status"], m[UserInfo+"Result"]), nil
}
