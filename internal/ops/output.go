package ops

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Check results, as printed in the status column.
const (
	statusOK   = "OK"
	statusWarn = "WARN"
	statusFail = "FAIL"
	statusSkip = "SKIP"
)

// row is one line of a check table.
type row struct {
	Component, Check, Status, Detail string
}

// printTable writes rows under headers, columns aligned. Details may be long; they come last so that
// wrapping in a narrow terminal does not break the alignment of the others.
func printTable(w io.Writer, headers []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

func printChecks(w io.Writer, rows []row) {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = []string{r.Component, r.Check, r.Status, r.Detail}
	}
	printTable(w, []string{"COMPONENT", "CHECK", "STATUS", "DETAIL"}, out)
}

// countStatus counts the rows with the given status.
func countStatus(rows []row, status string) int {
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

// errNotConfirmed is returned when the user does not confirm a change.
var errNotConfirmed = errors.New("not confirmed: nothing was changed")

// confirm asks question on out and reads the answer from in; only y or yes (any case) confirms. No input
// (a closed or non-interactive stdin) is a no, so that a script never changes a cluster by accident:
// scripts pass --yes.
func confirm(in io.Reader, out io.Writer, question string) bool {
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

// yamlToObject parses one YAML document into obj.
func yamlToObject(data []byte, obj *unstructured.Unstructured) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	return obj.UnmarshalJSON(js)
}
