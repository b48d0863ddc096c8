package drivers

import (
	"context"
	"fmt"
	"time"
)

// DefaultDiagnosticsTimeout bounds a device-side test (request, run,
// results) when its options set no Deadline.
const DefaultDiagnosticsTimeout = 3 * time.Minute

// Diagnostics tests, as DiagnosticsError.Test and TransferResult.Direction
// name them.
const (
	TestDownload   = "download"
	TestUpload     = "upload"
	TestPing       = "ping"
	TestTraceRoute = "traceroute"
)

// Pinger sends pings from the device itself.
type Pinger interface {
	Ping(ctx context.Context, host string, opts PingOptions) (PingResult, error)
}

// DownloadTester measures a download the device itself makes (a TR-143
// DownloadDiagnostics on a gateway).
type DownloadTester interface {
	DownloadTest(ctx context.Context, url string, opts TransferOptions) (TransferResult, error)
}

// UploadTester measures an upload of size bytes the device itself makes.
type UploadTester interface {
	UploadTest(ctx context.Context, url string, size int64, opts TransferOptions) (TransferResult, error)
}

// TraceRouter traces the route from the device to a host.
type TraceRouter interface {
	TraceRoute(ctx context.Context, host string, opts TraceOptions) (TraceResult, error)
}

// GatewayTester runs every gateway-side test: the TR-143 / TR-098
// diagnostics of a TR-069 gateway.
type GatewayTester interface {
	Pinger
	DownloadTester
	UploadTester
	TraceRouter
}

// TransferOptions tunes a download or upload test. The zero value is one
// connection, unmarked traffic over the device's default route, and
// DefaultDiagnosticsTimeout.
type TransferOptions struct {
	// Connections is how many TCP connections run the transfer in
	// parallel; 0 means 1.
	Connections int
	// PerConnection asks the device for every connection's results too.
	PerConnection bool
	// DSCP (0-63) and EthernetPriority (0-7) mark the test traffic.
	DSCP, EthernetPriority int
	// Interface is the device's interface to test over (a data model path
	// on a gateway); "" lets the device route.
	Interface string
	// Deadline bounds the whole test, waiting for the device included; 0
	// means DefaultDiagnosticsTimeout.
	Deadline time.Duration
}

// TransferResult is a download or upload test as the device measured it.
// Times are the device's (TR-143: TCPOpenRequest < TCPOpenResponse < ROM
// ≤ BOM < EOM).
type TransferResult struct {
	// Direction is TestDownload or TestUpload.
	Direction string `json:"direction"`
	URL       string `json:"url"`
	// Bytes is the test traffic between BOM and EOM: on a TR-143 gateway
	// TestBytesReceived or TestBytesSent (HTTP headers included), on a
	// router that reports file bytes only (the XT-2) those.
	Bytes int64 `json:"bytes"`
	// TotalBytes is what the interface carried in the test's direction
	// meanwhile (TotalBytesReceived or TotalBytesSent); 0 if not reported.
	TotalBytes int64 `json:"total_bytes,omitempty"`
	// Connections is how many connections the test asked for.
	Connections     int       `json:"connections"`
	TCPOpenRequest  time.Time `json:"tcp_open_request"`
	TCPOpenResponse time.Time `json:"tcp_open_response"`
	// ROM is when the request went out, BOM when the first data moved,
	// EOM when the last did. Devices that do not report them (the XT-2)
	// leave the times zero and set only Duration.
	ROM time.Time `json:"rom"`
	BOM time.Time `json:"bom"`
	EOM time.Time `json:"eom"`
	// Duration is EOM − BOM.
	Duration time.Duration `json:"duration_ns"`
	// FullLoadingBytes moved during FullLoadingPeriod, while every
	// connection was transferring (TR-143 Amendment 1); zero when the
	// device does not report it.
	FullLoadingBytes  int64         `json:"full_loading_bytes,omitempty"`
	FullLoadingPeriod time.Duration `json:"full_loading_period_ns,omitempty"`
	// Mbps is the throughput in Mbit/s (10⁶ bit/s): FullLoadingBytes over
	// FullLoadingPeriod for a test with several connections that reports
	// them, else Bytes over Duration.
	Mbps float64 `json:"mbps"`
	// PerConnection holds every connection's results when asked for.
	PerConnection []TransferConnection `json:"per_connection,omitempty"`
}

// TransferConnection is one connection's share of a transfer test.
type TransferConnection struct {
	Bytes           int64     `json:"bytes"`
	TotalBytes      int64     `json:"total_bytes,omitempty"`
	TCPOpenRequest  time.Time `json:"tcp_open_request"`
	TCPOpenResponse time.Time `json:"tcp_open_response"`
	ROM             time.Time `json:"rom"`
	BOM             time.Time `json:"bom"`
	EOM             time.Time `json:"eom"`
}

// Rate returns bytes over d in Mbit/s, 0 when d is not positive.
func Rate(bytes int64, d time.Duration) float64 {
	if d <= 0 || bytes <= 0 {
		return 0
	}
	return float64(bytes) * 8 / d.Seconds() / 1e6
}

// PingOptions tunes a ping from the device. The zero value is the device's
// defaults for count, timeout and size, and DefaultDiagnosticsTimeout.
type PingOptions struct {
	// Count is how many echo requests to send; 0 means the device's default.
	Count int
	// Timeout is how long to wait for each reply; 0 means the device's
	// default (whole milliseconds on a TR-069 gateway).
	Timeout time.Duration
	// Size is the data block size in bytes; 0 means the device's default.
	Size int
	// DSCP (0-63) marks the requests.
	DSCP int
	// Interface is the device's interface to ping over; "" lets it route.
	Interface string
	// Deadline bounds the whole test, waiting for the device included; 0
	// means DefaultDiagnosticsTimeout.
	Deadline time.Duration
}

// PingResult is the outcome of a ping from the device.
type PingResult struct {
	Host     string `json:"host"`
	Sent     int    `json:"sent"`
	Received int    `json:"received"`
	// Min, Avg and Max are over the replies; zero when none came back.
	Min time.Duration `json:"min_ns"`
	Avg time.Duration `json:"avg_ns"`
	Max time.Duration `json:"max_ns"`
}

// Loss returns the fraction of requests without a reply (0 to 1); 0 when
// none was sent.
func (r PingResult) Loss() float64 {
	if r.Sent <= 0 {
		return 0
	}
	return float64(r.Sent-r.Received) / float64(r.Sent)
}

// TraceOptions tunes a trace route from the device. The zero value is the
// device's defaults and DefaultDiagnosticsTimeout.
type TraceOptions struct {
	// MaxHops is the hop limit; 0 means the device's default.
	MaxHops int
	// Tries is how many probes each hop gets; 0 means the device's default.
	Tries int
	// Timeout is how long to wait for each probe; 0 means the device's default.
	Timeout time.Duration
	// Size (bytes) and DSCP shape the probes; 0 means the device's default.
	Size, DSCP int
	// Interface is the device's interface to trace over; "" lets it route.
	Interface string
	// Deadline bounds the whole test, waiting for the device included; 0
	// means DefaultDiagnosticsTimeout.
	Deadline time.Duration
}

// TraceHop is one router (or the destination) on the route.
type TraceHop struct {
	// Host is the hop's name, or its address when it has none.
	Host    string `json:"host"`
	Address string `json:"address"`
	// RTTs are the round trips of the probes that came back.
	RTTs []time.Duration `json:"rtts_ns,omitempty"`
	// ErrorCode is the ICMP error the hop answered with; 0 for none.
	ErrorCode int `json:"error_code,omitempty"`
}

// TraceResult is the route from the device to Host.
type TraceResult struct {
	Host string     `json:"host"`
	Hops []TraceHop `json:"hops"`
	// ResponseTime is the destination's response time.
	ResponseTime time.Duration `json:"response_time_ns"`
}

// DiagnosticsError is a device-side test that ended in an error state. It
// matches ErrDiagnostics.
type DiagnosticsError struct {
	// Test is TestDownload, TestUpload, TestPing or TestTraceRoute.
	Test string
	// Target is the URL or host tested.
	Target string
	// State is the device's final state, e.g. "Error_CannotResolveHostName"
	// (TR-143 / TR-098 names), or "None" for a test that something else
	// stopped.
	State string
}

// Error says what failed and what to check.
func (e *DiagnosticsError) Error() string {
	return fmt.Sprintf("%s test to %s: the device reports %s: %s", e.Test, e.Target, e.State, diagnosticsHint(e.State))
}

// Unwrap returns ErrDiagnostics.
func (e *DiagnosticsError) Unwrap() error { return ErrDiagnostics }

func diagnosticsHint(state string) string {
	switch state {
	case "Error_CannotResolveHostName":
		return "it cannot resolve the host name: check the name, the WAN connection and the DNS servers"
	case "Error_InitConnectionFailed":
		return "it could not connect to the server: check the URL (HTTP only), the WAN connection and that the server is up"
	case "Error_NoRouteToHost":
		return "it has no route to the server: check the WAN connection"
	case "Error_NoResponse":
		return "the server did not answer: check that the server is up"
	case "Error_TransferFailed":
		return "the server refused the file or the transfer broke off: check the URL"
	case "Error_IncorrectSize":
		return "the file arrived with the wrong size: run the test again"
	case "Error_NoTransferComplete":
		return "the server did not accept the upload: check the URL and that the server takes HTTP PUT"
	case "Error_Timeout":
		return "the test did not finish in time: check the line speed or use a smaller file"
	case "Error_MaxHopCountExceeded":
		return "the destination was not reached within the hop limit: check the route or raise the limit"
	case "Error_Internal", "Error_Other":
		return "the device failed to run the test: run it again or restart the device"
	case "None":
		return "the test was stopped before it finished (another request changed its parameters): run it again"
	}
	return "the test failed"
}
