// Command testreport reads `go test -json` on stdin, prints the tests' output as `go test -v` would
// not (only what a plain `go test` prints: failures, package results), and ends with every skipped
// test by name and reason. With -strict (CI=true), a skip that the allow-list file does not name
// fails the run: a test that silently stops running proves nothing.
//
// The allow-list has one `<package> <test>` per line (a subtest as Test/sub, `*` for every test of
// the package); '#' starts a comment, which should say why the skip is expected on CI.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type skip struct{ pkg, test, reason string }

func main() {
	allowFile := flag.String("allow", "", "allow-list file of expected skips")
	strict := flag.Bool("strict", os.Getenv("CI") == "true", "fail on a skip the allow-list does not name (default: CI=true)")
	flag.Parse()
	allowed, err := readAllow(*allowFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	skips, failed, err := report(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	unexpected := summarize(os.Stdout, skips, allowed)
	switch {
	case failed:
		os.Exit(1)
	case *strict && unexpected > 0:
		fmt.Printf("FAIL: %d skipped test(s) not in %s: make them run on CI, or add them there with the reason\n", unexpected, *allowFile)
		os.Exit(1)
	}
}

// report copies what a plain `go test` prints and collects the skips. A test's output is printed
// only when it fails; package lines (ok, FAIL, no test files) always.
func report(r io.Reader, w io.Writer) (skips []skip, failed bool, err error) {
	outputs := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if json.Unmarshal(line, &e) != nil {
			fmt.Fprintln(w, string(line)) // not JSON: a build error, say
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			if e.Test == "" {
				if !strings.HasPrefix(e.Output, "=== ") && !strings.HasPrefix(e.Output, "PASS\n") {
					fmt.Fprint(w, e.Output)
				}
				continue
			}
			outputs[key] = append(outputs[key], e.Output)
		case "skip":
			if e.Test != "" {
				skips = append(skips, skip{e.Package, e.Test, reason(outputs[key])})
			}
			delete(outputs, key)
		case "fail":
			failed = true
			if e.Test != "" {
				fmt.Fprint(w, strings.Join(outputs[key], ""))
			}
			delete(outputs, key)
		case "pass":
			delete(outputs, key)
		}
	}
	return skips, failed, sc.Err()
}

// reason is the skip's message: the test's last output line that is not a framework line.
func reason(out []string) string {
	for i := len(out) - 1; i >= 0; i-- {
		l := strings.TrimSpace(out[i])
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		return l
	}
	return "(no reason given)"
}

func summarize(w io.Writer, skips []skip, allowed map[string]bool) (unexpected int) {
	sort.Slice(skips, func(i, j int) bool {
		return skips[i].pkg+" "+skips[i].test < skips[j].pkg+" "+skips[j].test
	})
	fmt.Fprintf(w, "\n%d skipped test(s)\n", len(skips))
	for _, s := range skips {
		mark := "allowed"
		if !isAllowed(allowed, s) {
			mark = "NOT ALLOWED"
			unexpected++
		}
		fmt.Fprintf(w, "  %-11s %s %s: %s\n", mark, s.pkg, s.test, s.reason)
	}
	return unexpected
}

func isAllowed(allowed map[string]bool, s skip) bool {
	if allowed[s.pkg+" *"] || allowed[s.pkg+" "+s.test] {
		return true
	}
	// A skipped parent allows its subtests.
	for t := s.test; strings.Contains(t, "/"); {
		t = t[:strings.LastIndex(t, "/")]
		if allowed[s.pkg+" "+t] {
			return true
		}
	}
	return false
}

func readAllow(path string) (map[string]bool, error) {
	allowed := map[string]bool{}
	if path == "" {
		return allowed, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for n, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		switch len(f) {
		case 0:
		case 2:
			allowed[f[0]+" "+f[1]] = true
		default:
			return nil, fmt.Errorf("%s:%d: want `<package> <test>`", path, n+1)
		}
	}
	return allowed, nil
}
