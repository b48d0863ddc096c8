package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"fieldagent/testlab/exam"
)

type labExamOptions struct {
	f         *Factory
	Scenario  string
	Seed      uint64
	seedSet   bool
	Faults    int
	All       bool
	HTML      string
	Lang      string
	Candidate string
}

func newLabExamCmd(f *Factory, runF func(context.Context, *labExamOptions) error) *cobra.Command {
	opts := &labExamOptions{f: f}
	cmd := &cobra.Command{
		Use:   "exam [SCENARIO|FILE]",
		Short: "Sit the technician skills exam on a simulated site, with fieldagent as the candidate",
		Long: `lab exam runs the operator's skills exam on a simulated site (the scenario's
devices and order; default: the e8 GPON new install): it runs the order as a
technician would with fieldagent (appointment call, arrival, installation,
activation, tests, the customer's acceptance, clean-up, 报竣), then sets the
drawn faults one at a time, diagnoses each with fieldagent's own diagnosis
and takes it away again. The sheet is scored with the operator's rubric:

  service and process 10 · installation 15 · activation and demo 30 · faults 35

within the time limit (e8 20 min, XT-2 15 min; 5 marks per started minute
over). The same --seed draws the same faults; without one a random seed is
drawn and printed, so that an exam can be sat again. Exit status 0 is a pass
(60%), 1 a fail.`,
		Example: `  fieldagent lab exam
  fieldagent lab exam xt2 --seed 42
  fieldagent lab exam e8-itv --faults 5 --html sheet.html --lang zh
  fieldagent lab exam --all --output json   # every catalogued fault the site can have`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Scenario = "default"
			if len(args) == 1 {
				opts.Scenario = args[0]
			}
			opts.seedSet = cmd.Flags().Changed("seed")
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLabExam(cmd.Context(), opts)
		},
	}
	cmd.Flags().Uint64Var(&opts.Seed, "seed", 0, "draw the faults from this seed (default: a random one, printed)")
	cmd.Flags().IntVar(&opts.Faults, "faults", 3, "how many faults to draw")
	cmd.Flags().BoolVar(&opts.All, "all", false, "set every catalogued fault the site's devices can have")
	cmd.Flags().StringVar(&opts.HTML, "html", "", "also write the score sheet as a printable page to this file")
	cmd.Flags().StringVar(&opts.Lang, "lang", "both", "language of the --html page: both, zh or en")
	cmd.Flags().StringVar(&opts.Candidate, "candidate", "", "the candidate's name on the sheet (default: fieldagent and its version)")
	return cmd
}

func runLabExam(ctx context.Context, opts *labExamOptions) error {
	f := opts.f
	switch opts.Lang {
	case exam.English, exam.Chinese, exam.Bilingual:
	default:
		return &usageError{fmt.Errorf("--lang %q: want both, zh or en", opts.Lang)}
	}
	if opts.Faults < 1 && !opts.All {
		return &usageError{errors.New("--faults must be at least 1")}
	}
	sc, err := loadScenario(opts.Scenario)
	if err != nil {
		return err
	}
	if !opts.seedSet {
		var b [8]byte
		_, _ = rand.Read(b[:])
		opts.Seed = binary.LittleEndian.Uint64(b[:]) % 1_000_000
	}
	candidate := opts.Candidate
	if candidate == "" {
		candidate = "fieldagent " + f.Build.Version
	}
	o := exam.Options{
		Scenario: sc.Name, Site: sc.Config(), OrderID: sc.Order, Seed: opts.Seed, Faults: opts.Faults, All: opts.All,
		Candidate: candidate, Logger: f.Logger().With("component", "exam"),
	}
	if !f.jsonOutput() {
		fmt.Fprintf(f.IO.Out, "Exam on scenario %s, seed %d (fieldagent lab exam %s --seed %d sits it again)\n", sc.Name, opts.Seed, opts.Scenario, opts.Seed)
		if f.IO.ErrIsTerminal {
			o.Progress = func(s string) { fmt.Fprintf(f.IO.ErrOut, "\r\033[K  … %s", truncate(s, 70)) }
		}
	}
	start := time.Now()
	sheet, err := exam.Run(ctx, o)
	if f.IO.ErrIsTerminal && !f.jsonOutput() {
		fmt.Fprint(f.IO.ErrOut, "\r\033[K")
	}
	if err != nil && sheet == nil {
		return fmt.Errorf("lab exam: %w", err)
	}
	if opts.HTML != "" {
		var page bytes.Buffer
		if herr := sheet.WriteHTML(&page, opts.Lang); herr != nil {
			return herr
		}
		if werr := os.WriteFile(opts.HTML, page.Bytes(), 0o600); werr != nil {
			return fmt.Errorf("write the score sheet: %w", werr)
		}
	}
	if f.jsonOutput() {
		if werr := f.writeJSON(sheet); werr != nil {
			return werr
		}
	} else {
		fmt.Fprintln(f.IO.Out)
		if werr := sheet.WriteText(f.IO.Out); werr != nil {
			return werr
		}
		if opts.HTML != "" {
			fmt.Fprintf(f.IO.Out, "score sheet written to %s\n", opts.HTML)
		}
		f.Logger().Debug("exam finished", "took", time.Since(start))
	}
	if err != nil {
		return &silentError{err: err, code: exitCheckFailed}
	}
	if !sheet.Passed {
		return &silentError{err: fmt.Errorf("exam failed: %v of %v", sheet.Total, sheet.Max), code: exitCheckFailed}
	}
	return nil
}

// truncate shortens s to n runes for a progress line.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
