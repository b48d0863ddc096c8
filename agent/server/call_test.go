package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"fieldagent/agent/secret"
)

// callAPI sends method path (with a JSON body, if any) to the API at base
// with token (none if zero) and returns the status and the body.
func callAPI(t testing.TB, client *http.Client, base string, token secret.Secret, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if !token.IsZero() {
		req.Header.Set("Authorization", "Bearer "+token.Reveal())
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
