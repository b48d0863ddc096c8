package netprobe

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestTransfer(t *testing.T) {
	var uploaded = make(chan int64, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/file":
			w.Header().Set("Content-Length", "300000")
			_, _ = w.Write(make([]byte, 300000))
		case "/upload":
			n, _ := io.Copy(io.Discard, r.Body)
			uploaded <- n
		case "/short":
			w.Header().Set("Content-Length", "1000")
			_, _ = w.Write(make([]byte, 10))
		case "/hang":
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(srv.CloseClientConnections)

	r := Transfer(ctxT(t), TransferSpec{URL: srv.URL + "/file", Connections: 2})
	if r.Failure != OK || len(r.Conns) != 2 {
		t.Fatalf("download: failure %d, %d connections", r.Failure, len(r.Conns))
	}
	s := r.Summary
	if s.Body != 600000 || s.Read < s.Body || s.Written == 0 || !s.EOM.After(s.BOM) || s.BOM.Before(s.ROM) || s.TCPOpenResponse.Before(s.TCPOpenRequest) {
		t.Errorf("download summary %+v", s)
	}
	if s.FullBytes > s.Read || (s.FullPeriod == 0) != (s.FullBytes == 0) {
		t.Errorf("full loading %d bytes in %s", s.FullBytes, s.FullPeriod)
	}
	for i, c := range r.Conns {
		if c.Body != 300000 || c.BOM.Before(s.BOM) || c.EOM.After(s.EOM) {
			t.Errorf("connection %d: %+v", i, c)
		}
	}

	r = Transfer(ctxT(t), TransferSpec{URL: srv.URL + "/upload", Upload: true, Size: 200000})
	if r.Failure != OK || <-uploaded != 200000 || r.Summary.Written < 200000 || !r.Summary.EOM.After(r.Summary.BOM) {
		t.Errorf("upload: %+v", r)
	}

	for _, tc := range []struct {
		name string
		spec TransferSpec
		want Failure
	}{
		{"404", TransferSpec{URL: srv.URL + "/nope"}, FailStatus},
		{"upload 404", TransferSpec{URL: srv.URL + "/nope", Upload: true, Size: 10}, FailStatus},
		{"ftp", TransferSpec{URL: "ftp://127.0.0.1/x"}, FailURL},
		{"unresolvable", TransferSpec{URL: "http://x.invalid/"}, FailResolve},
		{"refused", TransferSpec{URL: "http://127.0.0.1:1/"}, FailConnect},
		{"short body", TransferSpec{URL: srv.URL + "/short"}, FailBroken},
		{"hung", TransferSpec{URL: srv.URL + "/hang", Timeout: 100 * time.Millisecond}, FailTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Transfer(ctxT(t), tc.spec)
			if r.Failure != tc.want {
				t.Fatalf("failure %d, want %d", r.Failure, tc.want)
			}
			if tc.want == FailStatus && r.Status != http.StatusNotFound {
				t.Errorf("status %d", r.Status)
			}
		})
	}
}

// TestFullLoading checks the overlap arithmetic on two connections whose
// transfers overlap for part of the time.
func TestFullLoading(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	mk := func(from, to int) *conn {
		c := &conn{}
		c.BOM, c.EOM = at(from), at(to)
		for ms := from; ms <= to; ms++ {
			c.addSample(at(ms), int64(ms-from+1)*1000) // 1000 bytes a millisecond
		}
		c.Read = int64(to-from+1) * 1000
		return c
	}
	s := summarise([]*conn{mk(0, 100), mk(20, 60)})
	if s.FullPeriod != 40*time.Millisecond || s.FullBytes != 2*40*1000 {
		t.Errorf("full loading %d bytes in %s, want 80000 in 40ms", s.FullBytes, s.FullPeriod)
	}
	if s.BOM != at(0) || s.EOM != at(100) || s.Read != 101000+41000 {
		t.Errorf("summary %+v", s)
	}
	if s := summarise([]*conn{mk(0, 10), mk(20, 30)}); s.FullPeriod != 0 || s.FullBytes != 0 {
		t.Errorf("disjoint transfers: %d bytes in %s", s.FullBytes, s.FullPeriod)
	}
	c := &conn{}
	for i := range maxSamples + 10 {
		c.addSample(at(i), int64(i))
	}
	if len(c.samples) > maxSamples || c.bytesAt(at(maxSamples+9)) != maxSamples+9 {
		t.Errorf("thinning: %d samples, last %d", len(c.samples), c.bytesAt(at(maxSamples+9)))
	}
}
