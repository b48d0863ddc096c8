package cwmp

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalidValue means a value does not match its xsd type (see ValidateValue).
var ErrInvalidValue = errors.New("cwmp: value does not match its xsd type")

// ValidateValue reports whether value is a valid lexical form of the xsd type
// typ as TR-069 and TR-106 use them. typ may carry any prefix or none
// ("xsd:int", "xs:int", "int"); empty means xsd:string. Supported types:
// string (any valid UTF-8), int (32-bit), unsignedInt (32-bit), long,
// unsignedLong, boolean ("0", "1", "true", "false", any case), dateTime
// (RFC 3339 with or without zone and fraction, including the unknown-time
// marker "0001-01-01T00:00:00Z"), base64 and base64Binary (standard
// alphabet, padded, whitespace allowed), hexBinary (an even number of hex
// digits). Surrounding whitespace is ignored for every type but string, as
// the XML Schema whitespace rules say. An empty value is valid for string,
// base64 and hexBinary only.
//
// A value that does not fit returns an error wrapping ErrInvalidValue (a CPE
// answers fault 9007); a type this function does not know returns an error
// wrapping ErrUnsupported (a CPE usually answers 9006).
func ValidateValue(typ, value string) error {
	t := normType(typ)
	v := strings.TrimSpace(value)
	var ok bool
	switch t {
	case "xsd:string":
		ok = utf8.ValidString(value)
	case "xsd:int":
		_, err := strconv.ParseInt(v, 10, 32)
		ok = err == nil
	case "xsd:unsignedInt":
		_, err := strconv.ParseUint(strings.TrimPrefix(v, "+"), 10, 32)
		ok = err == nil
	case "xsd:long":
		_, err := strconv.ParseInt(v, 10, 64)
		ok = err == nil
	case "xsd:unsignedLong":
		_, err := strconv.ParseUint(strings.TrimPrefix(v, "+"), 10, 64)
		ok = err == nil
	case "xsd:boolean":
		switch strings.ToLower(v) {
		case "0", "1", "true", "false":
			ok = true
		}
	case "xsd:dateTime":
		ok = validDateTime(v)
	case "xsd:base64", "xsd:base64Binary":
		_, err := base64.StdEncoding.DecodeString(stripSpace(v))
		ok = err == nil
	case "xsd:hexBinary":
		_, err := hex.DecodeString(v)
		ok = err == nil
	default:
		return fmt.Errorf("%w: xsd type %q", ErrUnsupported, truncate(typ, 64))
	}
	if !ok {
		return fmt.Errorf("%w: %q is not a valid %s", ErrInvalidValue, truncate(value, 64), t)
	}
	return nil
}

func validDateTime(v string) bool {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if _, err := time.Parse(layout, v); err == nil {
			return true
		}
	}
	return false
}

// stripSpace removes the XML whitespace that base64 text may be folded with.
func stripSpace(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
}
