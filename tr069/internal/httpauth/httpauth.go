// Package httpauth implements the HTTP authentication that CWMP uses: Digest
// (RFC 7616, MD5 and SHA-256, qop=auth, and the RFC 2069 form without qop)
// with a Basic fallback, for the client side (CPE to ACS, ACS connection
// requests) and the server side (a CPE's connection request listener).
package httpauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"fieldagent/agent/secret"
)

// ErrUnsupported means a challenge asks for something this package cannot do.
var ErrUnsupported = errors.New("httpauth: unsupported authentication challenge")

// Challenge is one authentication scheme with its parameters (names lower case).
type Challenge struct {
	Scheme string // Scheme is e.g. "Digest" or "Basic", as sent.
	Params map[string]string
}

// ParseChallenges parses a WWW-Authenticate (or Authorization) header value
// that may hold several comma-separated challenges. It is lenient and never
// fails: malformed pieces are skipped.
func ParseChallenges(h string) []Challenge {
	var out []Challenge
	i := 0
	n := len(h)
	for i < n {
		for i < n && (h[i] == ' ' || h[i] == '\t' || h[i] == ',') {
			i++
		}
		if i >= n {
			break
		}
		start := i
		for i < n && h[i] != ' ' && h[i] != '\t' && h[i] != '=' && h[i] != ',' {
			i++
		}
		tok := h[start:i]
		j := i
		for j < n && (h[j] == ' ' || h[j] == '\t') {
			j++
		}
		if j < n && h[j] == '=' && len(out) > 0 && tok != "" {
			// auth-param: name = token / quoted-string
			j++
			for j < n && (h[j] == ' ' || h[j] == '\t') {
				j++
			}
			var val string
			if j < n && h[j] == '"' {
				j++
				var b strings.Builder
				for j < n && h[j] != '"' {
					if h[j] == '\\' && j+1 < n {
						j++
					}
					b.WriteByte(h[j])
					j++
				}
				if j < n {
					j++ // closing quote
				}
				val = b.String()
			} else {
				s := j
				for j < n && h[j] != ',' && h[j] != ' ' && h[j] != '\t' {
					j++
				}
				val = h[s:j]
			}
			out[len(out)-1].Params[strings.ToLower(tok)] = val
			i = j
			continue
		}
		if tok == "" || (j < n && h[j] == '=') {
			// stray "=" or a token68 continuation: skip up to the next comma
			for i < n && h[i] != ',' {
				i++
			}
			continue
		}
		out = append(out, Challenge{Scheme: tok, Params: map[string]string{}})
		i = j
	}
	return out
}

// hashFor returns the hash constructor for a Digest algorithm and whether it is a -sess variant.
func hashFor(alg string) (func() hash.Hash, bool, error) {
	switch strings.ToUpper(alg) {
	case "", "MD5":
		return md5.New, false, nil
	case "MD5-SESS":
		return md5.New, true, nil
	case "SHA-256":
		return sha256.New, false, nil
	case "SHA-256-SESS":
		return sha256.New, true, nil
	}
	return nil, false, fmt.Errorf("%w: digest algorithm %q", ErrUnsupported, alg)
}

func hexHash(h func() hash.Hash, parts ...string) string {
	x := h()
	_, _ = io.WriteString(x, strings.Join(parts, ":"))
	return hex.EncodeToString(x.Sum(nil))
}

func hasToken(list, tok string) bool {
	for _, p := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(p), tok) {
			return true
		}
	}
	return false
}

// digestResponse computes the request-digest.
func digestResponse(h func() hash.Hash, sess bool, user, realm, pass, method, uri, nonce, nc, cnonce, qop string) string {
	ha1 := hexHash(h, user, realm, pass)
	if sess {
		ha1 = hexHash(h, ha1, nonce, cnonce)
	}
	ha2 := hexHash(h, method, uri)
	if qop == "" {
		return hexHash(h, ha1, nonce, ha2)
	}
	return hexHash(h, ha1, nonce, nc, cnonce, qop, ha2)
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// DigestAuthorization returns the Authorization header value answering a
// Digest challenge for method and uri (the request-target, e.g. "/cwmp?x").
func DigestAuthorization(ch Challenge, method, uri, user string, pass secret.Secret, cnonce string, nc uint32) (string, error) {
	h, sess, err := hashFor(ch.Params["algorithm"])
	if err != nil {
		return "", err
	}
	qop := ""
	if q, ok := ch.Params["qop"]; ok {
		if !hasToken(q, "auth") {
			return "", fmt.Errorf("%w: qop %q", ErrUnsupported, q)
		}
		qop = "auth"
	}
	realm, nonce := ch.Params["realm"], ch.Params["nonce"]
	ncs := fmt.Sprintf("%08x", nc)
	resp := digestResponse(h, sess, user, realm, pass.Reveal(), method, uri, nonce, ncs, cnonce, qop)
	var b strings.Builder
	b.WriteString("Digest username=" + quote(user) + ", realm=" + quote(realm) + ", nonce=" + quote(nonce) +
		", uri=" + quote(uri))
	if alg := ch.Params["algorithm"]; alg != "" {
		b.WriteString(", algorithm=" + alg)
	}
	b.WriteString(", response=" + quote(resp))
	if qop != "" {
		b.WriteString(", qop=auth, nc=" + ncs + ", cnonce=" + quote(cnonce))
	}
	if op, ok := ch.Params["opaque"]; ok {
		b.WriteString(", opaque=" + quote(op))
	}
	return b.String(), nil
}

// BasicAuthorization returns the Authorization header value for Basic.
func BasicAuthorization(user string, pass secret.Secret) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass.Reveal()))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Client sends requests with Digest or Basic credentials, answering a 401
// challenge and reusing the last Digest challenge for later requests.
// A Client is safe for concurrent use.
type Client struct {
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
	// Username and Password are the credentials; an empty Username sends none.
	Username string
	Password secret.Secret

	mu    sync.Mutex
	ch    *Challenge
	basic bool
	nc    uint32
}

func (c *Client) authorization(method, uri string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.basic {
		return BasicAuthorization(c.Username, c.Password), nil
	}
	if c.ch == nil {
		return "", nil
	}
	c.nc++
	return DigestAuthorization(*c.ch, method, uri, c.Username, c.Password, randomHex(8), c.nc)
}

// learn records the best challenge of a 401 response; it reports false if
// there is none it can answer.
func (c *Client) learn(resp *http.Response) bool {
	var digest, basic *Challenge
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		for _, ch := range ParseChallenges(v) {
			switch {
			case strings.EqualFold(ch.Scheme, "Digest") && digest == nil:
				if _, _, err := hashFor(ch.Params["algorithm"]); err != nil {
					continue
				}
				if q, ok := ch.Params["qop"]; ok && !hasToken(q, "auth") {
					continue
				}
				digest = &ch
			case strings.EqualFold(ch.Scheme, "Basic") && basic == nil:
				basic = &ch
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case digest != nil:
		c.ch, c.basic, c.nc = digest, false, 0
	case basic != nil:
		c.ch, c.basic = nil, true
	default:
		return false
	}
	return true
}

// Do sends a request built from method, url, body and header, answering up
// to two authentication challenges. The caller closes the response body.
func (c *Client) Do(ctx context.Context, method, url string, body []byte, header http.Header) (*http.Response, error) {
	return c.DoWith(ctx, c.HTTP, method, url, body, header)
}

// DoWith is Do with hc instead of c.HTTP (e.g. a per-session client with
// its own cookie jar), keeping the learned challenge across clients.
func (c *Client) DoWith(ctx context.Context, hc *http.Client, method, url string, body []byte, header http.Header) (*http.Response, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, rd)
		if err != nil {
			return nil, err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		if c.Username != "" {
			a, err := c.authorization(method, req.URL.RequestURI())
			if err != nil {
				return nil, err
			}
			if a != "" {
				req.Header.Set("Authorization", a)
			}
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized || c.Username == "" || attempt >= 2 || !c.learn(resp) {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}
}

// DigestServer checks Digest credentials on incoming requests with
// time-limited nonces (an HMAC of the issue time and a random part) and
// replay protection: each nonce count (nc) of a nonce is accepted once.
// Its zero value works with an all-zero nonce key; NewDigestServer picks a
// random one. A DigestServer is safe for concurrent use.
type DigestServer struct {
	// Realm is the protection realm sent in challenges.
	Realm string
	// NonceLifetime is how long a nonce stays valid; 0 means 5 minutes.
	NonceLifetime time.Duration
	// RequireQOP, if true, rejects the RFC 2069 form (no qop, hence no
	// nonce count and no replay protection); an ACS sets it.
	RequireQOP bool
	// MaxTrackedNonces bounds the memory used for replay protection; 0
	// means 262144. When it is full of unexpired nonces, answers with new
	// nonces are refused as stale until old ones expire.
	MaxTrackedNonces int
	// Now, if nil, is time.Now.
	Now func() time.Time

	key [32]byte

	mu   sync.Mutex
	seen map[[16]byte]*ncWindow
}

// ncWindow records the nonce counts seen for one nonce: the highest, and
// a bitmap of the 64 below it (like IPsec's anti-replay window), so that
// requests sent concurrently may arrive out of order.
type ncWindow struct {
	issued int64
	max    uint64
	bits   uint64
}

// accept reports whether nc is new, and records it.
func (w *ncWindow) accept(nc uint64) bool {
	switch {
	case nc == 0:
		return false
	case nc > w.max:
		shift := nc - w.max
		if shift >= 64 {
			w.bits = 0
		} else {
			w.bits <<= shift
		}
		w.bits |= 1 // bit 0 is w.max itself
		w.max = nc
		return true
	case w.max-nc >= 64:
		return false // too old to tell: refuse
	default:
		bit := uint64(1) << (w.max - nc)
		if w.bits&bit != 0 {
			return false
		}
		w.bits |= bit
		return true
	}
}

// NewDigestServer returns a DigestServer for realm with a random nonce key.
func NewDigestServer(realm string) *DigestServer {
	s := &DigestServer{Realm: realm}
	_, _ = rand.Read(s.key[:])
	return s
}

func (s *DigestServer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *DigestServer) lifetime() time.Duration {
	if s.NonceLifetime <= 0 {
		return 5 * time.Minute
	}
	return s.NonceLifetime
}

// nonce is base64url(issue time (8 bytes) | random (8) | HMAC (16)).
func (s *DigestServer) nonce(id [16]byte) string {
	m := hmac.New(sha256.New, s.key[:])
	m.Write(id[:])
	return base64.RawURLEncoding.EncodeToString(append(id[:], m.Sum(nil)[:16]...))
}

func (s *DigestServer) newNonce() string {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], uint64(s.now().UnixNano()))
	_, _ = rand.Read(id[8:])
	return s.nonce(id)
}

// nonceState reports whether nonce was issued by s, its identity and issue
// time, and whether it is still fresh.
func (s *DigestServer) nonceState(nonce string) (id [16]byte, issued int64, valid, fresh bool) {
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != 32 {
		return id, 0, false, false
	}
	copy(id[:], raw[:16])
	if !hmac.Equal([]byte(s.nonce(id)), []byte(nonce)) {
		return id, 0, false, false
	}
	issued = int64(binary.BigEndian.Uint64(raw[:8]))
	age := s.now().Sub(time.Unix(0, issued))
	return id, issued, true, age >= -time.Minute && age <= s.lifetime()
}

// Challenge returns a WWW-Authenticate value (MD5, qop=auth).
func (s *DigestServer) Challenge(stale bool) string {
	v := "Digest realm=" + quote(s.Realm) + ", qop=\"auth\", algorithm=MD5, nonce=" + quote(s.newNonce()) +
		", opaque=" + quote(randomHex(8))
	if stale {
		v += ", stale=true"
	}
	return v
}

// Username returns the username of r's Digest or Basic Authorization
// header and the scheme ("Digest" or "Basic"); both are empty when there
// is none. It verifies nothing: use it to look the credentials up.
func Username(r *http.Request) (user, scheme string) {
	if u, _, ok := r.BasicAuth(); ok {
		return u, "Basic"
	}
	chs := ParseChallenges(r.Header.Get("Authorization"))
	if len(chs) == 1 && strings.EqualFold(chs[0].Scheme, "Digest") {
		return chs[0].Params["username"], "Digest"
	}
	return "", ""
}

// CheckBasic verifies r's Basic Authorization header against user and pass
// in constant time. Callers allow Basic only over TLS.
func CheckBasic(r *http.Request, user string, pass secret.Secret) bool {
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	uok := subtle.ConstantTimeCompare([]byte(u), []byte(user))
	pok := subtle.ConstantTimeCompare([]byte(p), []byte(pass.Reveal()))
	return uok&pok == 1
}

// Check verifies r's Authorization header against user and pass. stale is
// true when the credentials were right but the nonce has expired (the
// client should retry with a fresh challenge). A nonce count already used
// with the nonce (a replayed request) fails.
func (s *DigestServer) Check(r *http.Request, user string, pass secret.Secret) (ok, stale bool) {
	chs := ParseChallenges(r.Header.Get("Authorization"))
	if len(chs) != 1 || !strings.EqualFold(chs[0].Scheme, "Digest") {
		return false, false
	}
	p := chs[0].Params
	h, sess, err := hashFor(p["algorithm"])
	if err != nil {
		return false, false
	}
	if subtle.ConstantTimeCompare([]byte(p["username"]), []byte(user)) != 1 || p["realm"] != s.Realm {
		return false, false
	}
	if uri := p["uri"]; uri != r.URL.RequestURI() && uri != r.RequestURI {
		return false, false
	}
	qop := p["qop"]
	if qop != "" && !strings.EqualFold(qop, "auth") {
		return false, false
	}
	if qop == "" && s.RequireQOP {
		return false, false
	}
	id, issued, valid, fresh := s.nonceState(p["nonce"])
	if !valid {
		return false, false
	}
	want := digestResponse(h, sess, user, s.Realm, pass.Reveal(), r.Method, p["uri"], p["nonce"], p["nc"], p["cnonce"], qop)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(p["response"])), []byte(want)) != 1 {
		return false, false
	}
	if !fresh {
		return false, true
	}
	if qop == "" {
		return true, false // RFC 2069: no nonce count to track
	}
	nc, err := strconv.ParseUint(p["nc"], 16, 32)
	if err != nil {
		return false, false
	}
	return s.record(id, issued, nc)
}

// record accepts nonce count nc of nonce id once. It answers stale when
// the table is full, so the client retries with a fresh nonce later.
func (s *DigestServer) record(id [16]byte, issued int64, nc uint64) (ok, stale bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.seen[id]
	if w == nil {
		limit := s.MaxTrackedNonces
		if limit <= 0 {
			limit = 1 << 18
		}
		if s.seen == nil {
			s.seen = map[[16]byte]*ncWindow{}
		}
		if len(s.seen) >= limit {
			cutoff := s.now().Add(-s.lifetime() - time.Minute).UnixNano()
			for k, v := range s.seen {
				if v.issued < cutoff {
					delete(s.seen, k)
				}
			}
			if len(s.seen) >= limit {
				return false, true
			}
		}
		w = &ncWindow{issued: issued}
		s.seen[id] = w
	}
	return w.accept(nc), false
}
