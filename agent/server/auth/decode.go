package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
)

// DefaultBodyLimit is the body limit DecodeJSON applies when given 0.
const DefaultBodyLimit = 1 << 20

// ErrorBody is the JSON body of every error answer of the package.
type ErrorBody struct {
	Error string `json:"error"`
	Hint  string `json:"hint,omitempty"`
}

// WriteError answers with status and the JSON body {"error": msg, "hint":
// hint}. An empty hint is left out.
func WriteError(w http.ResponseWriter, status int, msg, hint string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: msg, Hint: hint})
}

// RequestError is the error DecodeJSON returns after it has answered the
// request: Status is the status it wrote (400, 413, 415, or 500 for a
// programming error such as a non-pointer v), Msg and Hint are the body.
// Err, if set, is the underlying error (a *json.SyntaxError,
// *json.UnmarshalTypeError, *http.MaxBytesError, ...).
type RequestError struct {
	Status int
	Msg    string
	Hint   string
	Err    error
}

// Error says what status the request got and why.
func (e *RequestError) Error() string {
	return fmt.Sprintf("request refused (%d): %s", e.Status, e.Msg)
}

// Unwrap returns the underlying error.
func (e *RequestError) Unwrap() error { return e.Err }

// DecodeJSON reads r's body, at most limit bytes (0 means DefaultBodyLimit),
// as exactly one JSON value into v, a pointer. It refuses, answering the
// request itself:
//
//   - 415 when Content-Type is not application/json (or application/*+json),
//     or names a charset other than UTF-8;
//   - 413 when the body is longer than limit (the answer names the limit);
//   - 400 when the body is empty, is not JSON (the answer names the byte
//     offset), has a field of the wrong type (names the field and the type
//     wanted), a field v does not have (names it), or data after the value.
//
// It then returns a *RequestError that the handler returns without writing
// anything more; v may be partly filled and must not be used. On success it
// writes nothing and returns nil.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if limit <= 0 {
		limit = DefaultBodyLimit
	}
	if e := checkContentType(r.Header.Get("Content-Type")); e != nil {
		return fail(w, e)
	}
	if r.ContentLength > limit {
		return fail(w, tooLarge(limit, nil))
	}
	if r.Body == nil {
		return fail(w, &RequestError{Status: http.StatusBadRequest, Msg: "request body is empty", Hint: "send a JSON value"})
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(w, decodeError(err, limit))
	}
	end := dec.InputOffset()
	// One value only: anything but white space after it is refused.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return fail(w, tooLarge(limit, err))
		}
		return fail(w, &RequestError{Status: http.StatusBadRequest,
			Msg:  fmt.Sprintf("request body has data after the JSON value, which ends at byte offset %d", end),
			Hint: "send exactly one JSON value", Err: err})
	}
	return nil
}

func fail(w http.ResponseWriter, e *RequestError) error {
	WriteError(w, e.Status, e.Msg, e.Hint)
	return e
}

func tooLarge(limit int64, err error) *RequestError {
	return &RequestError{Status: http.StatusRequestEntityTooLarge,
		Msg:  fmt.Sprintf("request body is larger than the limit of %d bytes", limit),
		Hint: "send a smaller body", Err: err}
}

func checkContentType(ct string) *RequestError {
	const hint = "send the header Content-Type: application/json"
	if ct == "" {
		return &RequestError{Status: http.StatusUnsupportedMediaType, Msg: "request has no Content-Type; the body must be JSON", Hint: hint}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return &RequestError{Status: http.StatusUnsupportedMediaType, Msg: "request Content-Type cannot be parsed; the body must be JSON", Hint: hint, Err: err}
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return &RequestError{Status: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("request Content-Type is %q; the body must be JSON", mt), Hint: hint}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return &RequestError{Status: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("request charset is %q; JSON must be UTF-8", cs), Hint: hint}
	}
	return nil
}

// decodeError turns an error of json.Decoder.Decode into the answer.
func decodeError(err error, limit int64) *RequestError {
	bad := func(msg, hint string) *RequestError {
		return &RequestError{Status: http.StatusBadRequest, Msg: msg, Hint: hint, Err: err}
	}
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
		ie  *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &mbe):
		return tooLarge(limit, err)
	case errors.Is(err, io.EOF):
		return bad("request body is empty", "send a JSON value")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return bad("request body is not valid JSON: it ends in the middle of a value", "send complete JSON")
	case errors.As(err, &se):
		// se.Offset counts the bytes read, the bad one included.
		return bad(fmt.Sprintf("request body is not valid JSON at byte offset %d: %s", max(se.Offset-1, 0), se.Error()), "check the JSON syntax")
	case errors.As(err, &te):
		if te.Field == "" {
			return bad(fmt.Sprintf("request body must be %s, not a JSON %s", jsonKind(te.Type), te.Value), "check the request's shape")
		}
		return bad(fmt.Sprintf("field %q must be %s, not a JSON %s (near byte offset %d)", te.Field, jsonKind(te.Type), te.Value, te.Offset), "check the field's type")
	case errors.As(err, &ie):
		return &RequestError{Status: http.StatusInternalServerError, Msg: "internal error decoding the request", Err: err}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return bad(fmt.Sprintf("request body has unknown field %s", name), "check the field's spelling against the API")
	}
	// Errors of UnmarshalJSON methods, or of reading the body.
	return bad(fmt.Sprintf("request body cannot be decoded: %v", err), "check the request against the API")
}

// jsonKind says which JSON value decodes into t.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + t.String()
}
