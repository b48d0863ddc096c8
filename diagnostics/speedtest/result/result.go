// Package result holds the types that every speed test protocol returns: a
// Measurement per direction and the Progress samples reported while it runs.
//
// It is a leaf package so that both protocol packages can share one result
// type without an import cycle: package speedtest (the fieldagent HTTP
// protocol) serves package ndt7 on its mux, and package ndt7 returns these
// types. Package speedtest re-exports them as aliases (speedtest.Measurement
// is result.Measurement), so callers need not import this package.
package result

import (
	"math"
	"slices"
	"time"
)

// Directions reported in Measurement.Direction and Progress.Direction.
const (
	DirectionDownload = "download"
	DirectionUpload   = "upload"
)

// Progress is one throughput sample, passed to a client's Progress callback.
type Progress struct {
	// Direction is DirectionDownload or DirectionUpload.
	Direction string
	// Elapsed is the time since the transfer started.
	Elapsed time.Duration
	// Mbps is the rate over the last sample interval in Mbit/s (10^6 bit/s).
	Mbps float64
	// Bytes is the total moved so far, ramp-up included.
	Bytes int64
	// Streams is the number of streams now running (always 1 for ndt7).
	Streams int
	// RampUp is true while the sample is still in the excluded ramp-up.
	RampUp bool
}

// Measurement is the result of one direction of a speed test, whichever
// protocol measured it.
type Measurement struct {
	// Direction is DirectionDownload or DirectionUpload.
	Direction string
	// Mbps is Bytes over Duration in Mbit/s (10^6 bit/s), post-ramp-up only.
	Mbps float64
	// Bytes is the payload moved in the measurement window (after the
	// ramp-up). The HTTP client on linux counts at the TCP level what its
	// connections received (download) or had acknowledged (upload), HTTP
	// framing included; elsewhere what its streams read or wrote. The ndt7
	// client counts binary message bytes: received (download), or for an
	// upload as the server reports them (AppInfo.NumBytes).
	Bytes int64
	// TotalBytes is the payload moved in the whole test, ramp-up included.
	TotalBytes int64
	// Duration is the length of the measurement window.
	Duration time.Duration
	// Streams is the number of parallel streams at the end (1 for ndt7).
	Streams int
	// LatencyUnderLoadMs is the median round-trip time under load: for the
	// HTTP protocol, of small /healthz requests made during the measurement
	// window (the whole transfer if the window had none); for ndt7, of the
	// sender's smoothed TCP RTT (the server's TCPInfo.RTT for a download,
	// the client's own tcpi_rtt for an upload). 0 when nothing was measured.
	LatencyUnderLoadMs float64
	// IdleLatencyMs is the round-trip time without load: for the HTTP
	// protocol the median /healthz round trip before the transfer, for ndt7
	// the minimum TCP RTT of the connection (tcpi_min_rtt). 0 when unknown.
	IdleLatencyMs float64
	// LatencySamples is how many samples LatencyUnderLoadMs is the median of.
	LatencySamples int
	// Retransmits is the number of TCP segments the sender retransmitted
	// (tcpi_total_retrans), or -1 when unknown. For the HTTP protocol it is
	// the sum over the client's stream connections, so it is meaningful for
	// upload only (for download the server is the sender). For ndt7 it is the
	// server's TCPInfo.TotalRetrans for a download (when the server sends it)
	// and the client's own count for an upload.
	Retransmits int64
}

// Mbps returns bytes over d in Mbit/s (10^6 bit/s), or 0 when d <= 0.
func Mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) * 8 / d.Seconds() / 1e6
}

// Median returns the median of ds (mean of the middle two for even counts),
// 0 if empty. ds is not modified.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return time.Duration(math.Round(float64(s[mid-1]+s[mid]) / 2))
}
