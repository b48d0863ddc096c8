package xt2sim

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"net"
	"sync"

	"golang.org/x/crypto/ssh"
)

// serverConfig builds the SSH server configuration: password logins from
// Users, public-key logins from AuthorizedKeys.
func (r *Router) serverConfig() *ssh.ServerConfig {
	sc := &ssh.ServerConfig{ServerVersion: "SSH-2.0--"}
	if len(r.cfg.Users) > 0 {
		sc.PasswordCallback = func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			want, ok := r.cfg.Users[c.User()]
			if ok && subtle.ConstantTimeCompare([]byte(want.Reveal()), pw) == 1 {
				return &ssh.Permissions{}, nil
			}
			r.logger.Info("xt2sim: ssh password rejected", "user", c.User(), "remote", c.RemoteAddr().String())
			return nil, errors.New("password rejected")
		}
	}
	if len(r.cfg.AuthorizedKeys) > 0 {
		sc.PublicKeyCallback = func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			for _, k := range r.cfg.AuthorizedKeys {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, errors.New("public key not authorized")
		}
	}
	sc.AddHostKey(r.hostKey)
	return sc
}

func (r *Router) serveSSH() {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := r.sshLn.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.ctx.Err() != nil {
			r.mu.Unlock()
			_ = c.Close()
			return
		}
		r.conns[c] = struct{}{}
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				r.mu.Lock()
				delete(r.conns, c)
				r.mu.Unlock()
				_ = c.Close()
			}()
			r.handleConn(c)
		}()
	}
}

func (r *Router) handleConn(c net.Conn) {
	sconn, chans, reqs, err := ssh.NewServerConn(c, r.sshConf)
	if err != nil {
		r.logger.Debug("xt2sim: ssh handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	defer sconn.Close()
	r.logger.Info("xt2sim: ssh login", "user", sconn.User(), "remote", c.RemoteAddr().String())
	go ssh.DiscardRequests(reqs)
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels are supported")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.handleSession(ctx, c, ch, creqs)
		}()
	}
}

// handleSession serves one session channel: pty-req, shell and exec.
func (r *Router) handleSession(ctx context.Context, conn net.Conn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	started := false
	done := make(chan struct{})
	for {
		select {
		case <-done:
			return
		case req, ok := <-reqs:
			if !ok {
				if started {
					<-done
				}
				return
			}
			switch req.Type {
			case "pty-req", "env", "window-change":
				_ = req.Reply(req.WantReply && req.Type != "window-change", nil)
			case "shell":
				if started {
					_ = req.Reply(false, nil)
					continue
				}
				started = true
				_ = req.Reply(true, nil)
				go func() {
					defer close(done)
					s := r.newSession(ctx, ch, conn)
					s.shell()
					sendExit(ch, 0)
				}()
			case "exec":
				if started || len(req.Payload) < 4 {
					_ = req.Reply(false, nil)
					continue
				}
				n := binary.BigEndian.Uint32(req.Payload)
				if int(n) > len(req.Payload)-4 {
					_ = req.Reply(false, nil)
					continue
				}
				cmd := string(req.Payload[4 : 4+n])
				started = true
				_ = req.Reply(true, nil)
				go func() {
					defer close(done)
					s := r.newSession(ctx, ch, conn)
					status := s.exec(cmd)
					sendExit(ch, status)
				}()
			default:
				if req.WantReply {
					_ = req.Reply(false, nil)
				}
			}
		}
	}
}

func sendExit(ch ssh.Channel, status uint32) {
	b := binary.BigEndian.AppendUint32(nil, status)
	_, _ = ch.SendRequest("exit-status", false, b)
	_ = ch.CloseWrite()
}
