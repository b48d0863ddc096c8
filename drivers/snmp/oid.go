package snmp

import (
	"fmt"
	"strconv"
	"strings"
)

// maxOIDArcs is the SMI limit on sub-identifiers (RFC 2578 section 3.5).
const maxOIDArcs = 128

// parseOID parses a numeric OID ("1.3.6.1" or ".1.3.6.1") into its arcs.
// It accepts at least two arcs, each a decimal number that fits 32 bits.
func parseOID(s string) ([]uint32, error) {
	t := strings.TrimPrefix(s, ".")
	if t == "" {
		return nil, fmt.Errorf("OID %q is empty", s)
	}
	parts := strings.Split(t, ".")
	if len(parts) < 2 || len(parts) > maxOIDArcs {
		return nil, fmt.Errorf("OID %q must have 2 to %d arcs", s, maxOIDArcs)
	}
	arcs := make([]uint32, len(parts))
	for i, p := range parts {
		if p == "" || p[0] == '+' || p[0] == '-' {
			return nil, fmt.Errorf("OID %q has an empty or signed arc", s)
		}
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("OID %q: arc %q is not a 32-bit number", s, p)
		}
		arcs[i] = uint32(n)
	}
	if arcs[0] > 2 || (arcs[0] < 2 && arcs[1] > 39) {
		return nil, fmt.Errorf("OID %q does not start with a valid first two arcs", s)
	}
	return arcs, nil
}

// formatOID renders arcs with a leading dot.
func formatOID(arcs []uint32) string {
	var sb strings.Builder
	for _, a := range arcs {
		sb.WriteByte('.')
		sb.WriteString(strconv.FormatUint(uint64(a), 10))
	}
	return sb.String()
}

// normalizeOID checks a caller's OID and returns it in canonical form
// (leading dot, no leading zeros). Symbolic names are not resolved.
func normalizeOID(s string) (string, error) {
	arcs, err := parseOID(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%w: %w (give numeric OIDs such as .1.3.6.1.2.1.1.5.0)", ErrInvalidOID, err)
	}
	return formatOID(arcs), nil
}

// compareOID orders OIDs lexicographically by arc, as agents do.
func compareOID(a, b []uint32) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		switch {
		case a[i] < b[i]:
			return -1
		case a[i] > b[i]:
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// hasPrefix reports whether oid lies in the subtree rooted at root (root
// itself included).
func hasPrefix(oid, root []uint32) bool {
	if len(oid) < len(root) {
		return false
	}
	return compareOID(oid[:len(root)], root) == 0
}
