// Package cwmp is a SOAP codec for the CPE WAN Management Protocol (TR-069
// Amendment 6, CWMP 1.0 to 1.4): the envelope with its cwmp headers (ID,
// HoldRequests, NoMoreRequests, SessionTimeout, SupportedCWMPVersions,
// UseCWMPVersion), every RPC of both method tables with its response (CPE
// methods GetRPCMethods to ScheduleDownload, ACS methods Inform,
// TransferComplete, AutonomousTransferComplete, RequestDownload and
// GetRPCMethods), and CWMP faults with the SetParameterValuesFault list.
// Methods that are not modelled (ChangeDUState, vendor methods) decode to
// Unknown.
//
// Decode is lenient in what it accepts (any SOAP and cwmp prefix, the five
// cwmp namespaces, values with or without xsi:type, arrays with or without
// soap-enc:arrayType, booleans as 0/1/true/false, GBK and GB2312 bodies) and
// bounded against hostile input (nesting depth, element, attribute and
// parameter counts). Encode writes strict SOAP 1.1 with typed values and
// array types. ValidateValue checks a value against its xsd type.
package cwmp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CWMP namespaces, one per protocol version.
const (
	NS10 = "urn:dslforum-org:cwmp-1-0" // NS10 is the CWMP 1.0 namespace (TR-069 Amendment 1).
	NS11 = "urn:dslforum-org:cwmp-1-1" // NS11 is the CWMP 1.1 namespace (Amendment 2).
	NS12 = "urn:dslforum-org:cwmp-1-2" // NS12 is the CWMP 1.2 namespace (Amendment 3).
	NS13 = "urn:dslforum-org:cwmp-1-3" // NS13 is the CWMP 1.3 namespace (Amendment 4).
	NS14 = "urn:dslforum-org:cwmp-1-4" // NS14 is the CWMP 1.4 namespace (Amendments 5 and 6).
)

// Namespaces of the SOAP envelope and the XML schema types that Encode declares.
const (
	NSSOAPEnv = "http://schemas.xmlsoap.org/soap/envelope/" // NSSOAPEnv is the SOAP 1.1 envelope namespace.
	NSSOAPEnc = "http://schemas.xmlsoap.org/soap/encoding/" // NSSOAPEnc is the SOAP 1.1 encoding namespace.
	NSXSD     = "http://www.w3.org/2001/XMLSchema"          // NSXSD is the XML Schema namespace.
	NSXSI     = "http://www.w3.org/2001/XMLSchema-instance" // NSXSI is the XML Schema instance namespace.
)

// Sentinel errors returned (wrapped) by Decode and Encode.
var (
	// ErrEmpty means the data holds no XML document (a CWMP empty POST).
	ErrEmpty = errors.New("cwmp: empty message")
	// ErrMalformed means the data is not a well-formed SOAP envelope carrying a CWMP message.
	ErrMalformed = errors.New("cwmp: malformed SOAP envelope")
	// ErrLimit means the message exceeds a Decoder limit (depth, elements,
	// attributes of one element, or array entries).
	ErrLimit = errors.New("cwmp: message exceeds decoder limit")
	// ErrNamespace means the message is not in one of the five cwmp namespaces.
	ErrNamespace = errors.New("cwmp: unknown cwmp namespace")
	// ErrUnsupported means Encode was given a Message type it does not know.
	ErrUnsupported = errors.New("cwmp: unsupported message type")
)

// KnownNamespace reports whether ns is one of NS10 to NS14.
func KnownNamespace(ns string) bool {
	switch ns {
	case NS10, NS11, NS12, NS13, NS14:
		return true
	}
	return false
}

// Message is a CWMP RPC request or response carried in a SOAP Body. Decode
// returns pointers (*Inform, *GetParameterValuesResponse, *Fault, ...);
// Encode accepts pointers and values.
type Message interface {
	// MethodName is the local name of the body element, e.g. "Inform".
	MethodName() string
}

// Envelope is one SOAP envelope with its cwmp header fields.
type Envelope struct {
	// Namespace is the cwmp namespace (NS10 to NS14). Decode sets the one the
	// peer used; Encode uses it, empty meaning NS10.
	Namespace string
	// ID is the cwmp:ID header, written with mustUnderstand="1"; empty omits it.
	ID string
	// HoldRequests is the cwmp:HoldRequests header (sent by an ACS).
	HoldRequests bool
	// NoMoreRequests is the deprecated cwmp:NoMoreRequests header.
	NoMoreRequests bool
	// SessionTimeout is the cwmp:SessionTimeout header (CWMP 1.3+, sent by
	// the CPE in the Inform envelope): the session timeout in seconds that
	// the CPE asks the ACS to use. 0 means the header is absent.
	SessionTimeout uint32
	// SupportedCWMPVersions is the cwmp:SupportedCWMPVersions header (CWMP
	// 1.4, sent by the CPE in the Inform envelope), a comma-separated list
	// such as "1.0,1.1,1.2,1.3,1.4". Empty means the header is absent.
	SupportedCWMPVersions string
	// UseCWMPVersion is the cwmp:UseCWMPVersion header (CWMP 1.4, sent by the
	// ACS in the InformResponse envelope with mustUnderstand="1"), the
	// version chosen for the session, e.g. "1.4". Empty means absent.
	UseCWMPVersion string
	// Body is the message; nil is an empty SOAP Body.
	Body Message
}

// ParameterValueStruct is a parameter name with its value and xsd type.
type ParameterValueStruct struct {
	Name  string
	Value string
	// Type is the xsi:type, e.g. "xsd:string", "xsd:unsignedInt",
	// "xsd:boolean", "xsd:int", "xsd:dateTime", "xsd:base64". Empty encodes
	// as "xsd:string"; Decode always sets it ("xsd:string" when the peer
	// sent none).
	Type string
}

// DeviceIdStruct identifies a CPE in an Inform.
type DeviceIdStruct struct {
	Manufacturer string
	OUI          string
	ProductClass string
	SerialNumber string
}

// EventStruct is an Inform event, e.g. {"1 BOOT", ""} or {"M Reboot", key}.
type EventStruct struct {
	EventCode  string
	CommandKey string
}

// Inform opens a session (CPE to ACS).
type Inform struct {
	DeviceId      DeviceIdStruct
	Event         []EventStruct
	MaxEnvelopes  int
	CurrentTime   time.Time
	RetryCount    int
	ParameterList []ParameterValueStruct
}

// InformResponse answers an Inform (ACS to CPE).
type InformResponse struct{ MaxEnvelopes int }

// GetRPCMethods asks the peer for the methods it supports.
type GetRPCMethods struct{}

// GetRPCMethodsResponse lists supported method names.
type GetRPCMethodsResponse struct{ MethodList []string }

// GetParameterValues reads parameters; a name ending in "." reads a subtree.
type GetParameterValues struct{ ParameterNames []string }

// GetParameterValuesResponse carries the values read.
type GetParameterValuesResponse struct{ ParameterList []ParameterValueStruct }

// SetParameterValues writes parameters atomically.
type SetParameterValues struct {
	ParameterList []ParameterValueStruct
	ParameterKey  string
}

// SetParameterValuesResponse reports 0 (applied) or 1 (applied, not yet effective).
type SetParameterValuesResponse struct{ Status int }

// GetParameterNames lists parameter and object names under ParameterPath.
type GetParameterNames struct {
	ParameterPath string
	NextLevel     bool
}

// ParameterInfoStruct is one name (objects end in ".") with its writability.
type ParameterInfoStruct struct {
	Name     string
	Writable bool
}

// GetParameterNamesResponse carries the names found.
type GetParameterNamesResponse struct{ ParameterList []ParameterInfoStruct }

// AddObject creates an instance of a multi-instance object ("X.Y." path).
type AddObject struct{ ObjectName, ParameterKey string }

// AddObjectResponse gives the new instance number.
type AddObjectResponse struct {
	InstanceNumber uint32
	Status         int
}

// DeleteObject removes an object instance ("X.Y.3." path).
type DeleteObject struct{ ObjectName, ParameterKey string }

// DeleteObjectResponse reports 0 (done) or 1 (done, not yet effective).
type DeleteObjectResponse struct{ Status int }

// Reboot asks the CPE to reboot after the session ends.
type Reboot struct{ CommandKey string }

// RebootResponse acknowledges a Reboot.
type RebootResponse struct{}

// FactoryReset asks the CPE to reset to factory defaults after the session.
type FactoryReset struct{}

// FactoryResetResponse acknowledges a FactoryReset.
type FactoryResetResponse struct{}

// Download asks the CPE to fetch a file (firmware, configuration).
// Password is a protocol field: never log a Download value.
type Download struct {
	CommandKey     string
	FileType       string
	URL            string
	Username       string
	Password       string
	FileSize       uint32
	TargetFileName string
	DelaySeconds   uint32
	SuccessURL     string
	FailureURL     string
}

// DownloadResponse reports Status 0 (done, times valid) or 1 (started; a
// TransferComplete follows later).
type DownloadResponse struct {
	Status       int
	StartTime    time.Time
	CompleteTime time.Time
}

// TransferComplete reports the end of a Download or Upload (CPE to ACS).
type TransferComplete struct {
	CommandKey   string
	FaultStruct  FaultStruct
	StartTime    time.Time
	CompleteTime time.Time
}

// TransferCompleteResponse acknowledges a TransferComplete.
type TransferCompleteResponse struct{}

// FaultStruct is the outcome of a transfer; FaultCode 0 is success.
type FaultStruct struct {
	FaultCode   int
	FaultString string
}

// SetParameterValuesFault names one parameter that a SetParameterValues rejected.
type SetParameterValuesFault struct {
	ParameterName string
	FaultCode     int
	FaultString   string
}

// Unknown is a method that this package does not model (e.g. ChangeDUState,
// GetOptions, SetVouchers, Kicked or a vendor's X_ method). Decode returns it with the body
// element's local name so that a peer can answer with a fault; Encode writes
// an empty element of that name.
type Unknown struct{ Name string }

// Fault is a CWMP fault, carried in the detail of a SOAP Fault. *Fault is
// both a Message (a response to a failed request) and an error.
type Fault struct {
	Code                     int
	String                   string
	SetParameterValuesFaults []SetParameterValuesFault
}

// CWMP fault codes (TR-069 Amendment 6, Table A.5): 8xxx from the ACS, 9xxx from the CPE.
const (
	FaultACSMethodNotSupported        = 8000 // FaultACSMethodNotSupported: the ACS does not support the method.
	FaultACSRequestDenied             = 8001 // FaultACSRequestDenied: request denied, no reason given.
	FaultACSInternalError             = 8002 // FaultACSInternalError: internal error in the ACS.
	FaultACSInvalidArguments          = 8003 // FaultACSInvalidArguments: invalid arguments.
	FaultACSResourcesExceeded         = 8004 // FaultACSResourcesExceeded: resources exceeded.
	FaultACSRetryRequest              = 8005 // FaultACSRetryRequest: retry the request later.
	FaultACSVersionIncompatible       = 8006 // FaultACSVersionIncompatible: ACS version incompatible with the CPE.
	FaultMethodNotSupported           = 9000 // FaultMethodNotSupported: the CPE does not support the method.
	FaultRequestDenied                = 9001 // FaultRequestDenied: request denied, no reason given.
	FaultInternalError                = 9002 // FaultInternalError: internal error in the CPE.
	FaultInvalidArguments             = 9003 // FaultInvalidArguments: invalid arguments.
	FaultResourcesExceeded            = 9004 // FaultResourcesExceeded: resources exceeded.
	FaultInvalidParameterName         = 9005 // FaultInvalidParameterName: no such parameter.
	FaultInvalidParameterType         = 9006 // FaultInvalidParameterType: wrong type for the parameter.
	FaultInvalidParameterValue        = 9007 // FaultInvalidParameterValue: value not accepted.
	FaultNonWritableParameter         = 9008 // FaultNonWritableParameter: attempt to set a read-only parameter.
	FaultNotificationRejected         = 9009 // FaultNotificationRejected: notification request rejected.
	FaultDownloadFailure              = 9010 // FaultDownloadFailure: download failure.
	FaultUploadFailure                = 9011 // FaultUploadFailure: upload failure.
	FaultFileTransferAuthFailure      = 9012 // FaultFileTransferAuthFailure: file transfer server authentication failure.
	FaultUnsupportedTransferProtocol  = 9013 // FaultUnsupportedTransferProtocol: unsupported file transfer protocol.
	FaultDownloadMulticastJoinFailure = 9014 // FaultDownloadMulticastJoinFailure: unable to join multicast group.
	FaultDownloadContactServerFailure = 9015 // FaultDownloadContactServerFailure: unable to contact file server.
	FaultDownloadAccessFileFailure    = 9016 // FaultDownloadAccessFileFailure: unable to access file.
	FaultDownloadIncomplete           = 9017 // FaultDownloadIncomplete: unable to complete download.
	FaultDownloadCorrupted            = 9018 // FaultDownloadCorrupted: file corrupted.
	FaultDownloadFileAuthFailure      = 9019 // FaultDownloadFileAuthFailure: file authentication failure.
	FaultTransferTimeWindowFailure    = 9020 // FaultTransferTimeWindowFailure: download not completed within the ScheduleDownload time windows.
	FaultCancelTransferNotPermitted   = 9021 // FaultCancelTransferNotPermitted: CancelTransfer not permitted in the transfer's current state.
)

// FaultMeaning returns the standard meaning of a CWMP fault code in lower
// case, e.g. "invalid parameter value" for 9007, "vendor-specific" for
// 8800–8899 and 9800–9899, and "unknown fault code" otherwise.
func FaultMeaning(code int) string {
	// The standard fault strings of TR-069 Amendment 6 (Table A.5) and of
	// the CPEFaultCodeType/ACSFaultCodeType documentation in cwmp-1-2.xsd
	// and cwmp-1-4.xsd, in lower case.
	switch code {
	case 8000:
		return "method not supported"
	case 8001:
		return "request denied"
	case 8002:
		return "internal error"
	case 8003:
		return "invalid arguments"
	case 8004:
		return "resources exceeded"
	case 8005:
		return "retry request"
	case 8006:
		return "ACS version incompatible"
	case 9000:
		return "method not supported"
	case 9001:
		return "request denied"
	case 9002:
		return "internal error"
	case 9003:
		return "invalid arguments"
	case 9004:
		return "resources exceeded"
	case 9005:
		return "invalid parameter name"
	case 9006:
		return "invalid parameter type"
	case 9007:
		return "invalid parameter value"
	case 9008:
		return "attempt to set a non-writable parameter"
	case 9009:
		return "notification request rejected"
	case 9010:
		return "file transfer failure"
	case 9011:
		return "upload failure"
	case 9012:
		return "file transfer server authentication failure"
	case 9013:
		return "unsupported protocol for file transfer"
	case 9014:
		return "file transfer failure: unable to join multicast group"
	case 9015:
		return "file transfer failure: unable to contact file server"
	case 9016:
		return "file transfer failure: unable to access file"
	case 9017:
		return "file transfer failure: unable to complete download"
	case 9018:
		return "file transfer failure: file corrupted"
	case 9019:
		return "file transfer failure: file authentication failure"
	case 9020:
		return "file transfer failure: unable to complete download within specified time windows"
	case 9021:
		return "cancelation of file transfer not permitted in current transfer state"
	case 9022:
		return "invalid UUID format"
	case 9023:
		return "unknown execution environment"
	case 9024:
		return "disabled execution environment"
	case 9025:
		return "deployment unit to execution environment mismatch"
	case 9026:
		return "duplicate deployment unit"
	case 9027:
		return "system resources exceeded"
	case 9028:
		return "unknown deployment unit"
	case 9029:
		return "invalid deployment unit state"
	case 9030:
		return "invalid deployment unit update: downgrade not permitted"
	case 9031:
		return "invalid deployment unit update: version not specified"
	case 9032:
		return "invalid deployment unit update: version already exists"
	}
	if (code >= 8800 && code <= 8899) || (code >= 9800 && code <= 9899) {
		return "vendor-specific"
	}
	return "unknown fault code"
}

// faultIsClient reports whether TR-069 gives code the SOAP faultcode
// "Client" (the request was wrong) rather than "Server".
func faultIsClient(code int) bool {
	switch code {
	case 8003, 9003, 9005, 9006, 9007, 9008, 9021:
		return true
	}
	return false
}

// NewFault returns a fault with code and a message; an empty msg uses the
// code's standard meaning.
func NewFault(code int, msg string) *Fault {
	if msg == "" {
		msg = FaultMeaning(code)
	}
	return &Fault{Code: code, String: msg}
}

// Error returns e.g. `cwmp fault 9003 (invalid arguments): Invalid arguments;
// parameters: X.Y 9008 (attempt to set a non-writable parameter)`.
func (f *Fault) Error() string {
	var b strings.Builder
	b.WriteString("cwmp fault ")
	b.WriteString(strconv.Itoa(f.Code))
	b.WriteString(" (")
	b.WriteString(FaultMeaning(f.Code))
	b.WriteString(")")
	if f.String != "" {
		b.WriteString(": ")
		b.WriteString(f.String)
	}
	for i, p := range f.SetParameterValuesFaults {
		if i == 0 {
			b.WriteString("; parameters: ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d (%s)", p.ParameterName, p.FaultCode, FaultMeaning(p.FaultCode))
		if p.FaultString != "" {
			b.WriteString(" ")
			b.WriteString(p.FaultString)
		}
	}
	return b.String()
}

// MethodName implements Message.
func (Fault) MethodName() string { return "Fault" }

// MethodName implements Message.
func (Inform) MethodName() string { return "Inform" }

// MethodName implements Message.
func (InformResponse) MethodName() string { return "InformResponse" }

// MethodName implements Message.
func (GetRPCMethods) MethodName() string { return "GetRPCMethods" }

// MethodName implements Message.
func (GetRPCMethodsResponse) MethodName() string { return "GetRPCMethodsResponse" }

// MethodName implements Message.
func (GetParameterValues) MethodName() string { return "GetParameterValues" }

// MethodName implements Message.
func (GetParameterValuesResponse) MethodName() string { return "GetParameterValuesResponse" }

// MethodName implements Message.
func (SetParameterValues) MethodName() string { return "SetParameterValues" }

// MethodName implements Message.
func (SetParameterValuesResponse) MethodName() string { return "SetParameterValuesResponse" }

// MethodName implements Message.
func (GetParameterNames) MethodName() string { return "GetParameterNames" }

// MethodName implements Message.
func (GetParameterNamesResponse) MethodName() string { return "GetParameterNamesResponse" }

// MethodName implements Message.
func (AddObject) MethodName() string { return "AddObject" }

// MethodName implements Message.
func (AddObjectResponse) MethodName() string { return "AddObjectResponse" }

// MethodName implements Message.
func (DeleteObject) MethodName() string { return "DeleteObject" }

// MethodName implements Message.
func (DeleteObjectResponse) MethodName() string { return "DeleteObjectResponse" }

// MethodName implements Message.
func (Reboot) MethodName() string { return "Reboot" }

// MethodName implements Message.
func (RebootResponse) MethodName() string { return "RebootResponse" }

// MethodName implements Message.
func (FactoryReset) MethodName() string { return "FactoryReset" }

// MethodName implements Message.
func (FactoryResetResponse) MethodName() string { return "FactoryResetResponse" }

// MethodName implements Message.
func (Download) MethodName() string { return "Download" }

// MethodName implements Message.
func (DownloadResponse) MethodName() string { return "DownloadResponse" }

// MethodName implements Message.
func (TransferComplete) MethodName() string { return "TransferComplete" }

// MethodName implements Message.
func (TransferCompleteResponse) MethodName() string { return "TransferCompleteResponse" }

// MethodName implements Message.
func (u Unknown) MethodName() string { return u.Name }

// SetParameterAttributesStruct changes the attributes of one parameter, or
// of every parameter under a partial path ending in ".". Notification is
// applied only if NotificationChange is true, AccessList only if
// AccessListChange is true.
type SetParameterAttributesStruct struct {
	Name               string
	NotificationChange bool
	// Notification is 0 (off), 1 (passive), 2 (active) or, from CWMP 1.4,
	// 3 to 6 (lightweight notification variants).
	Notification     int
	AccessListChange bool
	// AccessList names who besides the ACS may write the parameter; the only
	// standard entry is "Subscriber". Empty means the ACS only.
	AccessList []string
}

// SetParameterAttributes changes notification and access attributes (ACS to CPE).
type SetParameterAttributes struct {
	ParameterList []SetParameterAttributesStruct
}

// SetParameterAttributesResponse acknowledges a SetParameterAttributes.
type SetParameterAttributesResponse struct{}

// GetParameterAttributes reads notification and access attributes; a name
// ending in "." reads a subtree.
type GetParameterAttributes struct{ ParameterNames []string }

// ParameterAttributeStruct is one parameter's attributes.
type ParameterAttributeStruct struct {
	Name         string
	Notification int
	AccessList   []string
}

// GetParameterAttributesResponse carries the attributes read.
type GetParameterAttributesResponse struct {
	ParameterList []ParameterAttributeStruct
}

// Upload asks the CPE to send a file (configuration, log) to URL.
// Password is a protocol field: never log an Upload value.
type Upload struct {
	CommandKey, FileType, URL, Username, Password string
	DelaySeconds                                  uint32
}

// UploadResponse reports Status 0 (done, times valid) or 1 (started; a
// TransferComplete follows later).
type UploadResponse struct {
	Status                  int
	StartTime, CompleteTime time.Time
}

// ScheduleInform asks the CPE to open a session after DelaySeconds with the
// event "3 SCHEDULED" and "M ScheduleInform" carrying CommandKey.
type ScheduleInform struct {
	DelaySeconds uint32
	CommandKey   string
}

// ScheduleInformResponse acknowledges a ScheduleInform.
type ScheduleInformResponse struct{}

// GetQueuedTransfers asks for the transfers the ACS requested that are
// not yet complete (deprecated by GetAllQueuedTransfers, still sent).
type GetQueuedTransfers struct{}

// QueuedTransferStruct is one queued transfer. State is 1 (not yet
// started), 2 (in progress) or 3 (completed, finishing).
type QueuedTransferStruct struct {
	CommandKey string
	State      int
}

// GetQueuedTransfersResponse lists queued transfers.
type GetQueuedTransfersResponse struct {
	TransferList []QueuedTransferStruct
}

// GetAllQueuedTransfers asks for every queued transfer, including those the
// CPE started on its own or at another source's request.
type GetAllQueuedTransfers struct{}

// AllQueuedTransferStruct is one queued transfer with its file. State is as
// in QueuedTransferStruct.
type AllQueuedTransferStruct struct {
	CommandKey     string
	State          int
	IsDownload     bool
	FileType       string
	FileSize       uint32
	TargetFileName string
}

// GetAllQueuedTransfersResponse lists queued transfers.
type GetAllQueuedTransfersResponse struct {
	TransferList []AllQueuedTransferStruct
}

// CancelTransfer asks the CPE to cancel the queued transfer with CommandKey;
// a CPE that cannot answers fault 9021.
type CancelTransfer struct{ CommandKey string }

// CancelTransferResponse acknowledges a CancelTransfer.
type CancelTransferResponse struct{}

// TimeWindowStruct is one window of a ScheduleDownload: WindowStart and
// WindowEnd are seconds from the CPE's receipt of the request, WindowMode is
// e.g. "1 At Any Time", "2 Immediately", "3 When Idle" or "4 Confirmation
// Needed", MaxRetries is -1 for unbounded.
type TimeWindowStruct struct {
	WindowStart, WindowEnd  uint32
	WindowMode, UserMessage string
	MaxRetries              int
}

// ScheduleDownload asks the CPE to fetch a file within one or two time
// windows. Password is a protocol field: never log a ScheduleDownload value.
type ScheduleDownload struct {
	CommandKey, FileType, URL, Username, Password string
	FileSize                                      uint32
	TargetFileName                                string
	TimeWindowList                                []TimeWindowStruct
}

// ScheduleDownloadResponse acknowledges a ScheduleDownload.
type ScheduleDownloadResponse struct{}

// AutonomousTransferComplete reports a transfer the ACS did not request
// (CPE to ACS, with event "10 AUTONOMOUS TRANSFER COMPLETE").
type AutonomousTransferComplete struct {
	AnnounceURL, TransferURL string
	IsDownload               bool
	FileType                 string
	FileSize                 uint32
	TargetFileName           string
	FaultStruct              FaultStruct
	StartTime, CompleteTime  time.Time
}

// AutonomousTransferCompleteResponse acknowledges an AutonomousTransferComplete.
type AutonomousTransferCompleteResponse struct{}

// ArgStruct is a name and value argument, e.g. of a RequestDownload.
type ArgStruct struct{ Name, Value string }

// RequestDownload asks the ACS for a file (CPE to ACS), e.g. FileType
// "1 Firmware Upgrade Image" with optional arguments.
type RequestDownload struct {
	FileType    string
	FileTypeArg []ArgStruct
}

// RequestDownloadResponse acknowledges a RequestDownload.
type RequestDownloadResponse struct{}

// MethodName implements Message.
func (SetParameterAttributes) MethodName() string { return "SetParameterAttributes" }

// MethodName implements Message.
func (SetParameterAttributesResponse) MethodName() string { return "SetParameterAttributesResponse" }

// MethodName implements Message.
func (GetParameterAttributes) MethodName() string { return "GetParameterAttributes" }

// MethodName implements Message.
func (GetParameterAttributesResponse) MethodName() string { return "GetParameterAttributesResponse" }

// MethodName implements Message.
func (Upload) MethodName() string { return "Upload" }

// MethodName implements Message.
func (UploadResponse) MethodName() string { return "UploadResponse" }

// MethodName implements Message.
func (ScheduleInform) MethodName() string { return "ScheduleInform" }

// MethodName implements Message.
func (ScheduleInformResponse) MethodName() string { return "ScheduleInformResponse" }

// MethodName implements Message.
func (GetQueuedTransfers) MethodName() string { return "GetQueuedTransfers" }

// MethodName implements Message.
func (GetQueuedTransfersResponse) MethodName() string { return "GetQueuedTransfersResponse" }

// MethodName implements Message.
func (GetAllQueuedTransfers) MethodName() string { return "GetAllQueuedTransfers" }

// MethodName implements Message.
func (GetAllQueuedTransfersResponse) MethodName() string { return "GetAllQueuedTransfersResponse" }

// MethodName implements Message.
func (CancelTransfer) MethodName() string { return "CancelTransfer" }

// MethodName implements Message.
func (CancelTransferResponse) MethodName() string { return "CancelTransferResponse" }

// MethodName implements Message.
func (ScheduleDownload) MethodName() string { return "ScheduleDownload" }

// MethodName implements Message.
func (ScheduleDownloadResponse) MethodName() string { return "ScheduleDownloadResponse" }

// MethodName implements Message.
func (AutonomousTransferComplete) MethodName() string { return "AutonomousTransferComplete" }

// MethodName implements Message.
func (AutonomousTransferCompleteResponse) MethodName() string {
	return "AutonomousTransferCompleteResponse"
}

// MethodName implements Message.
func (RequestDownload) MethodName() string { return "RequestDownload" }

// MethodName implements Message.
func (RequestDownloadResponse) MethodName() string { return "RequestDownloadResponse" }
