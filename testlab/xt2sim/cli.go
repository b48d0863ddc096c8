package xt2sim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// pageLen is how many lines the CLI shows before "---- More ----".
const pageLen = 24

const morePrompt = "  ---- More ----"

// view is one level of the CLI: the kind and, for block views, the block.
type view struct {
	kind viewKind
	head string // block head ("interface Dialer1"); "" for user and system
}

// session is one CLI session (a shell or an exec) with its own candidate.
type session struct {
	r      *Router
	ctx    context.Context
	in     *bufio.Reader
	out    *bufio.Writer
	conn   net.Conn
	views  []view
	edits  []edit
	paging bool
	echo   bool
	lastCR bool

	commands  int
	dropAfter int
}

func (r *Router) newSession(ctx context.Context, rw io.ReadWriter, conn net.Conn) *session {
	return &session{
		r: r, ctx: ctx, conn: conn,
		in:     bufio.NewReader(rw),
		out:    bufio.NewWriter(rw),
		views:  []view{{kind: viewUser}},
		paging: true,
	}
}

func (s *session) cur() view { return s.views[len(s.views)-1] }

// prompt returns the prompt of the current view.
func (s *session) prompt() string {
	name := s.r.sysname()
	v := s.cur()
	switch v.kind {
	case viewUser:
		return "<" + name + ">"
	case viewSystem:
		return "[" + name + "]"
	case viewEth, viewDialer:
		return "[" + name + "-" + strings.TrimPrefix(v.head, "interface ") + "]"
	case viewPool:
		return "[" + name + "-ip-pool-" + strings.TrimPrefix(v.head, "ip pool ") + "]"
	case viewACL:
		n := strings.TrimPrefix(v.head, "acl number ")
		kind := "adv"
		if len(n) == 4 && n[0] == '2' {
			kind = "basic"
		}
		return "[" + name + "-acl-" + kind + "-" + n + "]"
	}
	return "<" + name + ">"
}

func (s *session) write(str string) { _, _ = s.out.WriteString(str) }

func (s *session) writeLines(lines []string) {
	for _, l := range lines {
		s.write(l + "\r\n")
	}
}

// readKey returns the next input byte, with "\r\n" and a lone "\n" both
// read as "\r" (what a terminal's Enter sends).
func (s *session) readKey() (byte, error) {
	if err := s.out.Flush(); err != nil {
		return 0, err
	}
	for {
		b, err := s.in.ReadByte()
		if err != nil {
			return 0, err
		}
		if b == '\n' && s.lastCR {
			s.lastCR = false
			continue
		}
		s.lastCR = b == '\r'
		if b == '\n' {
			return '\r', nil
		}
		return b, nil
	}
}

// readLine reads one line, echoing as a PTY in cooked mode does.
func (s *session) readLine() (string, error) {
	var buf []byte
	for {
		b, err := s.readKey()
		if err != nil {
			return "", err
		}
		switch {
		case b == '\r':
			s.write("\r\n")
			return string(buf), nil
		case b == 0x7f || b == 0x08:
			if len(buf) > 0 {
				buf = buf[:len(buf)-1]
				s.write("\b \b")
			}
		case b == 0x03: // Ctrl-C abandons the line.
			s.write("^C\r\n")
			return "", nil
		case b == 0x15: // Ctrl-U erases the line.
			for range buf {
				s.write("\b \b")
			}
			buf = buf[:0]
		case b == 0x1b: // Escape sequences (arrow keys) are ignored.
			if n, _ := s.in.Peek(1); len(n) == 1 && n[0] == '[' {
				_, _ = s.in.ReadByte()
				_, _ = s.in.ReadByte()
			}
		case b == '\t' || b >= 0x20:
			if b == '\t' {
				b = ' '
			}
			buf = append(buf, b)
			s.out.WriteByte(b)
		}
	}
}

// shell runs an interactive session until the user quits or the
// connection ends.
func (s *session) shell() {
	s.echo = true
	s.r.mu.Lock()
	s.dropAfter, s.r.dropAfter = s.r.dropAfter, 0
	s.r.mu.Unlock()
	s.write("\r\nInfo: The max number of VTY users is 5, and the number of current VTY users on line is 1.\r\n")
	for {
		s.write(s.prompt())
		line, err := s.readLine()
		if err != nil {
			return
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !s.run(line) {
			_ = s.out.Flush()
			return
		}
		s.commands++
		if s.dropAfter > 0 && s.commands >= s.dropAfter {
			_ = s.out.Flush()
			s.r.logger.Info("xt2sim: fault: dropping ssh session", "after_commands", s.commands)
			_ = s.conn.Close()
			return
		}
	}
}

// exec runs the lines of an exec request without echo, prompts or paging;
// it returns 1 when a command failed.
func (s *session) exec(cmd string) uint32 {
	s.paging = false
	var status uint32
	for _, line := range strings.Split(cmd, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !s.runStatus(line, &status) {
			break
		}
	}
	_ = s.out.Flush()
	return status
}

// run executes one command line; it returns false when the session ends.
func (s *session) run(line string) bool {
	var status uint32
	return s.runStatus(line, &status)
}

func (s *session) runStatus(line string, status *uint32) bool {
	toks := tokenize(line)
	v := s.cur()
	s.r.logger.Debug("xt2sim: command", "view", s.prompt(), "line", maskLine(line))

	if strings.EqualFold(toks[0].s, "undo") && v.kind != viewUser {
		if msg := s.undo(toks[1:], len(line)); msg != nil {
			*status = 1
			s.showErr(msg)
		}
		return true
	}
	pt, words, merr := match(patternsFor(v.kind), toks, len(line), false)
	if merr != nil {
		*status = 1
		s.showErr(merr)
		return true
	}
	switch pt.kind {
	case kindDisplay:
		out, err := s.display(pt.name, words)
		if err != "" {
			*status = 1
			s.writeLines([]string{err})
			return true
		}
		return s.page(out)
	case kindSession:
		return s.sessionCmd(pt.name)
	case kindGlobal:
		s.addEdit(edit{head: "", line: strings.Join(words, " "), key: pt.key})
	case kindSet:
		s.addEdit(edit{head: v.head, line: strings.Join(words, " "), key: pt.key})
	case kindEnter:
		return s.enter(pt.name, words, status)
	case kindAction:
		return s.action(pt.name, line, status)
	}
	return true
}

func (s *session) showErr(m *matchErr) {
	if m.pos >= 0 {
		pad := m.pos
		if s.echo {
			pad += len(s.prompt())
		}
		s.writeLines([]string{strings.Repeat(" ", pad) + "^"})
	}
	s.writeLines([]string{m.msg})
}

// candidate returns running with this session's edits applied.
func (s *session) candidate() *config {
	s.r.mu.Lock()
	c := s.r.running.clone()
	s.r.mu.Unlock()
	for _, e := range s.edits {
		e.apply(c)
	}
	return c
}

func (s *session) addEdit(e edit) { s.edits = append(s.edits, e) }

func (s *session) enter(name string, words []string, status *uint32) bool {
	var head string
	var kind viewKind
	switch name {
	case "interface":
		ifn := canonIfname(words[1])
		if !interfaceExists(ifn) {
			*status = 1
			s.writeLines([]string{"Error: The interface does not exist."})
			return true
		}
		head = "interface " + ifn
		kind = viewEth
		if ifn == dialerName {
			kind = viewDialer
		}
	case "pool":
		head, kind = "ip pool "+words[2], viewPool
	case "acl":
		head, kind = "acl number "+words[2], viewACL
	}
	if s.candidate().find(head) == nil {
		s.addEdit(edit{head: head, create: true})
	}
	s.views = append(s.views, view{kind: kind, head: head})
	return true
}

// undo removes a line (or a block from system view).
func (s *session) undo(toks []token, lineLen int) *matchErr {
	v := s.cur()
	if len(toks) == 0 {
		return &matchErr{msg: errIncomplete, pos: lineLen}
	}
	if v.kind == viewSystem {
		words := joinTokens(toks)
		for _, pre := range []string{"interface ", "ip pool ", "acl number "} {
			if !strings.HasPrefix(strings.ToLower(words), pre) {
				continue
			}
			head := words
			if pre == "interface " && len(toks) == 2 {
				ifn := canonIfname(toks[1].s)
				if ifn != dialerName {
					return &matchErr{msg: "Error: The interface cannot be deleted.", pos: -1}
				}
				head = "interface " + ifn
			}
			if s.candidate().find(head) == nil {
				return &matchErr{msg: "Error: The configuration does not exist.", pos: -1}
			}
			s.addEdit(edit{head: head, drop: true})
			return nil
		}
	}
	_, words, merr := match(configPatterns(v.kind), toks, lineLen, true)
	if merr != nil {
		return merr // token offsets are already those of the whole line
	}
	prefix := strings.Join(words, " ")
	head := v.head
	if !(edit{head: head, line: prefix, undo: true}).apply(s.candidate()) {
		return &matchErr{msg: "Error: The configuration does not exist.", pos: -1}
	}
	s.addEdit(edit{head: head, line: prefix, undo: true})
	return nil
}

func joinTokens(toks []token) string {
	w := make([]string, len(toks))
	for i, t := range toks {
		w[i] = t.s
	}
	return strings.Join(w, " ")
}

func (s *session) sessionCmd(name string) bool {
	switch name {
	case "system-view":
		s.writeLines([]string{"Enter system view, return user view with return command."})
		s.views = append(s.views, view{kind: viewSystem})
	case "screen-length":
		s.paging = false
		s.writeLines([]string{"Info: The configuration takes effect on the current user terminal interface only."})
	case "quit":
		if len(s.views) == 1 {
			return false
		}
		s.views = s.views[:len(s.views)-1]
	case "return":
		s.views = s.views[:1]
	case "commit":
		if len(s.edits) == 0 {
			s.writeLines([]string{"Info: Commit succeeded."})
			return true
		}
		edits := s.edits
		s.edits = nil
		s.writeLines([]string{"Info: Commit succeeded."})
		_ = s.out.Flush()
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		s.r.commit(ctx, edits)
		cancel()
	case "abort":
		s.edits = nil
		s.writeLines([]string{"Info: The uncommitted configuration has been discarded."})
	case "save":
		s.write("Warning: The current configuration will be written to the device.\r\n")
		s.write("Are you sure to save the configuration? [Y/N]:")
		for {
			k, err := s.readKey()
			if err != nil {
				return false
			}
			switch k {
			case 'y', 'Y':
				s.write("y\r\n")
				s.skipNewline()
				s.r.save()
				s.writeLines([]string{"Now saving the current configuration to the slot 0.", "Info: Save the configuration successfully."})
				return true
			case 'n', 'N':
				s.write("n\r\n")
				s.skipNewline()
				return true
			}
		}
	}
	return true
}

// skipNewline drops a line end that follows a confirmation key.
func (s *session) skipNewline() {
	_ = s.out.Flush()
	if b, err := s.in.Peek(1); err == nil && (b[0] == '\r' || b[0] == '\n') {
		_, _ = s.readKey()
	}
}

// page writes lines, stopping at every pageLen lines while paging is on.
func (s *session) page(lines []string) bool {
	if !s.paging || !s.echo || len(lines) <= pageLen {
		s.writeLines(lines)
		return true
	}
	n := pageLen
	for i := 0; i < len(lines); {
		end := min(i+n, len(lines))
		s.writeLines(lines[i:end])
		i = end
		if i >= len(lines) {
			break
		}
		s.write(morePrompt)
		k, err := s.readKey()
		if err != nil {
			return false
		}
		s.write("\r" + strings.Repeat(" ", len(morePrompt)) + "\r")
		switch k {
		case ' ':
			n = pageLen
		case '\r':
			n = 1
		default:
			return true
		}
	}
	return true
}

// display runs a display command; err is an Error: line.
func (s *session) display(name string, words []string) (out []string, err string) {
	switch name {
	case "version":
		return s.r.showVersion(), ""
	case "interface-brief":
		return s.r.showInterfaceBrief(), ""
	case "interface":
		ifn := canonIfname(words[2])
		if !interfaceExists(ifn) {
			return nil, "Error: The interface does not exist."
		}
		return s.r.showInterface(ifn), ""
	case "interface-all":
		for _, p := range ethPorts {
			out = append(out, s.r.showInterface(p)...)
			out = append(out, "")
		}
		return append(out, s.r.showInterface(dialerName)...), ""
	case "pppoe":
		return s.r.showPPPoE(), ""
	case "ip-brief":
		return s.r.showIPBrief(), ""
	case "bbms":
		return s.r.showBBMS(), ""
	case "current":
		s.r.mu.Lock()
		defer s.r.mu.Unlock()
		return s.r.running.render(), ""
	case "saved":
		s.r.mu.Lock()
		defer s.r.mu.Unlock()
		return s.r.startup.render(), ""
	case "candidate":
		if len(s.edits) == 0 {
			return []string{"Info: There is no uncommitted configuration."}, ""
		}
		last := "\x00"
		for _, e := range s.edits {
			if e.head != last && !e.create && !e.drop {
				out = append(out, "#")
				if e.head != "" {
					out = append(out, e.head)
				}
				last = e.head
			}
			if e.create || e.drop {
				out = append(out, "#")
				last = e.head
			}
			out = append(out, e.render())
		}
		return append(out, "#"), ""
	case "this":
		c := s.candidate()
		v := s.cur()
		out = append(out, "#")
		if b := c.find(v.head); b != nil {
			if v.head != "" {
				out = append(out, b.head)
			}
			for _, l := range b.lines {
				out = append(out, " "+cipherLine(l))
			}
		}
		return append(out, "#", "return"), ""
	}
	return nil, fmt.Sprintf("Error: display %s is not supported.", name)
}
