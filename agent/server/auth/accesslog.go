package auth

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// logSlot is where Middleware leaves the caller for AccessLog, which wraps it
// and so cannot see the context Middleware passes on.
type logSlot struct {
	id Identity
	ok bool
}

type logSlotKey struct{}

func setLogCaller(ctx context.Context, id Identity) {
	if s, ok := ctx.Value(logSlotKey{}).(*logSlot); ok {
		s.id, s.ok = id, true
	}
}

// AccessLog logs one line per request to log, at Info: method, path (without
// the query string), status, caller (the token's name, if Middleware
// authenticated one, else empty) and role, bytes written, duration and
// remote address. It never logs a header, so never the Authorization
// header. Mount it outside Authenticator.Middleware so that refused calls
// are logged too. A nil log returns next unchanged.
func AccessLog(log *slog.Logger, next http.Handler) http.Handler {
	if log == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		slot := &logSlot{}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), logSlotKey{}, slot)))
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.String("caller", slot.id.Name),
			slog.String("role", string(slot.id.Role)),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

// statusRecorder remembers the status and size of an answer.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 { // 1xx answers are not the final status
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
