package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// decodeTarget has one field of each JSON kind, as a request type would.
type decodeTarget struct {
	Name   string            `json:"name"`
	Count  int               `json:"count"`
	Size   uint32            `json:"size"`
	Ratio  float64           `json:"ratio"`
	Wait   bool              `json:"wait"`
	Names  []string          `json:"names"`
	Labels map[string]string `json:"labels"`
	Inner  *struct {
		Path string `json:"path"`
	} `json:"inner"`
}

func decodeRequest(body, contentType string) *http.Request {
	req := httptest.NewRequest("POST", "/api/v1/x", strings.NewReader(body))
	req.ContentLength = -1 // unknown, as with chunked encoding: the limit must hold while reading
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// decodeCases are the table of TestDecodeJSON and the seeds of FuzzDecodeJSON.
var decodeCases = []struct {
	name, body, contentType string
	status                  int    // 0 for success
	msg                     string // the exact error message
}{
	{name: "ok", body: `{"name":"cpe1","count":3,"names":["a"],"inner":{"path":"x"}}`, contentType: "application/json"},
	{name: "ok with charset", body: `{"name":"x"}`, contentType: "application/json; charset=UTF-8"},
	{name: "ok problem+json", body: `{}`, contentType: "application/merge-patch+json"},
	{name: "ok trailing space", body: "{\"wait\":true}\n\t ", contentType: "application/json"},
	{name: "ok null", body: `null`, contentType: "application/json"},

	{name: "no content type", body: `{}`, status: 415, msg: "request has no Content-Type; the body must be JSON"},
	{name: "form", body: `a=1`, contentType: "application/x-www-form-urlencoded", status: 415, msg: `request Content-Type is "application/x-www-form-urlencoded"; the body must be JSON`},
	{name: "text", body: `{}`, contentType: "text/plain", status: 415, msg: `request Content-Type is "text/plain"; the body must be JSON`},
	{name: "bad content type", body: `{}`, contentType: "application/json; charset", status: 415, msg: "request Content-Type cannot be parsed; the body must be JSON"},
	{name: "latin1", body: `{}`, contentType: "application/json; charset=iso-8859-1", status: 415, msg: `request charset is "iso-8859-1"; JSON must be UTF-8`},

	{name: "oversized", body: `{"name":"` + strings.Repeat("x", 300) + `"}`, contentType: "application/json", status: 413, msg: "request body is larger than the limit of 256 bytes"},
	{name: "oversized trailing", body: `{}` + strings.Repeat(" ", 300), contentType: "application/json", status: 413, msg: "request body is larger than the limit of 256 bytes"},

	{name: "empty", body: ``, contentType: "application/json", status: 400, msg: "request body is empty"},
	{name: "only space", body: "  \n", contentType: "application/json", status: 400, msg: "request body is empty"},
	{name: "truncated", body: `{"name":"x"`, contentType: "application/json", status: 400, msg: "request body is not valid JSON: it ends in the middle of a value"},
	{name: "syntax", body: `{"name":}`, contentType: "application/json", status: 400, msg: "request body is not valid JSON at byte offset 8: invalid character '}' looking for beginning of value"},
	{name: "not json", body: `name=x`, contentType: "application/json", status: 400, msg: "request body is not valid JSON at byte offset 1: invalid character 'a' in literal null (expecting 'u')"},
	{name: "string for int", body: `{"count":"3"}`, contentType: "application/json", status: 400, msg: `field "count" must be an integer, not a JSON string (near byte offset 12)`},
	{name: "negative for uint", body: `{"size":-1}`, contentType: "application/json", status: 400, msg: `field "size" must be a non-negative integer, not a JSON number -1 (near byte offset 10)`},
	{name: "number for bool", body: `{"wait":1}`, contentType: "application/json", status: 400, msg: `field "wait" must be true or false, not a JSON number (near byte offset 9)`},
	{name: "object for list", body: `{"names":{}}`, contentType: "application/json", status: 400, msg: `field "names" must be an array, not a JSON object (near byte offset 10)`},
	{name: "nested wrong type", body: `{"inner":{"path":5}}`, contentType: "application/json", status: 400, msg: `field "inner.path" must be a string, not a JSON number (near byte offset 18)`},
	{name: "array body", body: `[1,2]`, contentType: "application/json", status: 400, msg: "request body must be an object, not a JSON array"},
	{name: "unknown field", body: `{"name":"x","colour":"red"}`, contentType: "application/json", status: 400, msg: `request body has unknown field "colour"`},
	{name: "unknown nested field", body: `{"inner":{"pth":"x"}}`, contentType: "application/json", status: 400, msg: `request body has unknown field "pth"`},
	{name: "trailing value", body: `{"name":"x"}{"name":"y"}`, contentType: "application/json", status: 400, msg: "request body has data after the JSON value, which ends at byte offset 12"},
	{name: "trailing garbage", body: `{"name":"x"} x`, contentType: "application/json", status: 400, msg: "request body has data after the JSON value, which ends at byte offset 12"},
}

func TestDecodeJSON(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			var v decodeTarget
			err := DecodeJSON(rec, decodeRequest(tc.body, tc.contentType), &v, 256)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
					t.Errorf("DecodeJSON wrote %q and headers %v on success", rec.Body, rec.Header())
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RequestError", err)
			}
			if re.Status != tc.status || rec.Code != tc.status {
				t.Errorf("status: error %d, answer %d; want %d", re.Status, rec.Code, tc.status)
			}
			b := decodeErrorBody(t, rec)
			if b.Error != tc.msg || re.Msg != tc.msg {
				t.Errorf("message\n got %q\nwant %q", b.Error, tc.msg)
			}
		})
	}
}

func TestDecodeJSONFills(t *testing.T) {
	var v decodeTarget
	rec := httptest.NewRecorder()
	if err := DecodeJSON(rec, decodeRequest(decodeCases[0].body, "application/json"), &v, 0); err != nil {
		t.Fatal(err)
	}
	if v.Name != "cpe1" || v.Count != 3 || len(v.Names) != 1 || v.Inner == nil || v.Inner.Path != "x" {
		t.Errorf("decoded %+v", v)
	}
}

func TestDecodeJSONDeclaredLength(t *testing.T) {
	// A Content-Length over the limit is refused before the body is read.
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = 10 << 20
	rec := httptest.NewRecorder()
	err := DecodeJSON(rec, req, &decodeTarget{}, 0)
	var mbe *http.MaxBytesError
	if rec.Code != 413 || errors.As(err, &mbe) {
		t.Errorf("status %d err %v, want 413 with no read", rec.Code, err)
	}
	if b := decodeErrorBody(t, rec); b.Error != "request body is larger than the limit of 1048576 bytes" {
		t.Errorf("error = %q", b.Error)
	}
}

func TestDecodeJSONWrapsCause(t *testing.T) {
	rec := httptest.NewRecorder()
	err := DecodeJSON(rec, decodeRequest(`{"count":"x"}`, "application/json"), &decodeTarget{}, 0)
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field != "count" {
		t.Errorf("error %v does not wrap the *json.UnmarshalTypeError", err)
	}
	rec = httptest.NewRecorder()
	err = DecodeJSON(rec, decodeRequest(strings.Repeat(" ", 100)+"{}", "application/json"), &decodeTarget{}, 10)
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) || mbe.Limit != 10 {
		t.Errorf("error %v does not wrap the *http.MaxBytesError", err)
	}
}

func TestDecodeJSONNotPointer(t *testing.T) {
	rec := httptest.NewRecorder()
	err := DecodeJSON(rec, decodeRequest(`{}`, "application/json"), decodeTarget{}, 0)
	if rec.Code != 500 || err == nil {
		t.Errorf("non-pointer v: status %d err %v, want 500", rec.Code, err)
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, http.StatusNotFound, `no device "x"`, "")
	if rec.Code != 404 || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("status %d Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if got, want := rec.Body.String(), `{"error":"no device \"x\""}`+"\n"; got != want {
		t.Errorf("body %q, want %q (empty hint left out)", got, want)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.body), tc.contentType)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
		req.ContentLength = -1
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		var v decodeTarget
		err := DecodeJSON(rec, req, &v, 256)
		if err == nil {
			if rec.Body.Len() != 0 {
				t.Fatalf("success, yet wrote %q", rec.Body)
			}
			return
		}
		var re *RequestError
		if !errors.As(err, &re) {
			t.Fatalf("error %v is not a *RequestError", err)
		}
		switch re.Status {
		case 400, 413, 415:
		default:
			t.Fatalf("status %d for body %q content type %q: %v", re.Status, body, contentType, err)
		}
		if rec.Code != re.Status {
			t.Fatalf("answered %d, error says %d", rec.Code, re.Status)
		}
		var b ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error == "" {
			t.Fatalf("error body %q: %v", rec.Body, err)
		}
		if len(body) <= 256 && re.Status == 413 {
			t.Fatalf("413 for a body of %d bytes, under the limit", len(body))
		}
	})
}
