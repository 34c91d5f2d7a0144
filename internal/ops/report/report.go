// Package report is how every litemaas-ops command shows its result: a table of checks (component,
// check, status, detail), the error that says how many failed, and the confirmation asked before a
// change to a cluster.
package report

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Check results, as printed in the status column.
const (
	StatusOK   = "OK"
	StatusWarn = "WARN"
	StatusFail = "FAIL"
	StatusSkip = "SKIP"
)

// Row is one line of a check table.
type Row struct {
	Component, Check, Status, Detail string
}

// PrintTable writes rows under headers, columns aligned. Details may be long; they come last so that
// wrapping in a narrow terminal does not break the alignment of the others.
func PrintTable(w io.Writer, headers []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

// PrintChecks writes rows as a table of checks.
func PrintChecks(w io.Writer, rows []Row) {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = []string{r.Component, r.Check, r.Status, r.Detail}
	}
	PrintTable(w, []string{"COMPONENT", "CHECK", "STATUS", "DETAIL"}, out)
}

// CountStatus counts the rows with the given status.
func CountStatus(rows []Row, status string) int {
	n := 0
	for _, r := range rows {
		if r.Status == status {
			n++
		}
	}
	return n
}

// ProblemsError reports that checks failed; the table printed before says which.
type ProblemsError struct {
	What  string
	Count int
}

func (e *ProblemsError) Error() string {
	s := "s"
	if e.Count == 1 {
		s = ""
	}
	return fmt.Sprintf("%s: %d problem%s (see the table above)", e.What, e.Count, s)
}

// ErrNotConfirmed is returned when the user does not confirm a change.
var ErrNotConfirmed = errors.New("not confirmed: nothing was changed")

// Confirm asks question on out and reads the answer from in; only y or yes (any case) confirms. No input
// (a closed or non-interactive stdin) is a no, so that a script never changes a cluster by accident:
// scripts pass --yes.
func Confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprintf(out, "%s [y/N] ", question)
	if in == nil {
		fmt.Fprintln(out)
		return false
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(out)
		return false
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// ShortDuration prints a duration rounded to the second: 5s, 2m10s.
func ShortDuration(d time.Duration) string { return d.Round(time.Second).String() }

// OrDash is s, or "-" when s is empty: a table cell or message part that is never blank.
func OrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// LimitList joins the first n entries of l and says how many more there are.
func LimitList(l []string, n int) string {
	if len(l) <= n {
		return strings.Join(l, ", ")
	}
	return strings.Join(l[:n], ", ") + fmt.Sprintf(" and %d more", len(l)-n)
}
