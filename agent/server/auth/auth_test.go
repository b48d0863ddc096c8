package auth

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldagent/agent/secret"
)

// Fixed test tokens, one per role.
var (
	readTok      = secret.New("fa_read-token-0123456789abcdefghijklmnopqrstu")
	diagnoseTok  = secret.New("fa_diagnose-token-0123456789abcdefghijklmnopq")
	configureTok = secret.New("fa_configure-token-0123456789abcdefghijklmno")
)

func testTokens() []Token {
	return []Token{
		{Name: "reader", Hash: HashToken(readTok), Role: RoleRead},
		{Name: "diag", Hash: HashToken(diagnoseTok), Role: RoleDiagnose},
		{Name: "admin", Hash: HashToken(configureTok), Role: RoleConfigure},
	}
}

func newTestAuth(t *testing.T, opts Options) *Authenticator {
	t.Helper()
	a, err := New(testTokens(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// echoCaller answers 200 with the caller Middleware put in the context.
var echoCaller = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, ok := Caller(r.Context())
	if !ok {
		http.Error(w, "no caller in context", http.StatusInternalServerError)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"name": id.Name, "role": string(id.Role)})
})

func decodeErrorBody(t *testing.T, rec *httptest.ResponseRecorder) ErrorBody {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var b ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body.String(), err)
	}
	if b.Error == "" || b.Hint == "" {
		t.Errorf("error body %q lacks error or hint", rec.Body.String())
	}
	return b
}

func TestRoleAllows(t *testing.T) {
	tests := []struct {
		have, need Role
		want       bool
	}{
		{RoleRead, RoleRead, true},
		{RoleRead, RoleDiagnose, false},
		{RoleRead, RoleConfigure, false},
		{RoleDiagnose, RoleRead, true},
		{RoleDiagnose, RoleDiagnose, true},
		{RoleDiagnose, RoleConfigure, false},
		{RoleConfigure, RoleRead, true},
		{RoleConfigure, RoleDiagnose, true},
		{RoleConfigure, RoleConfigure, true},
		{"", RoleRead, false},
		{"admin", RoleRead, false},
		{RoleConfigure, "", false},
		{RoleConfigure, "root", false},
	}
	for _, tc := range tests {
		if got := tc.have.Allows(tc.need); got != tc.want {
			t.Errorf("Role(%q).Allows(%q) = %v, want %v", tc.have, tc.need, got, tc.want)
		}
	}
}

func TestMiddleware(t *testing.T) {
	a := newTestAuth(t, Options{Burst: 1000})
	bearer := func(s secret.Secret) string { return "Bearer " + s.Reveal() }
	tests := []struct {
		name      string
		need      Role
		auth      []string // Authorization header values
		status    int
		challenge string // WWW-Authenticate
		errPart   string // part of the error message
		caller    string // name Caller reports, for 200
	}{
		{name: "missing", need: RoleRead, status: 401, challenge: `Bearer realm="fieldagent"`, errPart: "missing bearer token"},
		{name: "empty header", need: RoleRead, auth: []string{"  "}, status: 401, challenge: `Bearer realm="fieldagent"`, errPart: "missing bearer token"},
		{name: "bearer without token", need: RoleRead, auth: []string{"Bearer   "}, status: 401, challenge: `Bearer realm="fieldagent"`, errPart: "missing bearer token"},
		{name: "basic scheme", need: RoleRead, auth: []string{"Basic " + readTok.Reveal()}, status: 401, challenge: `Bearer realm="fieldagent"`, errPart: "not a bearer token"},
		{name: "unknown token", need: RoleRead, auth: []string{"Bearer fa_nope"}, status: 401, challenge: `Bearer realm="fieldagent", error="invalid_token"`, errPart: "unknown bearer token"},
		{name: "token with a changed byte", need: RoleRead, auth: []string{bearer(readTok) + "x"}, status: 401, challenge: `Bearer realm="fieldagent", error="invalid_token"`, errPart: "unknown bearer token"},
		{name: "over-long token", need: RoleRead, auth: []string{"Bearer " + strings.Repeat("a", 5000)}, status: 401, challenge: `Bearer realm="fieldagent", error="invalid_token"`, errPart: "unknown bearer token"},
		{name: "two headers", need: RoleRead, auth: []string{bearer(readTok), bearer(configureTok)}, status: 401, challenge: `Bearer realm="fieldagent", error="invalid_token"`, errPart: "unknown bearer token"},
		{name: "hash as token", need: RoleRead, auth: []string{"Bearer " + HashToken(readTok)}, status: 401, challenge: `Bearer realm="fieldagent", error="invalid_token"`, errPart: "unknown bearer token"},

		{name: "read calls read", need: RoleRead, auth: []string{bearer(readTok)}, status: 200, caller: "reader"},
		{name: "read calls diagnose", need: RoleDiagnose, auth: []string{bearer(readTok)}, status: 403, challenge: `Bearer realm="fieldagent", error="insufficient_scope"`, errPart: `this call needs role "diagnose"; token "reader" has role "read"`},
		{name: "read calls configure", need: RoleConfigure, auth: []string{bearer(readTok)}, status: 403, challenge: `Bearer realm="fieldagent", error="insufficient_scope"`, errPart: `this call needs role "configure"; token "reader" has role "read"`},
		{name: "diagnose calls read", need: RoleRead, auth: []string{bearer(diagnoseTok)}, status: 200, caller: "diag"},
		{name: "diagnose calls diagnose", need: RoleDiagnose, auth: []string{bearer(diagnoseTok)}, status: 200, caller: "diag"},
		{name: "diagnose calls configure", need: RoleConfigure, auth: []string{bearer(diagnoseTok)}, status: 403, challenge: `Bearer realm="fieldagent", error="insufficient_scope"`, errPart: `this call needs role "configure"; token "diag" has role "diagnose"`},
		{name: "configure calls read", need: RoleRead, auth: []string{bearer(configureTok)}, status: 200, caller: "admin"},
		{name: "configure calls diagnose", need: RoleDiagnose, auth: []string{bearer(configureTok)}, status: 200, caller: "admin"},
		{name: "configure calls configure", need: RoleConfigure, auth: []string{bearer(configureTok)}, status: 200, caller: "admin"},
		{name: "lower-case scheme", need: RoleRead, auth: []string{"bearer " + readTok.Reveal()}, status: 200, caller: "reader"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				echoCaller.ServeHTTP(w, r)
			})
			req := httptest.NewRequest("GET", "/api/v1/x", nil)
			for _, v := range tc.auth {
				req.Header.Add("Authorization", v)
			}
			rec := httptest.NewRecorder()
			a.Middleware(tc.need, next).ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.challenge)
			}
			if tc.status != 200 {
				if called {
					t.Error("next handler ran for a refused call")
				}
				if b := decodeErrorBody(t, rec); !strings.Contains(b.Error, tc.errPart) {
					t.Errorf("error = %q, want it to contain %q", b.Error, tc.errPart)
				}
				return
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			want := map[string]string{"name": tc.caller, "role": string(testRole(tc.caller))}
			if got["name"] != want["name"] || got["role"] != want["role"] {
				t.Errorf("Caller = %v, want %v", got, want)
			}
		})
	}
}

func testRole(name string) Role {
	for _, tk := range testTokens() {
		if tk.Name == name {
			return tk.Role
		}
	}
	return ""
}

func TestMiddlewarePanicsOnUnknownRole(t *testing.T) {
	a := newTestAuth(t, Options{})
	defer func() {
		if recover() == nil {
			t.Error("Middleware(\"root\", ...) did not panic")
		}
	}()
	a.Middleware("root", echoCaller)
}

func TestCallerOutsideMiddleware(t *testing.T) {
	if id, ok := Caller(httptest.NewRequest("GET", "/", nil).Context()); ok {
		t.Errorf("Caller = %v, true in a bare context", id)
	}
}

func TestHashToken(t *testing.T) {
	// SHA-256("abc") from FIPS 180-2, appendix B.1.
	if got, want := HashToken(secret.New("abc")), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("HashToken(abc) = %q, want %q", got, want)
	}
	if HashToken(readTok) == HashToken(diagnoseTok) {
		t.Error("two tokens hash alike")
	}
}

func TestNewToken(t *testing.T) {
	plain, hash := NewToken()
	p := plain.Reveal()
	if !strings.HasPrefix(p, TokenPrefix) || len(p) != len(TokenPrefix)+43 { // 32 bytes in unpadded base64
		t.Errorf("token %q: want %q and 43 base64url characters", p, TokenPrefix)
	}
	if hash != HashToken(plain) {
		t.Errorf("hash %q is not HashToken(plain) %q", hash, HashToken(plain))
	}
	if strings.Contains(hash, p) || strings.Contains(plain.String(), p) {
		t.Error("hash or String() holds the token")
	}
	plain2, _ := NewToken()
	if plain2.Equal(plain) {
		t.Error("two NewToken calls returned the same token")
	}

	a, err := New([]Token{{Name: "new", Hash: hash, Role: RoleRead}}, Options{})
	if err != nil {
		t.Fatalf("New with a NewToken hash: %v", err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+p)
	rec := httptest.NewRecorder()
	a.Middleware(RoleRead, echoCaller).ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("NewToken's token refused: %d %s", rec.Code, rec.Body)
	}
}

// TestLookupIsConstantTime checks that verification goes through the
// constant-time compare, for every entry, without stopping at a match.
func TestLookupIsConstantTime(t *testing.T) {
	a := newTestAuth(t, Options{})
	calls := 0
	a.compare = func(x, y []byte) int {
		calls++
		return subtle.ConstantTimeCompare(x, y)
	}
	for _, tc := range []struct {
		tok  secret.Secret
		want string
	}{
		{readTok, "reader"},         // first entry: must still compare with the rest
		{configureTok, "admin"},     // last entry
		{secret.New("fa_nope"), ""}, // no entry
	} {
		calls = 0
		id, ok := a.lookup(tc.tok.Reveal())
		if id.Name != tc.want || ok != (tc.want != "") {
			t.Errorf("lookup = %v, %v; want %q", id, ok, tc.want)
		}
		if calls != len(testTokens()) {
			t.Errorf("lookup of %q compared %d times, want %d (one constant-time compare per entry)", tc.want, calls, len(testTokens()))
		}
	}
}

func TestNewConfigErrors(t *testing.T) {
	good := HashToken(readTok)
	plainInHash := "fa_this-is-a-plain-token-not-a-hash"
	tests := []struct {
		name   string
		tokens []Token
		opts   Options
		want   string
	}{
		{name: "no tokens", tokens: nil,
			want: "invalid auth config: no tokens configured: make one with `fieldagent serve token new` and add its hash to the config"},
		{name: "empty name", tokens: []Token{{Name: "", Hash: good, Role: RoleRead}},
			want: "invalid auth config: tokens[0]: name is empty: every token needs a name for the logs"},
		{name: "bad name", tokens: []Token{{Name: "a b", Hash: good, Role: RoleRead}},
			want: `invalid auth config: tokens[0] "a b": name has ' ': use only letters, digits and . _ - @`},
		{name: "long name", tokens: []Token{{Name: strings.Repeat("n", 65), Hash: good, Role: RoleRead}},
			want: `invalid auth config: tokens[0] "` + strings.Repeat("n", 65) + `": name is 65 bytes long: use at most 64`},
		{name: "duplicate name", tokens: []Token{{Name: "ops", Hash: good, Role: RoleRead}, {Name: "ops", Hash: HashToken(diagnoseTok), Role: RoleRead}},
			want: `invalid auth config: tokens[1] "ops": name is already used by tokens[0]: give each token its own name`},
		{name: "empty hash", tokens: []Token{{Name: "ops", Role: RoleRead}},
			want: `invalid auth config: tokens[0] "ops": hash is empty: put the hash that ` + "`fieldagent serve token new`" + ` prints, not the token`},
		{name: "plain token as hash", tokens: []Token{{Name: "ops", Hash: plainInHash, Role: RoleRead}},
			want: `invalid auth config: tokens[0] "ops": hash does not start with "sha256:" (is it the token itself?): put the hash that ` + "`fieldagent serve token new`" + ` prints, never the token`},
		{name: "short hash", tokens: []Token{{Name: "ops", Hash: "sha256:abcd", Role: RoleRead}},
			want: `invalid auth config: tokens[0] "ops": hash has 4 hex digits after "sha256:", want 64`},
		{name: "non-hex hash", tokens: []Token{{Name: "ops", Hash: "sha256:" + strings.Repeat("zz", 32), Role: RoleRead}},
			want: `invalid auth config: tokens[0] "ops": hash after "sha256:" is not hexadecimal`},
		{name: "duplicate hash", tokens: []Token{{Name: "a", Hash: good, Role: RoleRead}, {Name: "b", Hash: good, Role: RoleConfigure}},
			want: `invalid auth config: tokens[1] "b": hash is the same as tokens[0]'s: one token cannot have two names; make another with ` + "`fieldagent serve token new`"},
		{name: "unknown role", tokens: []Token{{Name: "a", Hash: good, Role: "admin"}},
			want: `invalid auth config: tokens[0] "a": role "admin" is not one of read, diagnose, configure`},
		{name: "empty role", tokens: []Token{{Name: "a", Hash: good}},
			want: `invalid auth config: tokens[0] "a": role "" is not one of read, diagnose, configure`},
		{name: "negative rate", tokens: testTokens(), opts: Options{Rate: -1},
			want: "invalid auth config: rate -1 is not a positive number of requests per second"},
		{name: "negative burst", tokens: testTokens(), opts: Options{Burst: -1},
			want: "invalid auth config: burst -1 is negative: use a positive number of requests, or 0 for 20"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(tc.tokens, tc.opts)
			if err == nil {
				t.Fatalf("New = %v, nil; want error %q", a, tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			for _, tk := range tc.tokens {
				if tk.Hash != "" && strings.Contains(err.Error(), tk.Hash) {
					t.Errorf("error %q quotes a hash field", err)
				}
			}
		})
	}
}

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRateLimit(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newTestAuth(t, Options{Rate: 0.5, Burst: 3, Now: clock.Now})
	h := a.Middleware(RoleRead, echoCaller)
	call := func(tok secret.Secret) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+tok.Reveal())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := range 3 {
		if rec := call(readTok); rec.Code != 200 {
			t.Fatalf("call %d of burst 3: status %d", i+1, rec.Code)
		}
	}
	rec := call(readTok)
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("call after burst: status %d, want 429", rec.Code)
	}
	if got := rec.Header().Get("Retry-After"); got != "2" { // 1 request at 0.5/s
		t.Errorf("Retry-After = %q, want 2", got)
	}
	if b := decodeErrorBody(t, rec); b.Error != `token "reader" made too many requests (limit 0.5 per second, burst 3)` || b.Hint != "retry after 2 seconds" {
		t.Errorf("429 body = %+v", b)
	}

	// Buckets are per token.
	if rec := call(diagnoseTok); rec.Code != 200 {
		t.Errorf("another token: status %d, want 200", rec.Code)
	}

	clock.Advance(1500 * time.Millisecond) // 0.75 of a request refilled
	rec = call(readTok)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("after 1.5s: status %d Retry-After %q, want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	clock.Advance(500 * time.Millisecond)
	if rec := call(readTok); rec.Code != 200 {
		t.Errorf("after 2s: status %d, want 200 (refilled)", rec.Code)
	}
	if rec := call(readTok); rec.Code != http.StatusTooManyRequests {
		t.Errorf("second call after 2s: status %d, want 429", rec.Code)
	}
	clock.Advance(time.Hour) // refill stops at burst
	for i := range 3 {
		if rec := call(readTok); rec.Code != 200 {
			t.Fatalf("after an hour, call %d: status %d", i+1, rec.Code)
		}
	}
	if rec := call(readTok); rec.Code != http.StatusTooManyRequests {
		t.Errorf("after an hour, call 4: status %d, want 429 (bucket holds at most burst)", rec.Code)
	}
}

func TestRateLimitConcurrent(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	a := newTestAuth(t, Options{Rate: 1, Burst: 50, Now: clock.Now})
	h := a.Middleware(RoleRead, echoCaller)
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Authorization", "Bearer "+readTok.Reveal())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			mu.Lock()
			codes[rec.Code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[200] != 50 || codes[429] != 50 {
		t.Errorf("100 concurrent calls with burst 50: %v, want 50×200 and 50×429", codes)
	}
}
