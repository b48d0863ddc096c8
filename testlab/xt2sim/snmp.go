package xt2sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"
)

// OIDs of the objects the agent serves.
const (
	oidSystem   = ".1.3.6.1.2.1.1"
	oidIfNumber = ".1.3.6.1.2.1.2.1"
	oidIfEntry  = ".1.3.6.1.2.1.2.2.1"
	oidIfXEntry = ".1.3.6.1.2.1.31.1.1.1"
	oidXT2MIB   = ".1.3.6.1.4.1.99999.2"
	// SysObjectID is the XT-2's sysObjectID.
	SysObjectID = ".1.3.6.1.4.1.99999.1.2"
)

// USM report counters (RFC 3414) and the values of the XT2-MIB enums.
const (
	usmStatsUnsupportedSecLevels = ".1.3.6.1.6.3.15.1.1.1.0"
	usmStatsNotInTimeWindows     = ".1.3.6.1.6.3.15.1.1.2.0"
	usmStatsUnknownUserNames     = ".1.3.6.1.6.3.15.1.1.3.0"
	usmStatsUnknownEngineIDs     = ".1.3.6.1.6.3.15.1.1.4.0"
	usmStatsWrongDigests         = ".1.3.6.1.6.3.15.1.1.5.0"

	// maxBulkVarbinds caps the variable bindings of one GetBulk answer.
	maxBulkVarbinds = 400
	// timeWindow is the USM time window in seconds.
	timeWindow = 150
)

// mibEntry is one object instance of the agent.
type mibEntry struct {
	arcs   []uint32
	objLen int // arcs[:objLen] names the object type
	pdu    gosnmp.SnmpPDU
}

// snmpAgent answers SNMPv2c and SNMPv3 (USM authPriv) requests.
type snmpAgent struct {
	r        *Router
	conn     net.PacketConn
	glog     gosnmp.Logger
	engineID string
	boots    uint32
	// tmpl holds the v3 user's keys, localized to engineID; nil without v3.
	tmpl    *gosnmp.UsmSecurityParameters
	saltCtr atomic.Uint64
	reports [6]atomic.Uint32
}

func newSNMPAgent(r *Router, conn net.PacketConn) (*snmpAgent, error) {
	a := &snmpAgent{
		r: r, conn: conn,
		glog: gosnmp.NewLogger(log.New(io.Discard, "", 0)),
		// Enterprise-format engine ID (RFC 3411): 99999 with the high bit,
		// format 4 (text), the serial.
		engineID: string([]byte{0x80, 0x01, 0x86, 0x9f, 0x04}) + r.cfg.Serial,
		boots:    1,
	}
	if r.cfg.SNMPv3User != "" {
		a.tmpl = &gosnmp.UsmSecurityParameters{
			AuthoritativeEngineID:    a.engineID,
			UserName:                 r.cfg.SNMPv3User,
			AuthenticationProtocol:   gosnmp.SHA256,
			AuthenticationPassphrase: r.cfg.SNMPv3AuthKey.Reveal(),
			PrivacyProtocol:          gosnmp.AES,
			PrivacyPassphrase:        r.cfg.SNMPv3PrivKey.Reveal(),
			Logger:                   a.glog,
		}
		if err := a.tmpl.InitSecurityKeys(); err != nil {
			return nil, fmt.Errorf("xt2sim snmpv3 keys: %w", err)
		}
	}
	return a, nil
}

func (a *snmpAgent) serve() {
	buf := make([]byte, 65535)
	for {
		n, from, err := a.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || a.r.ctx.Err() != nil {
				return
			}
			continue
		}
		out := a.handle(slices.Clone(buf[:n]))
		if out != nil {
			_, _ = a.conn.WriteTo(out, from)
		}
	}
}

// peekVersion reads the version field of an SNMP message.
func peekVersion(b []byte) (int, bool) {
	if len(b) < 2 || b[0] != 0x30 {
		return 0, false
	}
	i := 2
	if b[1]&0x80 != 0 {
		i += int(b[1] & 0x7f)
	}
	if len(b) < i+3 || b[i] != 0x02 || b[i+1] != 1 {
		return 0, false
	}
	return int(b[i+2]), true
}

// handle answers one message; nil means no answer (dropped). A message
// that makes the decoder panic is dropped too.
func (a *snmpAgent) handle(raw []byte) (out []byte) {
	defer func() {
		if p := recover(); p != nil {
			a.r.logger.Warn("xt2sim: snmp message dropped: decoder panic", "panic", fmt.Sprint(p))
			out = nil
		}
	}()
	v, ok := peekVersion(raw)
	if !ok {
		return nil
	}
	switch gosnmp.SnmpVersion(v) {
	case gosnmp.Version2c:
		return a.handleV2c(raw)
	case gosnmp.Version3:
		if a.tmpl == nil {
			return nil
		}
		return a.handleV3(raw)
	}
	return nil
}

func (a *snmpAgent) handleV2c(raw []byte) []byte {
	community := a.r.cfg.SNMPCommunity.Reveal()
	if community == "" {
		return nil
	}
	x := &gosnmp.GoSNMP{Version: gosnmp.Version2c, Logger: a.glog}
	pkt, err := x.SnmpDecodePacket(raw)
	if err != nil || pkt.Community != community {
		// Wrong communities are dropped without an answer, as agents do.
		return nil
	}
	vars, status, index, ok := a.respond(pkt)
	if !ok {
		return nil
	}
	out := &gosnmp.SnmpPacket{
		Version: gosnmp.Version2c, Community: pkt.Community, PDUType: gosnmp.GetResponse,
		RequestID: pkt.RequestID, Error: status, ErrorIndex: index, Variables: vars, Logger: a.glog,
	}
	b, err := out.MarshalMsg()
	if err != nil {
		a.r.logger.Warn("xt2sim: snmp answer cannot be encoded", "err", err)
		return nil
	}
	return b
}

func (a *snmpAgent) engineTime() uint32 { return uint32(a.r.uptime() / time.Second) }

func (a *snmpAgent) handleV3(raw []byte) []byte {
	x := &gosnmp.GoSNMP{
		Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel, MsgFlags: gosnmp.AuthPriv,
		SecurityParameters: a.tmpl.Copy(), Logger: a.glog,
	}
	pkt, err := x.UnmarshalTrap(slices.Clone(raw), true)
	if err != nil {
		// Work out why, from the header alone, to send the right report.
		hdr, _ := x.SnmpDecodePacket(slices.Clone(raw))
		if hdr == nil || hdr.SecurityParameters == nil {
			return nil
		}
		usp, ok := hdr.SecurityParameters.(*gosnmp.UsmSecurityParameters)
		if !ok || hdr.MsgFlags&gosnmp.Reportable == 0 {
			return nil
		}
		switch {
		case usp.UserName != a.tmpl.UserName:
			return a.report(hdr, usmStatsUnknownUserNames, 2, gosnmp.NoAuthNoPriv)
		case usp.AuthoritativeEngineID != a.engineID:
			return a.report(hdr, usmStatsUnknownEngineIDs, 3, gosnmp.NoAuthNoPriv)
		case hdr.MsgFlags&gosnmp.AuthPriv != gosnmp.AuthPriv:
			return a.report(hdr, usmStatsUnsupportedSecLevels, 0, gosnmp.NoAuthNoPriv)
		}
		return a.report(hdr, usmStatsWrongDigests, 4, gosnmp.NoAuthNoPriv)
	}
	usp, ok := pkt.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	if !ok {
		return nil
	}
	switch {
	case usp.UserName == "" || usp.AuthoritativeEngineID == "":
		// Engine discovery (RFC 3414 section 4).
		return a.report(pkt, usmStatsUnknownEngineIDs, 3, gosnmp.NoAuthNoPriv)
	case usp.AuthoritativeEngineID != a.engineID:
		return a.report(pkt, usmStatsUnknownEngineIDs, 3, gosnmp.NoAuthNoPriv)
	case pkt.MsgFlags&gosnmp.AuthPriv != gosnmp.AuthPriv:
		return a.report(pkt, usmStatsUnsupportedSecLevels, 0, gosnmp.NoAuthNoPriv)
	}
	now := a.engineTime()
	if usp.AuthoritativeEngineBoots != a.boots || absDiff(usp.AuthoritativeEngineTime, now) > timeWindow {
		return a.report(pkt, usmStatsNotInTimeWindows, 1, gosnmp.AuthNoPriv)
	}
	vars, status, index, ok := a.respond(pkt)
	if !ok {
		return nil
	}
	return a.marshalV3(pkt, gosnmp.GetResponse, gosnmp.AuthPriv, status, index, vars)
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// report answers with a Report PDU carrying the counter oid.
func (a *snmpAgent) report(req *gosnmp.SnmpPacket, oid string, counter int, flags gosnmp.SnmpV3MsgFlags) []byte {
	n := a.reports[counter].Add(1)
	a.r.logger.Debug("xt2sim: snmpv3 report", "oid", oid)
	vars := []gosnmp.SnmpPDU{{Name: oid, Type: gosnmp.Counter32, Value: n}}
	return a.marshalV3(req, gosnmp.Report, flags, gosnmp.NoError, 0, vars)
}

func (a *snmpAgent) marshalV3(req *gosnmp.SnmpPacket, pdu gosnmp.PDUType, flags gosnmp.SnmpV3MsgFlags, status gosnmp.SNMPError, index uint8, vars []gosnmp.SnmpPDU) []byte {
	sp := &gosnmp.UsmSecurityParameters{
		AuthoritativeEngineID:    a.engineID,
		AuthoritativeEngineBoots: a.boots,
		AuthoritativeEngineTime:  a.engineTime(),
		AuthenticationProtocol:   gosnmp.NoAuth,
		PrivacyProtocol:          gosnmp.NoPriv,
		Logger:                   a.glog,
	}
	if usp, ok := req.SecurityParameters.(*gosnmp.UsmSecurityParameters); ok {
		sp.UserName = usp.UserName
	}
	if flags&gosnmp.AuthNoPriv != 0 {
		sp.UserName = a.tmpl.UserName
		sp.AuthenticationProtocol = a.tmpl.AuthenticationProtocol
		sp.SecretKey = a.tmpl.SecretKey
	}
	if flags&gosnmp.AuthPriv == gosnmp.AuthPriv {
		sp.PrivacyProtocol = a.tmpl.PrivacyProtocol
		sp.PrivacyKey = a.tmpl.PrivacyKey
		sp.PrivacyParameters = binary.BigEndian.AppendUint64(nil, a.saltCtr.Add(1))
	}
	out := &gosnmp.SnmpPacket{
		Version: gosnmp.Version3, MsgFlags: flags, SecurityModel: gosnmp.UserSecurityModel,
		SecurityParameters: sp, PDUType: pdu, MsgID: req.MsgID, RequestID: req.RequestID,
		ContextEngineID: a.engineID, ContextName: req.ContextName, MsgMaxSize: 65507,
		Error: status, ErrorIndex: index, Variables: vars, Logger: a.glog,
	}
	b, err := out.MarshalMsg()
	if err != nil {
		a.r.logger.Warn("xt2sim: snmpv3 answer cannot be encoded", "err", err)
		return nil
	}
	return b
}

// respond runs a Get, GetNext, GetBulk or Set against the MIB; ok is false
// for PDUs an agent does not answer.
func (a *snmpAgent) respond(req *gosnmp.SnmpPacket) (vars []gosnmp.SnmpPDU, status gosnmp.SNMPError, index uint8, ok bool) {
	mib := a.r.mib()
	oids := make([][]uint32, len(req.Variables))
	for i, v := range req.Variables {
		arcs, err := parseArcs(v.Name)
		if err != nil {
			return nil, gosnmp.GenErr, uint8(min(i+1, 255)), true
		}
		oids[i] = arcs
	}
	switch req.PDUType {
	case gosnmp.GetRequest:
		for i, o := range oids {
			vars = append(vars, get(mib, o, req.Variables[i].Name))
		}
	case gosnmp.GetNextRequest:
		for i, o := range oids {
			vars = append(vars, next(mib, o, req.Variables[i].Name))
		}
	case gosnmp.GetBulkRequest:
		nonRep := min(int(req.NonRepeaters), len(oids))
		for i := range nonRep {
			vars = append(vars, next(mib, oids[i], req.Variables[i].Name))
		}
		reps := oids[nonRep:]
		names := make([]string, len(reps))
		for i := range reps {
			names[i] = req.Variables[nonRep+i].Name
		}
		for r := 0; r < int(req.MaxRepetitions) && len(reps) > 0; r++ {
			if len(vars)+len(reps) > maxBulkVarbinds && r > 0 {
				break
			}
			allEnd := true
			for i, o := range reps {
				v := next(mib, o, names[i])
				vars = append(vars, v)
				if v.Type != gosnmp.EndOfMibView {
					allEnd = false
					reps[i], _ = parseArcs(v.Name)
					names[i] = v.Name
				}
			}
			if allEnd {
				break
			}
		}
	case gosnmp.SetRequest:
		vars = req.Variables
		return vars, gosnmp.NotWritable, 1, true
	default:
		return nil, 0, 0, false
	}
	return vars, gosnmp.NoError, 0, true
}

func get(mib []mibEntry, oid []uint32, name string) gosnmp.SnmpPDU {
	i, found := slices.BinarySearchFunc(mib, oid, func(e mibEntry, o []uint32) int { return slices.Compare(e.arcs, o) })
	if found {
		return mib[i].pdu
	}
	for _, e := range mib {
		if len(oid) >= e.objLen && slices.Equal(oid[:e.objLen], e.arcs[:e.objLen]) {
			return gosnmp.SnmpPDU{Name: name, Type: gosnmp.NoSuchInstance}
		}
	}
	return gosnmp.SnmpPDU{Name: name, Type: gosnmp.NoSuchObject}
}

func next(mib []mibEntry, oid []uint32, name string) gosnmp.SnmpPDU {
	i, found := slices.BinarySearchFunc(mib, oid, func(e mibEntry, o []uint32) int { return slices.Compare(e.arcs, o) })
	if found {
		i++
	}
	if i >= len(mib) {
		return gosnmp.SnmpPDU{Name: name, Type: gosnmp.EndOfMibView}
	}
	return mib[i].pdu
}

func parseArcs(s string) ([]uint32, error) {
	parts := strings.Split(strings.TrimPrefix(s, "."), ".")
	out := make([]uint32, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad OID %q", s)
		}
		out[i] = uint32(n)
	}
	return out, nil
}

func formatArcs(arcs []uint32) string {
	var sb strings.Builder
	for _, a := range arcs {
		sb.WriteByte('.')
		sb.WriteString(strconv.FormatUint(uint64(a), 10))
	}
	return sb.String()
}

// mibBuilder collects entries.
type mibBuilder struct{ entries []mibEntry }

// scalar adds object.0.
func (b *mibBuilder) scalar(object string, typ gosnmp.Asn1BER, v any) {
	arcs, _ := parseArcs(object)
	b.add(append(arcs, 0), len(arcs), typ, v)
}

// column adds entry.col.index.
func (b *mibBuilder) column(entry string, col, index int, typ gosnmp.Asn1BER, v any) {
	arcs, _ := parseArcs(entry)
	arcs = append(arcs, uint32(col))
	b.add(append(arcs, uint32(index)), len(arcs), typ, v)
}

func (b *mibBuilder) add(arcs []uint32, objLen int, typ gosnmp.Asn1BER, v any) {
	b.entries = append(b.entries, mibEntry{arcs: arcs, objLen: objLen, pdu: gosnmp.SnmpPDU{Name: formatArcs(arcs), Type: typ, Value: v}})
}

// mib builds the agent's object table from the router's current state,
// sorted by OID.
func (r *Router) mib() []mibEntry {
	var b mibBuilder
	st := r.State()
	ifs := r.interfaces()
	ticks := uint32(r.uptime() / (10 * time.Millisecond))

	b.scalar(oidSystem+".1", gosnmp.OctetString, "XT-2 Business Router "+r.cfg.Software)
	b.scalar(oidSystem+".2", gosnmp.ObjectIdentifier, SysObjectID)
	b.scalar(oidSystem+".3", gosnmp.TimeTicks, ticks)
	b.scalar(oidSystem+".4", gosnmp.OctetString, "noc@operator.example")
	b.scalar(oidSystem+".5", gosnmp.OctetString, r.sysname())
	b.scalar(oidSystem+".6", gosnmp.OctetString, "customer site")
	b.scalar(oidSystem+".7", gosnmp.Integer, 72)

	b.scalar(oidIfNumber, gosnmp.Integer, len(ifs))
	for _, f := range ifs {
		typ, mtu := 6, 1500 // ethernetCsmacd
		if f.name == dialerName {
			typ, mtu = 23, 1492 // ppp
		}
		oper, admin := 2, 1
		if f.up {
			oper = 1
		}
		if !f.admin {
			admin = 2
		}
		var mac []byte
		if f.mac != nil {
			mac = f.mac
		}
		speed := uint32(0)
		if f.up {
			speed = uint32(f.speed) * 1_000_000
		}
		b.column(oidIfEntry, 1, f.index, gosnmp.Integer, f.index)
		b.column(oidIfEntry, 2, f.index, gosnmp.OctetString, f.name)
		b.column(oidIfEntry, 3, f.index, gosnmp.Integer, typ)
		b.column(oidIfEntry, 4, f.index, gosnmp.Integer, mtu)
		b.column(oidIfEntry, 5, f.index, gosnmp.Gauge32, speed)
		b.column(oidIfEntry, 6, f.index, gosnmp.OctetString, mac)
		b.column(oidIfEntry, 7, f.index, gosnmp.Integer, admin)
		b.column(oidIfEntry, 8, f.index, gosnmp.Integer, oper)
		b.column(oidIfEntry, 9, f.index, gosnmp.TimeTicks, uint32(0))
		b.column(oidIfEntry, 10, f.index, gosnmp.Counter32, uint32(f.inOctets))
		b.column(oidIfEntry, 14, f.index, gosnmp.Counter32, f.inErrors)
		b.column(oidIfEntry, 16, f.index, gosnmp.Counter32, uint32(f.outOcts))
		b.column(oidIfEntry, 20, f.index, gosnmp.Counter32, uint32(0))

		high := uint32(0)
		if f.up {
			high = uint32(f.speed)
		}
		b.column(oidIfXEntry, 1, f.index, gosnmp.OctetString, f.name)
		b.column(oidIfXEntry, 6, f.index, gosnmp.Counter64, f.inOctets)
		b.column(oidIfXEntry, 10, f.index, gosnmp.Counter64, f.outOcts)
		b.column(oidIfXEntry, 15, f.index, gosnmp.Gauge32, high)
		b.column(oidIfXEntry, 18, f.index, gosnmp.OctetString, "")
	}

	ppp := 1
	switch st.PPP {
	case PPPUp:
		ppp = 3
	case PPPPADI:
		ppp = 2
	}
	addr := st.Address
	if addr == "" {
		addr = "0.0.0.0"
	}
	bound := 1
	if st.BBMSBound {
		bound = 2
	}
	b.scalar(oidXT2MIB+".1", gosnmp.Integer, ppp)
	b.scalar(oidXT2MIB+".2", gosnmp.OctetString, st.LastError)
	b.scalar(oidXT2MIB+".3", gosnmp.IPAddress, addr)
	b.scalar(oidXT2MIB+".4", gosnmp.Integer, bound)
	b.scalar(oidXT2MIB+".5", gosnmp.OctetString, st.BBMSCustomer)

	slices.SortFunc(b.entries, func(x, y mibEntry) int { return slices.Compare(x.arcs, y.arcs) })
	return b.entries
}
