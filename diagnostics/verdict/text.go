package verdict

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// maxDetail is how much of a check's detail (a probe's error) fits in the
// table's limit column; a longer one is cut there and printed whole below.
const maxDetail = 60

// WriteTable writes the checks as an aligned text table, one row per
// check (symbol, name, value, limit, probe), then the overall status. The
// error is the first write error.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tCHECK\tVALUE\tLIMIT\tPROBE")
	var long []Check // details too long for the table, printed whole below it
	for _, c := range r.Checks {
		value := "-"
		if c.Reading != "" && c.Status != StatusSkip {
			value = human(c.Value, c.Unit)
		}
		limit := c.Limit
		if c.Detail != "" {
			if limit != "" {
				limit += ": "
			}
			d := []rune(oneLine(c.Detail))
			if len(d) > maxDetail {
				d = append(d[:maxDetail-1], '…')
				long = append(long, c)
			}
			limit += string(d)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Status.Symbol(), c.Name, value, orDash(limit), orDash(c.Probe))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range long {
		if _, err := fmt.Fprintf(w, "%s %s: %s\n", c.Status.Symbol(), c.Name, oneLine(c.Detail)); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%s overall: %s (profile %s)\n", r.Status.Symbol(), r.Status, orDash(r.Profile))
	return err
}

// WriteFindings writes each finding as a block in lang: the symbol, code
// and symptom, then the cause, the fix and the evidence. It writes
// nothing when there are no findings.
func (r Report) WriteFindings(w io.Writer, lang Lang) error {
	cause, fix, evidence := "cause:    ", "fix:      ", "evidence: "
	if lang == Chinese {
		cause, fix, evidence = "原因：", "处理：", "依据："
	}
	var b strings.Builder
	for i, f := range r.Findings {
		if i > 0 {
			b.WriteString("\n")
		}
		s, c, x := f.Text(lang)
		fmt.Fprintf(&b, "%s %s: %s\n", f.Severity.Symbol(), f.Code, s)
		fmt.Fprintf(&b, "    %s%s\n", cause, c)
		fmt.Fprintf(&b, "    %s%s\n", fix, x)
		if len(f.Evidence) > 0 {
			fmt.Fprintf(&b, "    %s%s\n", evidence, strings.Join(f.Evidence, "; "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
