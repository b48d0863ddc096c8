package cwmp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// Default Decoder limits.
const (
	DefaultMaxDepth      = 64      // DefaultMaxDepth is the default element nesting limit.
	DefaultMaxElements   = 200000  // DefaultMaxElements is the default limit on elements in one message.
	DefaultMaxParameters = 10000   // DefaultMaxParameters is the default limit on array entries in one message.
	DefaultMaxAttributes = 64      // DefaultMaxAttributes is the default limit on attributes of one element.
	DefaultMaxBytes      = 1 << 20 // DefaultMaxBytes is the default message size limit (1 MiB), as TR-069 ACSs commonly use.
)

// Decoder decodes CWMP envelopes with limits. The zero value uses the defaults.
type Decoder struct {
	// MaxDepth bounds element nesting; 0 means DefaultMaxDepth.
	MaxDepth int
	// MaxElements bounds the number of elements; 0 means DefaultMaxElements.
	MaxElements int
	// MaxParameters bounds the entries of all arrays together (parameters,
	// names, events); 0 means DefaultMaxParameters.
	MaxParameters int
	// MaxAttributes bounds the attributes (namespace declarations
	// included) of any one element; 0 means DefaultMaxAttributes.
	MaxAttributes int
	// MaxBytes bounds the size of the message in bytes; 0 means
	// DefaultMaxBytes. An HTTP server should enforce the same limit while
	// reading the body (and answer 413): Decode only sees what was read.
	MaxBytes int
	// Charset, if set (e.g. "gbk" from an HTTP Content-Type), is used for a
	// body that declares no encoding and is not valid UTF-8.
	Charset string
}

// Decode decodes one envelope with the default limits. See Decoder.Decode.
func Decode(data []byte) (*Envelope, error) { return Decoder{}.Decode(data) }

// node is one element of the parsed document.
type node struct {
	name  xml.Name
	attrs []xml.Attr
	kids  []*node
	text  strings.Builder
}

func (n *node) child(local string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if strings.EqualFold(k.name.Local, local) {
			return k
		}
	}
	return nil
}

func (n *node) str(local string) string {
	c := n.child(local)
	if c == nil {
		return ""
	}
	return c.text.String()
}

func (n *node) trimmed(local string) string { return strings.TrimSpace(n.str(local)) }

func (n *node) attr(local string) string {
	for _, a := range n.attrs {
		if strings.EqualFold(a.Name.Local, local) && a.Name.Space != "xmlns" {
			return a.Value
		}
	}
	return ""
}

// Decode parses data as a SOAP envelope carrying one CWMP message. A SOAP
// Fault whose detail holds a cwmp Fault decodes to a *Fault body; a method
// this package does not model decodes to *Unknown. Errors wrap ErrEmpty,
// ErrMalformed, ErrLimit or ErrNamespace. Decode never panics.
func (d Decoder) Decode(data []byte) (env *Envelope, err error) {
	defer func() {
		if r := recover(); r != nil { // belt and braces: hostile input must never crash a server
			env, err = nil, fmt.Errorf("%w: internal decoder error: %v", ErrMalformed, r)
		}
	}()
	if d.MaxDepth <= 0 {
		d.MaxDepth = DefaultMaxDepth
	}
	if d.MaxElements <= 0 {
		d.MaxElements = DefaultMaxElements
	}
	if d.MaxParameters <= 0 {
		d.MaxParameters = DefaultMaxParameters
	}
	if d.MaxAttributes <= 0 {
		d.MaxAttributes = DefaultMaxAttributes
	}
	if d.MaxBytes <= 0 {
		d.MaxBytes = DefaultMaxBytes
	}
	if len(data) > d.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrLimit, len(data), d.MaxBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrEmpty
	}
	if d.Charset != "" && !utf8.Valid(data) && !bytes.HasPrefix(bytes.TrimSpace(data), []byte("<?xml")) {
		enc, err := lookupCharset(d.Charset)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if data, err = enc.NewDecoder().Bytes(data); err != nil {
			return nil, fmt.Errorf("%w: charset %s: %w", ErrMalformed, d.Charset, err)
		}
	}
	root, err := d.parse(data)
	if err != nil {
		return nil, err
	}
	return d.envelope(root)
}

func lookupCharset(label string) (encoding.Encoding, error) {
	if e, err := htmlindex.Get(label); err == nil && e != nil {
		return e, nil
	}
	e, err := ianaindex.IANA.Encoding(label)
	if err != nil || e == nil {
		return nil, fmt.Errorf("unsupported charset %q", label)
	}
	return e, nil
}

func charsetReader(label string, input io.Reader) (io.Reader, error) {
	e, err := lookupCharset(label)
	if err != nil {
		return nil, err
	}
	return e.NewDecoder().Reader(input), nil
}

func (d Decoder) parse(data []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.CharsetReader = charsetReader
	var (
		root  *node
		stack []*node
		count int
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= d.MaxDepth {
				return nil, fmt.Errorf("%w: nesting deeper than %d elements", ErrLimit, d.MaxDepth)
			}
			if len(t.Attr) > d.MaxAttributes {
				return nil, fmt.Errorf("%w: element %s has more than %d attributes", ErrLimit, truncate(t.Name.Local, 64), d.MaxAttributes)
			}
			count++
			if count > d.MaxElements {
				return nil, fmt.Errorf("%w: more than %d elements", ErrLimit, d.MaxElements)
			}
			n := &node{name: t.Name, attrs: t.Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("%w: more than one root element", ErrMalformed)
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, fmt.Errorf("%w: unexpected end element", ErrMalformed)
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: no root element", ErrMalformed)
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("%w: unexpected end of document", ErrMalformed)
	}
	return root, nil
}

// dstate carries per-message decoding state (the parameter budget).
type dstate struct {
	params, max int
	err         error
}

func (s *dstate) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// items returns the element children of an array element and charges them
// against the parameter budget.
func (s *dstate) items(arr *node) []*node {
	if arr == nil {
		return nil
	}
	s.params += len(arr.kids)
	if s.params > s.max {
		s.fail(fmt.Errorf("%w: more than %d array entries", ErrLimit, s.max))
		return nil
	}
	return arr.kids
}

func (s *dstate) int(n *node, local string) int {
	v := n.trimmed(local)
	if v == "" {
		return 0
	}
	i, err := strconv.Atoi(v)
	if err != nil {
		s.fail(fmt.Errorf("%w: %s is not an integer", ErrMalformed, local))
	}
	return i
}

func (s *dstate) uint32(n *node, local string) uint32 {
	v := n.trimmed(local)
	if v == "" {
		return 0
	}
	i, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		s.fail(fmt.Errorf("%w: %s is not an unsigned 32-bit integer", ErrMalformed, local))
	}
	return uint32(i)
}

// ParseBool parses an xsd:boolean as CPEs send it: "1", "0", "true", "false"
// (any case, surrounding space ignored).
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true":
		return true, nil
	case "0", "false", "":
		return false, nil
	}
	return false, fmt.Errorf("%w: %q is not a boolean", ErrMalformed, v)
}

func (s *dstate) bool(n *node, local string) bool {
	b, err := ParseBool(n.str(local))
	if err != nil {
		s.fail(err)
	}
	return b
}

// ParseTime parses an xsd:dateTime as CPEs send it (with or without zone and
// fraction). The unknown-time marker "0001-01-01T00:00:00Z" and anything
// unparseable give the zero time. A time without a zone is taken as UTC; a
// zero offset gives a UTC time and any other offset a fixed zone, never the
// machine's local zone, so that equal input gives equal values.
func ParseTime(v string) time.Time {
	v = strings.TrimSpace(v)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05"} {
		t, err := time.Parse(layout, v)
		if err == nil {
			if t.Year() <= 1 {
				return time.Time{}
			}
			_, off := t.Zone()
			switch {
			case off == 0:
				return t.UTC()
			case t.Location() == time.Local:
				return t.In(time.FixedZone("", off))
			}
			return t
		}
	}
	return time.Time{}
}

// normType turns an xsi:type value into "xsd:<local>", "xsd:string" if empty.
func normType(t string) string {
	t = strings.TrimSpace(t)
	if i := strings.LastIndexByte(t, ':'); i >= 0 {
		t = t[i+1:]
	}
	t = strings.TrimSpace(t)
	if t == "" {
		return "xsd:string"
	}
	return "xsd:" + t
}

// declaredNS returns the first CWMP namespace declared on n, or NS10.
func declaredNS(n *node) string {
	for _, a := range n.attrs {
		if (a.Name.Space == "xmlns" || a.Name.Local == "xmlns") && KnownNamespace(a.Value) {
			return a.Value
		}
	}
	return NS10
}

func (d Decoder) envelope(root *node) (*Envelope, error) {
	if root.name.Local != "Envelope" {
		return nil, fmt.Errorf("%w: root element is %s, not Envelope", ErrMalformed, root.name.Local)
	}
	body := root.child("Body")
	if body == nil {
		return nil, fmt.Errorf("%w: no SOAP Body", ErrMalformed)
	}
	env := &Envelope{}
	headerNS := ""
	if h := root.child("Header"); h != nil {
		for _, k := range h.kids {
			if KnownNamespace(k.name.Space) && headerNS == "" {
				headerNS = k.name.Space
			}
			switch strings.ToLower(k.name.Local) {
			case "id":
				env.ID = strings.TrimSpace(k.text.String())
			case "holdrequests":
				env.HoldRequests, _ = ParseBool(k.text.String())
			case "nomorerequests":
				env.NoMoreRequests, _ = ParseBool(k.text.String())
			case "sessiontimeout":
				// Lenient: a value that is not an unsignedInt reads as absent.
				if v, err := strconv.ParseUint(strings.TrimSpace(k.text.String()), 10, 32); err == nil {
					env.SessionTimeout = uint32(v)
				}
			case "supportedcwmpversions":
				env.SupportedCWMPVersions = strings.TrimSpace(k.text.String())
			case "usecwmpversion":
				env.UseCWMPVersion = strings.TrimSpace(k.text.String())
			}
		}
	}
	var method *node
	for _, k := range body.kids {
		method = k
		break
	}
	if method == nil {
		// An empty body (the CPE's "nothing more" POST answered by an ACS
		// in an envelope) names its version only in headers or in the
		// namespace declarations of the Envelope.
		env.Namespace = headerNS
		if env.Namespace == "" {
			env.Namespace = declaredNS(root)
		}
		return env, nil
	}
	s := &dstate{max: d.MaxParameters}
	ns := method.name.Space
	var msg Message
	if strings.EqualFold(method.name.Local, "Fault") && !KnownNamespace(ns) {
		cf := method.child("detail").child("Fault")
		if cf == nil {
			return nil, fmt.Errorf("%w: SOAP Fault without a cwmp Fault detail: %q", ErrMalformed, truncate(method.trimmed("faultstring"), 200))
		}
		ns = cf.name.Space
		msg = s.fault(cf)
	} else {
		msg = s.message(method)
	}
	if !KnownNamespace(ns) {
		ns = headerNS
	}
	if !KnownNamespace(ns) {
		return nil, fmt.Errorf("%w: %s is in namespace %q", ErrNamespace, method.name.Local, truncate(method.name.Space, 100))
	}
	if s.err != nil {
		return nil, fmt.Errorf("%s: %w", method.name.Local, s.err)
	}
	env.Namespace = ns
	env.Body = msg
	return env, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func (s *dstate) fault(n *node) *Fault {
	f := &Fault{Code: s.int(n, "FaultCode"), String: n.str("FaultString")}
	for _, k := range n.kids {
		if !strings.EqualFold(k.name.Local, "SetParameterValuesFault") {
			continue
		}
		s.params++
		if s.params > s.max {
			s.fail(fmt.Errorf("%w: more than %d parameter faults", ErrLimit, s.max))
			break
		}
		f.SetParameterValuesFaults = append(f.SetParameterValuesFaults, SetParameterValuesFault{
			ParameterName: n2s(k, "ParameterName"),
			FaultCode:     s.int(k, "FaultCode"),
			FaultString:   k.str("FaultString"),
		})
	}
	return f
}

func n2s(n *node, local string) string { return n.trimmed(local) }

func (s *dstate) pvs(arr *node) []ParameterValueStruct {
	var out []ParameterValueStruct
	for _, k := range s.items(arr) {
		v := k.child("Value")
		p := ParameterValueStruct{Name: k.trimmed("Name"), Type: "xsd:string"}
		if v != nil {
			p.Value = v.text.String()
			p.Type = normType(v.attr("type"))
		}
		out = append(out, p)
	}
	return out
}

func (s *dstate) strs(arr *node) []string {
	var out []string
	for _, k := range s.items(arr) {
		out = append(out, strings.TrimSpace(k.text.String()))
	}
	return out
}

func (s *dstate) message(n *node) Message {
	switch strings.ToLower(n.name.Local) {
	case "inform":
		m := &Inform{
			MaxEnvelopes: s.int(n, "MaxEnvelopes"),
			CurrentTime:  ParseTime(n.str("CurrentTime")),
			RetryCount:   s.int(n, "RetryCount"),
		}
		if id := n.child("DeviceId"); id != nil {
			m.DeviceId = DeviceIdStruct{
				Manufacturer: id.trimmed("Manufacturer"),
				OUI:          id.trimmed("OUI"),
				ProductClass: id.trimmed("ProductClass"),
				SerialNumber: id.trimmed("SerialNumber"),
			}
		}
		for _, k := range s.items(n.child("Event")) {
			m.Event = append(m.Event, EventStruct{EventCode: k.trimmed("EventCode"), CommandKey: k.str("CommandKey")})
		}
		m.ParameterList = s.pvs(n.child("ParameterList"))
		return m
	case "informresponse":
		return &InformResponse{MaxEnvelopes: s.int(n, "MaxEnvelopes")}
	case "getrpcmethods":
		return &GetRPCMethods{}
	case "getrpcmethodsresponse":
		return &GetRPCMethodsResponse{MethodList: s.strs(n.child("MethodList"))}
	case "getparametervalues":
		return &GetParameterValues{ParameterNames: s.strs(n.child("ParameterNames"))}
	case "getparametervaluesresponse":
		return &GetParameterValuesResponse{ParameterList: s.pvs(n.child("ParameterList"))}
	case "setparametervalues":
		return &SetParameterValues{ParameterList: s.pvs(n.child("ParameterList")), ParameterKey: n.str("ParameterKey")}
	case "setparametervaluesresponse":
		return &SetParameterValuesResponse{Status: s.int(n, "Status")}
	case "getparameternames":
		return &GetParameterNames{ParameterPath: n.trimmed("ParameterPath"), NextLevel: s.bool(n, "NextLevel")}
	case "getparameternamesresponse":
		m := &GetParameterNamesResponse{}
		for _, k := range s.items(n.child("ParameterList")) {
			m.ParameterList = append(m.ParameterList, ParameterInfoStruct{Name: k.trimmed("Name"), Writable: s.bool(k, "Writable")})
		}
		return m
	case "addobject":
		return &AddObject{ObjectName: n.trimmed("ObjectName"), ParameterKey: n.str("ParameterKey")}
	case "addobjectresponse":
		return &AddObjectResponse{InstanceNumber: s.uint32(n, "InstanceNumber"), Status: s.int(n, "Status")}
	case "deleteobject":
		return &DeleteObject{ObjectName: n.trimmed("ObjectName"), ParameterKey: n.str("ParameterKey")}
	case "deleteobjectresponse":
		return &DeleteObjectResponse{Status: s.int(n, "Status")}
	case "reboot":
		return &Reboot{CommandKey: n.str("CommandKey")}
	case "rebootresponse":
		return &RebootResponse{}
	case "factoryreset":
		return &FactoryReset{}
	case "factoryresetresponse":
		return &FactoryResetResponse{}
	case "download":
		return &Download{
			CommandKey:     n.str("CommandKey"),
			FileType:       n.trimmed("FileType"),
			URL:            n.trimmed("URL"),
			Username:       n.str("Username"),
			Password:       n.str("Password"),
			FileSize:       s.uint32(n, "FileSize"),
			TargetFileName: n.str("TargetFileName"),
			DelaySeconds:   s.uint32(n, "DelaySeconds"),
			SuccessURL:     n.trimmed("SuccessURL"),
			FailureURL:     n.trimmed("FailureURL"),
		}
	case "downloadresponse":
		return &DownloadResponse{Status: s.int(n, "Status"), StartTime: ParseTime(n.str("StartTime")), CompleteTime: ParseTime(n.str("CompleteTime"))}
	case "transfercomplete":
		m := &TransferComplete{CommandKey: n.str("CommandKey"), StartTime: ParseTime(n.str("StartTime")), CompleteTime: ParseTime(n.str("CompleteTime"))}
		if fs := n.child("FaultStruct"); fs != nil {
			m.FaultStruct = FaultStruct{FaultCode: s.int(fs, "FaultCode"), FaultString: fs.str("FaultString")}
		}
		return m
	case "transfercompleteresponse":
		return &TransferCompleteResponse{}
	case "setparameterattributes":
		m := &SetParameterAttributes{}
		for _, k := range s.items(n.child("ParameterList")) {
			m.ParameterList = append(m.ParameterList, SetParameterAttributesStruct{
				Name:               k.trimmed("Name"),
				NotificationChange: s.bool(k, "NotificationChange"),
				Notification:       s.int(k, "Notification"),
				AccessListChange:   s.bool(k, "AccessListChange"),
				AccessList:         s.strs(k.child("AccessList")),
			})
		}
		return m
	case "setparameterattributesresponse":
		return &SetParameterAttributesResponse{}
	case "getparameterattributes":
		return &GetParameterAttributes{ParameterNames: s.strs(n.child("ParameterNames"))}
	case "getparameterattributesresponse":
		m := &GetParameterAttributesResponse{}
		for _, k := range s.items(n.child("ParameterList")) {
			m.ParameterList = append(m.ParameterList, ParameterAttributeStruct{
				Name:         k.trimmed("Name"),
				Notification: s.int(k, "Notification"),
				AccessList:   s.strs(k.child("AccessList")),
			})
		}
		return m
	case "upload":
		return &Upload{
			CommandKey:   n.str("CommandKey"),
			FileType:     n.trimmed("FileType"),
			URL:          n.trimmed("URL"),
			Username:     n.str("Username"),
			Password:     n.str("Password"),
			DelaySeconds: s.uint32(n, "DelaySeconds"),
		}
	case "uploadresponse":
		return &UploadResponse{Status: s.int(n, "Status"), StartTime: ParseTime(n.str("StartTime")), CompleteTime: ParseTime(n.str("CompleteTime"))}
	case "scheduleinform":
		return &ScheduleInform{DelaySeconds: s.uint32(n, "DelaySeconds"), CommandKey: n.str("CommandKey")}
	case "scheduleinformresponse":
		return &ScheduleInformResponse{}
	case "getqueuedtransfers":
		return &GetQueuedTransfers{}
	case "getqueuedtransfersresponse":
		m := &GetQueuedTransfersResponse{}
		for _, k := range s.items(n.child("TransferList")) {
			m.TransferList = append(m.TransferList, QueuedTransferStruct{CommandKey: k.str("CommandKey"), State: s.int(k, "State")})
		}
		return m
	case "getallqueuedtransfers":
		return &GetAllQueuedTransfers{}
	case "getallqueuedtransfersresponse":
		m := &GetAllQueuedTransfersResponse{}
		for _, k := range s.items(n.child("TransferList")) {
			m.TransferList = append(m.TransferList, AllQueuedTransferStruct{
				CommandKey:     k.str("CommandKey"),
				State:          s.int(k, "State"),
				IsDownload:     s.bool(k, "IsDownload"),
				FileType:       k.trimmed("FileType"),
				FileSize:       s.uint32(k, "FileSize"),
				TargetFileName: k.str("TargetFileName"),
			})
		}
		return m
	case "canceltransfer":
		return &CancelTransfer{CommandKey: n.str("CommandKey")}
	case "canceltransferresponse":
		return &CancelTransferResponse{}
	case "scheduledownload":
		m := &ScheduleDownload{
			CommandKey:     n.str("CommandKey"),
			FileType:       n.trimmed("FileType"),
			URL:            n.trimmed("URL"),
			Username:       n.str("Username"),
			Password:       n.str("Password"),
			FileSize:       s.uint32(n, "FileSize"),
			TargetFileName: n.str("TargetFileName"),
		}
		for _, k := range s.items(n.child("TimeWindowList")) {
			m.TimeWindowList = append(m.TimeWindowList, TimeWindowStruct{
				WindowStart: s.uint32(k, "WindowStart"),
				WindowEnd:   s.uint32(k, "WindowEnd"),
				WindowMode:  k.trimmed("WindowMode"),
				UserMessage: k.str("UserMessage"),
				MaxRetries:  s.int(k, "MaxRetries"),
			})
		}
		return m
	case "scheduledownloadresponse":
		return &ScheduleDownloadResponse{}
	case "autonomoustransfercomplete":
		m := &AutonomousTransferComplete{
			AnnounceURL:    n.trimmed("AnnounceURL"),
			TransferURL:    n.trimmed("TransferURL"),
			IsDownload:     s.bool(n, "IsDownload"),
			FileType:       n.trimmed("FileType"),
			FileSize:       s.uint32(n, "FileSize"),
			TargetFileName: n.str("TargetFileName"),
			StartTime:      ParseTime(n.str("StartTime")),
			CompleteTime:   ParseTime(n.str("CompleteTime")),
		}
		if fs := n.child("FaultStruct"); fs != nil {
			m.FaultStruct = FaultStruct{FaultCode: s.int(fs, "FaultCode"), FaultString: fs.str("FaultString")}
		}
		return m
	case "autonomoustransfercompleteresponse":
		return &AutonomousTransferCompleteResponse{}
	case "requestdownload":
		m := &RequestDownload{FileType: n.trimmed("FileType")}
		for _, k := range s.items(n.child("FileTypeArg")) {
			m.FileTypeArg = append(m.FileTypeArg, ArgStruct{Name: k.trimmed("Name"), Value: k.str("Value")})
		}
		return m
	case "requestdownloadresponse":
		return &RequestDownloadResponse{}
	case "fault":
		return s.fault(n)
	}
	return &Unknown{Name: n.name.Local}
}
