package cpe

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/internal/httpauth"
)

// upload performs an Upload with HTTP PUT (the default when Config.OnUpload
// is nil). Errors are *cwmp.Fault with the TransferComplete fault code.
func (e *Engine) upload(ctx context.Context, u cwmp.Upload) error {
	pu, err := url.Parse(u.URL)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return cwmp.NewFault(cwmp.FaultUnsupportedTransferProtocol, "upload URL must be http or https")
	}
	var body strings.Builder
	switch {
	case strings.HasPrefix(u.FileType, "1 "):
		for _, p := range e.tree.Snapshot() {
			v := p.Value
			if p.Hidden {
				v = ""
			}
			fmt.Fprintf(&body, "%s=%s\n", p.Name, v)
		}
	case strings.HasPrefix(u.FileType, "2 "):
		fmt.Fprintf(&body, "%s cpe %s: log upload requested\n", e.cfg.Now().UTC().Format(time.RFC3339), e.cfg.DeviceId.SerialNumber)
	default:
		return cwmp.NewFault(cwmp.FaultUploadFailure, "unsupported FileType "+u.FileType)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c := &httpauth.Client{HTTP: e.cfg.HTTPClient, Username: u.Username, Password: secret.New(u.Password)}
	resp, err := c.Do(ctx, http.MethodPut, u.URL, []byte(body.String()), http.Header{"Content-Type": {"text/plain"}})
	if err != nil {
		return cwmp.NewFault(cwmp.FaultUploadFailure, "cannot reach the upload server")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return cwmp.NewFault(cwmp.FaultFileTransferAuthFailure, fmt.Sprintf("upload server answered HTTP %d", resp.StatusCode))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return cwmp.NewFault(cwmp.FaultUploadFailure, fmt.Sprintf("upload server answered HTTP %d", resp.StatusCode))
	}
	return nil
}
