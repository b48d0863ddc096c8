package speedtest

import (
	"net/url"
	"testing"
	"time"
)

// FuzzParseDownloadQuery feeds arbitrary /download query strings to the
// validator: it must never panic, and whatever it accepts must be within the
// server's limits.
func FuzzParseDownloadQuery(f *testing.F) {
	for _, seed := range []string{
		"", "duration=10s", "duration=2.5", "duration=1h", "duration=0", "duration=-1s", "duration=NaN",
		"duration=abc", "duration=1s&duration=2s", "bytes=0", "bytes=1000", "bytes=-5", "bytes=1.5",
		"bytes=99999999999999999999", "bytes=10&duration=1s", "duration=1e-300", "duration=9223372036s",
	} {
		f.Add(seed)
	}
	const maxDuration, maxBytes = 15 * time.Second, 1 << 30
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, err := parseDownloadQuery(q, maxDuration, maxBytes)
		if err != nil {
			return
		}
		if req.byBytes {
			if req.bytes < 0 || req.bytes > maxBytes {
				t.Fatalf("%q accepted with bytes %d", raw, req.bytes)
			}
			return
		}
		if req.duration <= 0 || req.duration > maxDuration {
			t.Fatalf("%q accepted with duration %v", raw, req.duration)
		}
	})
}
