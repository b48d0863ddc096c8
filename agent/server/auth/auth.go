// Package auth authenticates and authorizes callers of `fieldagent serve`:
// bearer tokens from config, stored hashed, each with a role; a per-token
// rate limit; size-limited strict JSON decoding of request bodies; and an
// access log that never records a credential.
//
// Roles are ordered: configure ⊇ diagnose ⊇ read. A route mounted with
// Middleware(RoleDiagnose, h) admits diagnose and configure tokens.
//
// Answers to refused calls are JSON, {"error": "...", "hint": "..."}:
//
//	401  no bearer token, or one the server does not know (WWW-Authenticate: Bearer realm="fieldagent")
//	403  the token's role is below the route's (the body names both roles)
//	429  the token has used its rate (Retry-After says when to retry)
//	400  malformed JSON, a field of the wrong type, an unknown field, data after the value
//	413  a body larger than the route's limit (the body names the limit)
//	415  a body that is not application/json
//
// A token is never logged, echoed in a response, or put in an error: the
// Authenticator keeps only SHA-256 hashes, and the presented token lives only
// as long as the hash computation.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"fieldagent/agent/secret"
)

// ErrInvalidConfig is wrapped by every error New returns for a bad token
// list or bad options.
var ErrInvalidConfig = errors.New("invalid auth config")

// Role is what a token may do. The zero value is no role and is refused by New.
type Role string

// Roles, from least to most privileged: each includes the ones before it.
const (
	// RoleRead may list and show devices, results and reports.
	RoleRead Role = "read"
	// RoleDiagnose may also run diagnostics (ping, traceroute, speed tests).
	RoleDiagnose Role = "diagnose"
	// RoleConfigure may also change device configuration and reboot.
	RoleConfigure Role = "configure"
)

// rank orders the roles from 1 (read) up; an unknown role is 0.
func (r Role) rank() int {
	switch r {
	case RoleRead:
		return 1
	case RoleDiagnose:
		return 2
	case RoleConfigure:
		return 3
	}
	return 0
}

// Valid reports whether r is one of RoleRead, RoleDiagnose, RoleConfigure.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether a caller with role r may call a route that needs
// role need. An unknown role allows nothing and is allowed by nothing.
func (r Role) Allows(need Role) bool {
	return r.Valid() && need.Valid() && r.rank() >= need.rank()
}

// HashPrefix starts every token hash that HashToken makes and New accepts.
const HashPrefix = "sha256:"

// TokenPrefix starts every token NewToken makes, so that secret scanners and
// people recognise a leaked fieldagent token.
const TokenPrefix = "fa_"

// tokenBytes is how many random bytes NewToken draws (256 bits).
const tokenBytes = 32

// maxTokenLen bounds a presented token; longer ones are refused unhashed.
const maxTokenLen = 1024

// Token is one entry of the server's token list, as written in config.
//
// Hash is HashPrefix followed by the hex SHA-256 of the token. A plain,
// fast hash is the right choice here, not argon2id or bcrypt: tokens are 256
// random bits (NewToken), so no amount of hashing speed makes guessing one
// from its hash feasible; slow KDFs exist to protect low-entropy passwords.
// A slow hash would instead cost milliseconds of CPU on every request, for
// callers who need not even hold a token — a denial-of-service lever.
// Operators must use tokens made by NewToken, not chosen passwords.
type Token struct {
	Name string `json:"name" yaml:"name"`
	Hash string `json:"hash" yaml:"hash"`
	Role Role   `json:"role" yaml:"role"`
}

// HashToken returns the hash of token as a Token's Hash field holds it:
// "sha256:" and 64 lowercase hex digits.
func HashToken(token secret.Secret) string {
	sum := sha256.Sum256([]byte(token.Reveal()))
	return HashPrefix + hex.EncodeToString(sum[:])
}

// NewToken returns a new random token (TokenPrefix and 32 random bytes,
// base64url) and its hash. Show plain to the operator once; store only hash.
func NewToken() (plain secret.Secret, hash string) {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (it crashes the program instead).
	plain = secret.New(TokenPrefix + base64.RawURLEncoding.EncodeToString(b))
	return plain, HashToken(plain)
}

// Identity is an authenticated caller: the name and role of its token.
type Identity struct {
	Name string
	Role Role
}

type callerKey struct{}

// WithCaller returns ctx carrying id, as Middleware does for an admitted call.
func WithCaller(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

// Caller returns the caller that Middleware admitted, and false in a context
// that did not pass through Middleware.
func Caller(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(callerKey{}).(Identity)
	return id, ok
}

// Defaults of Options.
const (
	DefaultRate  = 10.0 // requests per second, per token
	DefaultBurst = 20   // requests at once, per token
)

// Options tune an Authenticator. The zero value is usable.
type Options struct {
	// Rate is how many requests per second each token may make over time;
	// zero means DefaultRate.
	Rate float64
	// Burst is how many requests a token may make at once after being idle;
	// zero means DefaultBurst.
	Burst int
	// Now, if nil, is time.Now.
	Now func() time.Time
	// Logger receives one line per refused call (never the token); nil discards.
	Logger *slog.Logger
}

type entry struct {
	id  Identity
	sum [sha256.Size]byte
}

// Authenticator checks bearer tokens against a fixed token list. It is safe
// for concurrent use.
type Authenticator struct {
	entries []entry
	limiter *limiter
	log     *slog.Logger
	// compare is subtle.ConstantTimeCompare; tests wrap it to count calls.
	compare func(a, b []byte) int
}

// New returns an Authenticator for tokens. It refuses an empty list, an
// entry without a name or with a name used before, a hash that is not
// "sha256:" and 64 hex digits (or that another entry has), and an unknown
// role; the error names the entry (by index and name) and wraps
// ErrInvalidConfig. No error contains a hash or a token.
func New(tokens []Token, opts Options) (*Authenticator, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%w: no tokens configured: make one with `fieldagent serve token new` and add its hash to the config", ErrInvalidConfig)
	}
	rate, burst := opts.Rate, opts.Burst
	if rate == 0 {
		rate = DefaultRate
	}
	if burst == 0 {
		burst = DefaultBurst
	}
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("%w: rate %v is not a positive number of requests per second", ErrInvalidConfig, opts.Rate)
	}
	if burst < 0 {
		return nil, fmt.Errorf("%w: burst %d is negative: use a positive number of requests, or 0 for %d", ErrInvalidConfig, opts.Burst, DefaultBurst)
	}
	a := &Authenticator{log: opts.Logger, compare: subtle.ConstantTimeCompare}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	names := make(map[string]int, len(tokens))
	sums := make(map[[sha256.Size]byte]int, len(tokens))
	for i, t := range tokens {
		at := fmt.Sprintf("tokens[%d]", i)
		if t.Name != "" {
			at = fmt.Sprintf("tokens[%d] %q", i, t.Name)
		}
		if err := checkName(t.Name); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, at, err)
		}
		if j, dup := names[t.Name]; dup {
			return nil, fmt.Errorf("%w: %s: name is already used by tokens[%d]: give each token its own name", ErrInvalidConfig, at, j)
		}
		names[t.Name] = i
		sum, err := parseHash(t.Hash)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, at, err)
		}
		if j, dup := sums[sum]; dup {
			return nil, fmt.Errorf("%w: %s: hash is the same as tokens[%d]'s: one token cannot have two names; make another with `fieldagent serve token new`", ErrInvalidConfig, at, j)
		}
		sums[sum] = i
		if !t.Role.Valid() {
			return nil, fmt.Errorf("%w: %s: role %q is not one of %s, %s, %s", ErrInvalidConfig, at, string(t.Role), RoleRead, RoleDiagnose, RoleConfigure)
		}
		a.entries = append(a.entries, entry{id: Identity{Name: t.Name, Role: t.Role}, sum: sum})
	}
	a.limiter = newLimiter(rate, burst, opts.Now)
	return a, nil
}

// checkName accepts 1 to 64 letters, digits and ". _ - @": names appear in
// logs and response bodies, so they stay printable and short.
func checkName(name string) error {
	if name == "" {
		return errors.New("name is empty: every token needs a name for the logs")
	}
	if len(name) > 64 {
		return fmt.Errorf("name is %d bytes long: use at most 64", len(name))
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-@", c)
		if !ok {
			return fmt.Errorf("name has %q: use only letters, digits and . _ - @", c)
		}
	}
	return nil
}

// parseHash reads "sha256:<64 hex>". Its errors never quote the value: a
// plain token pasted into the hash field must not reach a log.
func parseHash(h string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	hexPart, ok := strings.CutPrefix(h, HashPrefix)
	switch {
	case h == "":
		return sum, errors.New("hash is empty: put the hash that `fieldagent serve token new` prints, not the token")
	case !ok:
		return sum, fmt.Errorf("hash does not start with %q (is it the token itself?): put the hash that `fieldagent serve token new` prints, never the token", HashPrefix)
	case len(hexPart) != 2*sha256.Size:
		return sum, fmt.Errorf("hash has %d hex digits after %q, want %d", len(hexPart), HashPrefix, 2*sha256.Size)
	}
	if _, err := hex.Decode(sum[:], []byte(hexPart)); err != nil {
		return sum, fmt.Errorf("hash after %q is not hexadecimal", HashPrefix)
	}
	return sum, nil
}

// lookup returns the entry whose hash matches token. It compares the
// presented hash with every entry in constant time and does not stop at a
// match, so timing reveals neither which entry matched nor how much of it.
func (a *Authenticator) lookup(token string) (Identity, bool) {
	if token == "" || len(token) > maxTokenLen {
		return Identity{}, false
	}
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range a.entries {
		if a.compare(sum[:], a.entries[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Identity{}, false
	}
	return a.entries[found].id, true
}

// authenticate returns the caller that the request's bearer token names, or
// the reason for a refusal ("missing", "not_bearer", "unknown"), fit for a
// log: it never contains the token.
func (a *Authenticator) authenticate(r *http.Request) (Identity, string, bool) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 || strings.TrimSpace(vals[0]) == "" {
		return Identity{}, "missing", false
	}
	if len(vals) > 1 {
		return Identity{}, "unknown", false
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return Identity{}, "not_bearer", false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return Identity{}, "missing", false
	}
	id, ok := a.lookup(tok)
	if !ok {
		return Identity{}, "unknown", false
	}
	return id, "", true
}

// realm is the WWW-Authenticate challenge of 401 and 403 answers (RFC 6750).
const realm = `Bearer realm="fieldagent"`

// Middleware admits a request to next if it carries a known bearer token
// whose role allows need and whose rate limit is not used up, and puts the
// caller in the request's context (see Caller). It answers 401 for a missing
// or unknown token, 429 with Retry-After when the token's rate is used up,
// and 403 when the role is below need. It panics at wiring time if need is
// not a known role, as http.ServeMux does for a bad pattern.
func (a *Authenticator) Middleware(need Role, next http.Handler) http.Handler {
	if !need.Valid() {
		panic(fmt.Sprintf("auth: Middleware for unknown role %q", string(need)))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, reason, ok := a.authenticate(r)
		if !ok {
			a.log.Info("auth: refused caller", "reason", reason, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			challenge, msg, hint := realm, "", ""
			switch reason {
			case "missing":
				msg = "missing bearer token"
				hint = "send the header Authorization: Bearer <token>; an operator makes tokens with `fieldagent serve token new`"
			case "not_bearer":
				msg = "the Authorization header is not a bearer token"
				hint = "send the header Authorization: Bearer <token>"
			default:
				challenge += `, error="invalid_token"`
				msg = "unknown bearer token"
				hint = "check the token you sent; the server's config may no longer list it"
			}
			w.Header().Set("WWW-Authenticate", challenge)
			WriteError(w, http.StatusUnauthorized, msg, hint)
			return
		}
		setLogCaller(r.Context(), id)
		if ok, wait := a.limiter.allow(id.Name); !ok {
			a.log.Info("auth: rate limited", "caller", id.Name, "method", r.Method, "path", r.URL.Path, "retry_after", wait)
			secs := int64(math.Ceil(wait.Seconds()))
			if secs < 1 {
				secs = 1
			}
			w.Header().Set("Retry-After", fmt.Sprint(secs))
			WriteError(w, http.StatusTooManyRequests,
				fmt.Sprintf("token %q made too many requests (limit %g per second, burst %d)", id.Name, a.limiter.rate, int(a.limiter.burst)),
				fmt.Sprintf("retry after %d seconds", secs))
			return
		}
		if !id.Role.Allows(need) {
			a.log.Info("auth: forbidden", "caller", id.Name, "role", id.Role, "need", need, "method", r.Method, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", realm+`, error="insufficient_scope"`)
			WriteError(w, http.StatusForbidden,
				fmt.Sprintf("this call needs role %q; token %q has role %q", need, id.Name, id.Role),
				fmt.Sprintf("use a token with role %s or higher", need))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), id)))
	})
}
