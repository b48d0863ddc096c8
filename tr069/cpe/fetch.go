package cpe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/internal/httpauth"
)

// Fetch performs the transfer of a Download RPC: an HTTP(S) GET of d.URL
// answering Digest or Basic challenges with d.Username and d.Password, at
// most limit bytes (0: 64 MiB). OnDownload hooks call it. Errors are
// *cwmp.Fault with the code a TransferComplete reports: 9013 for a scheme
// other than http(s), 9015 when the server cannot be reached, 9012 when it
// refuses the credentials, 9016 when it has no such file, 9017 when the
// transfer breaks off and 9018 when the size differs from d.FileSize.
func (e *Engine) Fetch(ctx context.Context, d cwmp.Download, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = 64 << 20
	}
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, cwmp.NewFault(cwmp.FaultUnsupportedTransferProtocol, "download URL must be http or https")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c := &httpauth.Client{HTTP: e.cfg.HTTPClient, Username: d.Username, Password: secret.New(d.Password)}
	resp, err := c.Do(ctx, http.MethodGet, d.URL, nil, nil)
	if err != nil {
		return nil, cwmp.NewFault(cwmp.FaultDownloadContactServerFailure, "cannot reach the file server")
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, cwmp.NewFault(cwmp.FaultFileTransferAuthFailure, fmt.Sprintf("file server answered HTTP %d", resp.StatusCode))
	case resp.StatusCode == http.StatusNotFound:
		return nil, cwmp.NewFault(cwmp.FaultDownloadAccessFileFailure, "file server has no such file")
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, cwmp.NewFault(cwmp.FaultDownloadAccessFileFailure, fmt.Sprintf("file server answered HTTP %d", resp.StatusCode))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, cwmp.NewFault(cwmp.FaultDownloadIncomplete, "the transfer broke off")
	}
	if int64(len(data)) > limit {
		return nil, cwmp.NewFault(cwmp.FaultDownloadCorrupted, fmt.Sprintf("file larger than %d bytes", limit))
	}
	if d.FileSize > 0 && uint32(len(data)) != d.FileSize {
		return nil, cwmp.NewFault(cwmp.FaultDownloadCorrupted, fmt.Sprintf("received %d bytes, the Download said %d", len(data), d.FileSize))
	}
	return data, nil
}
