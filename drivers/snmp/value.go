package snmp

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"
)

// Value is one object read from an agent.
type Value struct {
	// OID is the numeric object identifier with a leading dot.
	OID string
	// Type is the SMI type name: "Integer", "OctetString", "ObjectIdentifier",
	// "IPAddress", "Counter32", "Gauge32", "TimeTicks", "Opaque",
	// "Counter64", "Uinteger32", "OpaqueFloat", "OpaqueDouble", "Boolean",
	// "BitString", "Null", or an exception: "NoSuchObject",
	// "NoSuchInstance", "EndOfMibView".
	Type string
	// Raw is the decoded value: int64 for Integer; uint32 for Counter32,
	// Gauge32, TimeTicks (hundredths of a second) and Uinteger32; uint64 for
	// Counter64; []byte for OctetString, Opaque and BitString; string for
	// ObjectIdentifier (leading dot) and IPAddress; float32 or float64 for
	// the opaque floats; bool for Boolean; nil for Null and the exceptions.
	Raw any
}

// Type names used in Value.Type.
var typeNames = map[gosnmp.Asn1BER]string{
	gosnmp.Boolean:          "Boolean",
	gosnmp.Integer:          "Integer",
	gosnmp.BitString:        "BitString",
	gosnmp.OctetString:      "OctetString",
	gosnmp.Null:             "Null",
	gosnmp.ObjectIdentifier: "ObjectIdentifier",
	gosnmp.IPAddress:        "IPAddress",
	gosnmp.Counter32:        "Counter32",
	gosnmp.Gauge32:          "Gauge32",
	gosnmp.TimeTicks:        "TimeTicks",
	gosnmp.Opaque:           "Opaque",
	gosnmp.NsapAddress:      "NsapAddress",
	gosnmp.Counter64:        "Counter64",
	gosnmp.Uinteger32:       "Uinteger32",
	gosnmp.OpaqueFloat:      "OpaqueFloat",
	gosnmp.OpaqueDouble:     "OpaqueDouble",
	gosnmp.NoSuchObject:     "NoSuchObject",
	gosnmp.NoSuchInstance:   "NoSuchInstance",
	gosnmp.EndOfMibView:     "EndOfMibView",
}

// fromPDU converts a gosnmp varbind into a Value with the Raw types that
// Value documents, independent of how gosnmp happens to decode them.
func fromPDU(p gosnmp.SnmpPDU) Value {
	name, ok := typeNames[p.Type]
	if !ok {
		name = fmt.Sprintf("Type(0x%02x)", byte(p.Type))
	}
	v := Value{OID: p.Name, Type: name}
	if !strings.HasPrefix(v.OID, ".") {
		v.OID = "." + v.OID
	}
	switch p.Type {
	case gosnmp.Integer:
		if i, ok := toInt64(p.Value); ok {
			v.Raw = i
		}
	case gosnmp.Counter32, gosnmp.Gauge32, gosnmp.TimeTicks, gosnmp.Uinteger32:
		if u, ok := toUint64(p.Value); ok && u <= math.MaxUint32 {
			v.Raw = uint32(u)
		}
	case gosnmp.Counter64:
		if u, ok := toUint64(p.Value); ok {
			v.Raw = u
		}
	case gosnmp.OctetString, gosnmp.Opaque, gosnmp.BitString, gosnmp.NsapAddress:
		switch b := p.Value.(type) {
		case []byte:
			v.Raw = append([]byte(nil), b...)
		case string:
			v.Raw = []byte(b)
		}
	case gosnmp.ObjectIdentifier:
		if s, ok := p.Value.(string); ok {
			if !strings.HasPrefix(s, ".") {
				s = "." + s
			}
			v.Raw = s
		}
	case gosnmp.IPAddress:
		if s, ok := p.Value.(string); ok {
			v.Raw = s
		}
	case gosnmp.OpaqueFloat, gosnmp.OpaqueDouble, gosnmp.Boolean:
		v.Raw = p.Value
	}
	return v
}

func toInt64(x any) (int64, bool) {
	switch n := x.(type) {
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint32:
		return int64(n), true
	case uint:
		if uint64(n) > math.MaxInt64 {
			return 0, false
		}
		return int64(n), true
	}
	return 0, false
}

func toUint64(x any) (uint64, bool) {
	switch n := x.(type) {
	case uint:
		return uint64(n), true
	case uint32:
		return uint64(n), true
	case uint64:
		return n, true
	case int:
		if n < 0 {
			return 0, false
		}
		return uint64(n), true
	case int64:
		if n < 0 {
			return 0, false
		}
		return uint64(n), true
	}
	return 0, false
}

// Uint64 returns the value as an unsigned number, for Counter32, Gauge32,
// TimeTicks, Uinteger32, Counter64 and non-negative Integer values. ok is
// false for every other type and for a negative Integer.
func (v Value) Uint64() (n uint64, ok bool) {
	switch r := v.Raw.(type) {
	case uint32:
		return uint64(r), true
	case uint64:
		return r, true
	case int64:
		if r >= 0 {
			return uint64(r), true
		}
	}
	return 0, false
}

// String renders the value for people: numbers in decimal (TimeTicks as
// hundredths of a second), OIDs with a leading dot, an OctetString as text
// when it is printable UTF-8 and as colon-separated hex ("00:1a:2b") when it
// is not (MAC addresses, binary), and exceptions as their type name.
func (v Value) String() string {
	switch r := v.Raw.(type) {
	case nil:
		return v.Type
	case []byte:
		if printable(r) {
			return string(trimTrailingNUL(r))
		}
		return hexColon(r)
	case string:
		return r
	case int64:
		return strconv.FormatInt(r, 10)
	case uint32:
		return strconv.FormatUint(uint64(r), 10)
	case uint64:
		return strconv.FormatUint(r, 10)
	case float32:
		return strconv.FormatFloat(float64(r), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(r, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(r)
	}
	return fmt.Sprint(v.Raw)
}

// printable reports whether b is UTF-8 text without control characters
// other than tab, CR and LF. A trailing NUL (some agents add one) is allowed.
func printable(b []byte) bool {
	b = trimTrailingNUL(b)
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\t' && r != '\r' && r != '\n' {
			return false
		}
	}
	return true
}

func trimTrailingNUL(b []byte) []byte {
	if len(b) > 1 && b[len(b)-1] == 0 {
		return b[:len(b)-1]
	}
	return b
}

func hexColon(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	s := hex.EncodeToString(b)
	var sb strings.Builder
	sb.Grow(len(b) * 3)
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(s[i : i+2])
	}
	return sb.String()
}
