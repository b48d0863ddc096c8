package ndt7

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzParseMessage feeds arbitrary text-frame payloads to the measurement
// parser: it must never panic; what it rejects wraps ErrProtocol; what it
// accepts holds no negative count or time and survives a JSON round trip
// unchanged. Seeds: the table of TestParseMessage, plus testdata/fuzz.
func FuzzParseMessage(f *testing.F) {
	for _, tc := range messageCases {
		if len(tc.in) <= 4096 { // the 64 KiB case would slow every mutation of it; the table test has it
			f.Add([]byte(tc.in))
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseMessage(raw)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("%q: error %v does not wrap ErrProtocol", raw, err)
			}
			return
		}
		if err := m.validate(); err != nil {
			t.Fatalf("%q accepted but invalid: %v", raw, err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("%q accepted but does not encode: %v", raw, err)
		}
		// Decode directly: escaping may make the encoding longer than the
		// 64 KiB that ParseMessage accepts.
		var again Message
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("%q: re-decoding %s: %v", raw, b, err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("%q: round trip changed the message:\n%s\n%s", raw, dump(m), dump(again))
		}
	})
}
