package cwmp

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// zeroTime is how CWMP writes an unknown time.
const zeroTime = "0001-01-01T00:00:00Z"

// FormatTime formats t as an xsd:dateTime; the zero time gives
// "0001-01-01T00:00:00Z", the CWMP marker for an unknown time.
func FormatTime(t time.Time) string {
	if t.IsZero() || t.Year() <= 1 {
		return zeroTime
	}
	return t.Format(time.RFC3339Nano)
}

type writer struct{ b bytes.Buffer }

func (w *writer) raw(s ...string) {
	for _, x := range s {
		w.b.WriteString(x)
	}
}

// text writes s escaped as xml.EscapeText does (the same bytes, so that
// encodings stay stable), without converting s to a byte slice: quotes, &,
// <, > and tab, newline and carriage return become character references, and
// anything that is not an XML character (including invalid UTF-8) becomes
// U+FFFD.
func (w *writer) text(s string) {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\'' && c != '&' && c != '<' && c != '>' {
			i++
			continue
		}
		r, width := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch r {
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			if xmlChar(r) && !(r == utf8.RuneError && width == 1) {
				i += width
				continue
			}
			esc = "\uFFFD"
		}
		w.b.WriteString(s[last:i])
		w.b.WriteString(esc)
		i += width
		last = i
	}
	w.b.WriteString(s[last:])
}

// xmlChar reports whether r is in the XML 1.0 Char production.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

func (w *writer) elem(name, value string) {
	w.raw("<", name, ">")
	w.text(value)
	w.raw("</", name, ">")
}

func (w *writer) int(name string, v int)        { w.elem(name, strconv.Itoa(v)) }
func (w *writer) uint(name string, v uint32)    { w.elem(name, strconv.FormatUint(uint64(v), 10)) }
func (w *writer) time(name string, v time.Time) { w.elem(name, FormatTime(v)) }
func (w *writer) bool(name string, v bool) {
	if v {
		w.elem(name, "1")
	} else {
		w.elem(name, "0")
	}
}

func (w *writer) array(name, itemType string, n int) {
	w.raw("<", name, ` soap-enc:arrayType="`, itemType, "[", strconv.Itoa(n), `]">`)
}

func (w *writer) strings(name, item string, list []string) {
	w.array(name, "xsd:string", len(list))
	for _, s := range list {
		w.elem(item, s)
	}
	w.raw("</", name, ">")
}

func (w *writer) pvs(name string, list []ParameterValueStruct) {
	w.array(name, "cwmp:ParameterValueStruct", len(list))
	for _, p := range list {
		w.raw("<ParameterValueStruct>")
		w.elem("Name", p.Name)
		w.raw(`<Value xsi:type="`)
		w.text(normType(p.Type))
		w.raw(`">`)
		w.text(p.Value)
		w.raw("</Value></ParameterValueStruct>")
	}
	w.raw("</", name, ">")
}

// validName reports whether s can be written as an element name.
func validName(s string) bool {
	if s == "" {
		return false
	}
	return !strings.ContainsAny(s, " \t\r\n<>&\"'/=:?!") && xmlNameOK(s)
}

// xmlNameOK checks the name by letting encoding/xml read it back.
func xmlNameOK(s string) bool {
	d := xml.NewDecoder(strings.NewReader("<" + s + "/>"))
	tok, err := d.Token()
	if err != nil {
		return false
	}
	se, ok := tok.(xml.StartElement)
	return ok && se.Name.Local == s
}

// Encode writes env as a SOAP 1.1 envelope (UTF-8, with an XML declaration)
// declaring the soap-env, soap-enc, xsd, xsi and cwmp prefixes. Errors wrap
// ErrNamespace (Namespace not NS10–NS14) or ErrUnsupported.
func Encode(env *Envelope) ([]byte, error) {
	if env == nil {
		return nil, fmt.Errorf("%w: nil envelope", ErrUnsupported)
	}
	ns := env.Namespace
	if ns == "" {
		ns = NS10
	}
	if !KnownNamespace(ns) {
		return nil, fmt.Errorf("%w: %q", ErrNamespace, ns)
	}
	w := &writer{}
	w.b.Grow(1024)
	w.raw(`<?xml version="1.0" encoding="UTF-8"?>`, "\n")
	w.raw(`<soap-env:Envelope xmlns:soap-env="`, NSSOAPEnv, `" xmlns:soap-enc="`, NSSOAPEnc,
		`" xmlns:xsd="`, NSXSD, `" xmlns:xsi="`, NSXSI, `" xmlns:cwmp="`, ns, `">`)
	if env.ID != "" || env.HoldRequests || env.NoMoreRequests || env.SessionTimeout != 0 ||
		env.SupportedCWMPVersions != "" || env.UseCWMPVersion != "" {
		// mustUnderstand as cwmp-1-2.xsd to cwmp-1-4.xsd fix it: 1 for ID,
		// HoldRequests and UseCWMPVersion, 0 for SessionTimeout and
		// SupportedCWMPVersions.
		w.raw("<soap-env:Header>")
		if env.ID != "" {
			w.raw(`<cwmp:ID soap-env:mustUnderstand="1">`)
			w.text(env.ID)
			w.raw("</cwmp:ID>")
		}
		if env.HoldRequests {
			w.raw(`<cwmp:HoldRequests soap-env:mustUnderstand="1">1</cwmp:HoldRequests>`)
		}
		if env.SessionTimeout != 0 {
			w.raw(`<cwmp:SessionTimeout soap-env:mustUnderstand="0">`, strconv.FormatUint(uint64(env.SessionTimeout), 10), "</cwmp:SessionTimeout>")
		}
		if env.SupportedCWMPVersions != "" {
			w.raw(`<cwmp:SupportedCWMPVersions soap-env:mustUnderstand="0">`)
			w.text(env.SupportedCWMPVersions)
			w.raw("</cwmp:SupportedCWMPVersions>")
		}
		if env.UseCWMPVersion != "" {
			w.raw(`<cwmp:UseCWMPVersion soap-env:mustUnderstand="1">`)
			w.text(env.UseCWMPVersion)
			w.raw("</cwmp:UseCWMPVersion>")
		}
		if env.NoMoreRequests {
			w.raw(`<cwmp:NoMoreRequests>1</cwmp:NoMoreRequests>`)
		}
		w.raw("</soap-env:Header>")
	}
	w.raw("<soap-env:Body>")
	if env.Body != nil {
		if err := w.message(env.Body); err != nil {
			return nil, err
		}
	}
	w.raw("</soap-env:Body></soap-env:Envelope>")
	return w.b.Bytes(), nil
}

// asPointer returns a pointer form of m so that one type switch serves both.
func asPointer(m Message) Message {
	v := reflect.ValueOf(m)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		return m
	}
	p := reflect.New(v.Type())
	p.Elem().Set(v)
	pm, ok := p.Interface().(Message)
	if !ok {
		return m
	}
	return pm
}

func (w *writer) message(m Message) error {
	m = asPointer(m)
	if m == nil {
		return fmt.Errorf("%w: nil message", ErrUnsupported)
	}
	if f, ok := m.(*Fault); ok {
		w.fault(f)
		return nil
	}
	name := m.MethodName()
	if u, ok := m.(*Unknown); ok && !validName(u.Name) {
		return fmt.Errorf("%w: %q is not a valid method name", ErrUnsupported, u.Name)
	}
	w.raw("<cwmp:", name, ">")
	switch m := m.(type) {
	case *Inform:
		w.raw("<DeviceId>")
		w.elem("Manufacturer", m.DeviceId.Manufacturer)
		w.elem("OUI", m.DeviceId.OUI)
		w.elem("ProductClass", m.DeviceId.ProductClass)
		w.elem("SerialNumber", m.DeviceId.SerialNumber)
		w.raw("</DeviceId>")
		w.array("Event", "cwmp:EventStruct", len(m.Event))
		for _, e := range m.Event {
			w.raw("<EventStruct>")
			w.elem("EventCode", e.EventCode)
			w.elem("CommandKey", e.CommandKey)
			w.raw("</EventStruct>")
		}
		w.raw("</Event>")
		w.int("MaxEnvelopes", m.MaxEnvelopes)
		w.time("CurrentTime", m.CurrentTime)
		w.int("RetryCount", m.RetryCount)
		w.pvs("ParameterList", m.ParameterList)
	case *InformResponse:
		w.int("MaxEnvelopes", m.MaxEnvelopes)
	case *GetRPCMethods, *RebootResponse, *FactoryReset, *FactoryResetResponse, *TransferCompleteResponse, *Unknown,
		*SetParameterAttributesResponse, *ScheduleInformResponse, *GetQueuedTransfers, *GetAllQueuedTransfers,
		*CancelTransferResponse, *ScheduleDownloadResponse, *AutonomousTransferCompleteResponse, *RequestDownloadResponse:
	case *GetRPCMethodsResponse:
		w.strings("MethodList", "string", m.MethodList)
	case *GetParameterValues:
		w.strings("ParameterNames", "string", m.ParameterNames)
	case *GetParameterValuesResponse:
		w.pvs("ParameterList", m.ParameterList)
	case *SetParameterValues:
		w.pvs("ParameterList", m.ParameterList)
		w.elem("ParameterKey", m.ParameterKey)
	case *SetParameterValuesResponse:
		w.int("Status", m.Status)
	case *GetParameterNames:
		w.elem("ParameterPath", m.ParameterPath)
		w.bool("NextLevel", m.NextLevel)
	case *GetParameterNamesResponse:
		w.array("ParameterList", "cwmp:ParameterInfoStruct", len(m.ParameterList))
		for _, p := range m.ParameterList {
			w.raw("<ParameterInfoStruct>")
			w.elem("Name", p.Name)
			w.bool("Writable", p.Writable)
			w.raw("</ParameterInfoStruct>")
		}
		w.raw("</ParameterList>")
	case *AddObject:
		w.elem("ObjectName", m.ObjectName)
		w.elem("ParameterKey", m.ParameterKey)
	case *AddObjectResponse:
		w.uint("InstanceNumber", m.InstanceNumber)
		w.int("Status", m.Status)
	case *DeleteObject:
		w.elem("ObjectName", m.ObjectName)
		w.elem("ParameterKey", m.ParameterKey)
	case *DeleteObjectResponse:
		w.int("Status", m.Status)
	case *Reboot:
		w.elem("CommandKey", m.CommandKey)
	case *Download:
		w.elem("CommandKey", m.CommandKey)
		w.elem("FileType", m.FileType)
		w.elem("URL", m.URL)
		w.elem("Username", m.Username)
		w.elem("Password", m.Password)
		w.uint("FileSize", m.FileSize)
		w.elem("TargetFileName", m.TargetFileName)
		w.uint("DelaySeconds", m.DelaySeconds)
		w.elem("SuccessURL", m.SuccessURL)
		w.elem("FailureURL", m.FailureURL)
	case *DownloadResponse:
		w.int("Status", m.Status)
		w.time("StartTime", m.StartTime)
		w.time("CompleteTime", m.CompleteTime)
	case *TransferComplete:
		w.elem("CommandKey", m.CommandKey)
		w.faultStruct(m.FaultStruct)
		w.time("StartTime", m.StartTime)
		w.time("CompleteTime", m.CompleteTime)
	case *SetParameterAttributes:
		w.array("ParameterList", "cwmp:SetParameterAttributesStruct", len(m.ParameterList))
		for _, p := range m.ParameterList {
			w.raw("<SetParameterAttributesStruct>")
			w.elem("Name", p.Name)
			w.bool("NotificationChange", p.NotificationChange)
			w.int("Notification", p.Notification)
			w.bool("AccessListChange", p.AccessListChange)
			w.strings("AccessList", "string", p.AccessList)
			w.raw("</SetParameterAttributesStruct>")
		}
		w.raw("</ParameterList>")
	case *GetParameterAttributes:
		w.strings("ParameterNames", "string", m.ParameterNames)
	case *GetParameterAttributesResponse:
		w.array("ParameterList", "cwmp:ParameterAttributeStruct", len(m.ParameterList))
		for _, p := range m.ParameterList {
			w.raw("<ParameterAttributeStruct>")
			w.elem("Name", p.Name)
			w.int("Notification", p.Notification)
			w.strings("AccessList", "string", p.AccessList)
			w.raw("</ParameterAttributeStruct>")
		}
		w.raw("</ParameterList>")
	case *Upload:
		w.elem("CommandKey", m.CommandKey)
		w.elem("FileType", m.FileType)
		w.elem("URL", m.URL)
		w.elem("Username", m.Username)
		w.elem("Password", m.Password)
		w.uint("DelaySeconds", m.DelaySeconds)
	case *UploadResponse:
		w.int("Status", m.Status)
		w.time("StartTime", m.StartTime)
		w.time("CompleteTime", m.CompleteTime)
	case *ScheduleInform:
		w.uint("DelaySeconds", m.DelaySeconds)
		w.elem("CommandKey", m.CommandKey)
	case *GetQueuedTransfersResponse:
		w.array("TransferList", "cwmp:QueuedTransferStruct", len(m.TransferList))
		for _, t := range m.TransferList {
			w.raw("<QueuedTransferStruct>")
			w.elem("CommandKey", t.CommandKey)
			w.int("State", t.State)
			w.raw("</QueuedTransferStruct>")
		}
		w.raw("</TransferList>")
	case *GetAllQueuedTransfersResponse:
		w.array("TransferList", "cwmp:AllQueuedTransferStruct", len(m.TransferList))
		for _, t := range m.TransferList {
			w.raw("<AllQueuedTransferStruct>")
			w.elem("CommandKey", t.CommandKey)
			w.int("State", t.State)
			w.bool("IsDownload", t.IsDownload)
			w.elem("FileType", t.FileType)
			w.uint("FileSize", t.FileSize)
			w.elem("TargetFileName", t.TargetFileName)
			w.raw("</AllQueuedTransferStruct>")
		}
		w.raw("</TransferList>")
	case *CancelTransfer:
		w.elem("CommandKey", m.CommandKey)
	case *ScheduleDownload:
		w.elem("CommandKey", m.CommandKey)
		w.elem("FileType", m.FileType)
		w.elem("URL", m.URL)
		w.elem("Username", m.Username)
		w.elem("Password", m.Password)
		w.uint("FileSize", m.FileSize)
		w.elem("TargetFileName", m.TargetFileName)
		w.array("TimeWindowList", "cwmp:TimeWindowStruct", len(m.TimeWindowList))
		for _, t := range m.TimeWindowList {
			w.raw("<TimeWindowStruct>")
			w.uint("WindowStart", t.WindowStart)
			w.uint("WindowEnd", t.WindowEnd)
			w.elem("WindowMode", t.WindowMode)
			w.elem("UserMessage", t.UserMessage)
			w.int("MaxRetries", t.MaxRetries)
			w.raw("</TimeWindowStruct>")
		}
		w.raw("</TimeWindowList>")
	case *AutonomousTransferComplete:
		w.elem("AnnounceURL", m.AnnounceURL)
		w.elem("TransferURL", m.TransferURL)
		w.bool("IsDownload", m.IsDownload)
		w.elem("FileType", m.FileType)
		w.uint("FileSize", m.FileSize)
		w.elem("TargetFileName", m.TargetFileName)
		w.faultStruct(m.FaultStruct)
		w.time("StartTime", m.StartTime)
		w.time("CompleteTime", m.CompleteTime)
	case *RequestDownload:
		w.elem("FileType", m.FileType)
		w.array("FileTypeArg", "cwmp:ArgStruct", len(m.FileTypeArg))
		for _, a := range m.FileTypeArg {
			w.raw("<ArgStruct>")
			w.elem("Name", a.Name)
			w.elem("Value", a.Value)
			w.raw("</ArgStruct>")
		}
		w.raw("</FileTypeArg>")
	default:
		return fmt.Errorf("%w: %T", ErrUnsupported, m)
	}
	w.raw("</cwmp:", name, ">")
	return nil
}

func (w *writer) faultStruct(f FaultStruct) {
	w.raw("<FaultStruct>")
	w.int("FaultCode", f.FaultCode)
	w.elem("FaultString", f.FaultString)
	w.raw("</FaultStruct>")
}

func (w *writer) fault(f *Fault) {
	code := "Server"
	if faultIsClient(f.Code) {
		code = "Client"
	}
	w.raw("<soap-env:Fault>")
	w.elem("faultcode", code)
	w.elem("faultstring", "CWMP fault")
	w.raw("<detail><cwmp:Fault>")
	w.int("FaultCode", f.Code)
	w.elem("FaultString", f.String)
	for _, p := range f.SetParameterValuesFaults {
		w.raw("<SetParameterValuesFault>")
		w.elem("ParameterName", p.ParameterName)
		w.int("FaultCode", p.FaultCode)
		w.elem("FaultString", p.FaultString)
		w.raw("</SetParameterValuesFault>")
	}
	w.raw("</cwmp:Fault></detail></soap-env:Fault>")
}
