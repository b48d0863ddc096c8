package nbireplay

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	want := Request{Method: "POST", Path: "/devices/a%3Ab/tasks?connection_request&timeout=3000",
		Headers: map[string]string{"Content-Type": "application/json"},
		Body:    []byte(`{"name":"getParameterValues","parameterNames":["A.B"]}`)}
	get := Request{Method: "GET", Path: "/devices/?query=%7B%22_id%22%3A%22x%22%7D&projection=A,B,_id"}
	tests := []struct {
		name   string
		want   Request
		method string
		target string
		header map[string]string
		body   string
		ok     bool
	}{
		{"same", want, "POST", "/devices/a:b/tasks?timeout=3000&connection_request", map[string]string{"content-type": "application/json"}, `{"parameterNames":["A.B"], "name":"getParameterValues"}`, true},
		{"other method", want, "PUT", "/devices/a:b/tasks?connection_request&timeout=3000", map[string]string{"Content-Type": "application/json"}, `{"name":"getParameterValues","parameterNames":["A.B"]}`, false},
		{"other path", want, "POST", "/devices/a:c/tasks?connection_request&timeout=3000", map[string]string{"Content-Type": "application/json"}, `{"name":"getParameterValues","parameterNames":["A.B"]}`, false},
		{"other timeout", want, "POST", "/devices/a:b/tasks?connection_request&timeout=2999", map[string]string{"Content-Type": "application/json"}, `{"name":"getParameterValues","parameterNames":["A.B"]}`, false},
		{"missing flag", want, "POST", "/devices/a:b/tasks?timeout=3000", map[string]string{"Content-Type": "application/json"}, `{"name":"getParameterValues","parameterNames":["A.B"]}`, false},
		{"other body", want, "POST", "/devices/a:b/tasks?connection_request&timeout=3000", map[string]string{"Content-Type": "application/json"}, `{"name":"getParameterValues","parameterNames":["A.B."]}`, false},
		{"missing header", want, "POST", "/devices/a:b/tasks?connection_request&timeout=3000", nil, `{"name":"getParameterValues","parameterNames":["A.B"]}`, false},
		{"projection as a set, query as JSON", get, "GET", "/devices/?query=%7B%20%22_id%22%20%3A%20%22x%22%7D&projection=_id,B,A", nil, "", true},
		{"other projection", get, "GET", "/devices/?query=%7B%22_id%22%3A%22x%22%7D&projection=A,B", nil, "", false},
		{"other query", get, "GET", "/devices/?query=%7B%22_id%22%3A%22y%22%7D&projection=A,B,_id", nil, "", false},
		{"unexpected body", get, "GET", "/devices/?query=%7B%22_id%22%3A%22x%22%7D&projection=A,B,_id", nil, "{}", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://h"+tc.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = []string{v}
			}
			got := Compare(tc.want, req, []byte(tc.body))
			if (got == "") != tc.ok {
				t.Errorf("Compare = %q, want ok %v", got, tc.ok)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	r := Response{Status: 202, Reason: "Task faulted", Headers: map[string]string{"total": "0", "Content-Type": "application/json"}, Body: []byte(`[]`)}
	got := string(Encode(r, false))
	if !strings.HasPrefix(got, "HTTP/1.1 202 Task faulted\r\n") || !strings.Contains(got, "\r\ntotal: 0\r\n") || !strings.HasSuffix(got, "\r\n\r\n[\n\n]") {
		t.Errorf("Encode = %q", got)
	}
	text := Response{Status: 400, Reason: "Bad Request", Body: []byte(`"SyntaxError: x"`)}
	if b := BodyBytes(text); !bytes.Equal(b, []byte("SyntaxError: x")) {
		t.Errorf("plain-text body = %q", b)
	}
	if b := Encode(Response{Status: 200, Reason: "OK", Body: []byte(`""`)}, true); !strings.HasSuffix(string(b), "Content-Length: 0\r\n\r\n") {
		t.Errorf("empty body = %q", b)
	}
}
