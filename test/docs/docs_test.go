// Package docs checks the repository's Markdown: every relative link points at a file that exists and,
// when it names an anchor, at a heading that exists, so that moving a section never leaves a dead link
// behind in the README or the docs.
package docs

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const root = "../.."

// markdownFiles lists the tracked Markdown files, relative to the repository root. git decides what is
// tracked, so build output and scratch files never count.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard", "*.md").Output()
	require.NoError(t, err, "git ls-files")
	var files []string
	for _, f := range strings.Fields(string(out)) {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			files = append(files, f)
		}
	}
	require.NotEmpty(t, files)
	return files
}

var (
	// [text](target) and [text](target "title"); images too. Reference-style links are not used here.
	inlineLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	heading    = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	fence      = regexp.MustCompile("^\\s*(```|~~~)")
	// An explicit anchor: <a id="x"></a> or <a name="x"></a>.
	htmlAnchor = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
)

// link is one relative link found in a file.
type link struct {
	file   string // the Markdown file holding it
	line   int
	target string
}

// scan returns a file's relative links and the anchors its headings define, skipping fenced code.
func scan(t *testing.T, file string) ([]link, map[string]bool) {
	t.Helper()
	f, err := os.Open(filepath.Join(root, file))
	require.NoError(t, err)
	defer f.Close()
	var links []link
	anchors := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			a := slug(m[2])
			// GitHub numbers repeated headings: x, x-1, x-2.
			if k := seen[a]; k > 0 {
				anchors[fmt.Sprintf("%s-%d", a, k)] = true
			} else {
				anchors[a] = true
			}
			seen[a]++
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			anchors[m[1]] = true
		}
		for _, m := range inlineLink.FindAllStringSubmatch(stripCodeSpans(line), -1) {
			target := m[1]
			if u, err := url.Parse(target); err == nil && (u.Scheme != "" || strings.HasPrefix(target, "//")) {
				continue // an absolute URL: not ours to check offline
			}
			links = append(links, link{file: file, line: n, target: target})
		}
	}
	require.NoError(t, s.Err())
	return links, anchors
}

// stripCodeSpans removes `code` spans, where a "](x)" is text, not a link.
func stripCodeSpans(line string) string {
	var b strings.Builder
	in := false
	for _, r := range line {
		if r == '`' {
			in = !in
			continue
		}
		if !in {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// slug is GitHub's heading anchor: lower case, punctuation other than '-' and '_' dropped, spaces to
// hyphens, formatting (code spans, emphasis, links) reduced to its text.
func slug(h string) string {
	h = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"The two commands":                      "the-two-commands",
		"Option A: one command":                 "option-a-one-command",
		"Advisory litemaas#137: LiteMaaS 0.4.0": "advisory-litemaas137-litemaas-040",
		"`make verify` and `--chat`":            "make-verify-and---chat",
		"Exit codes [and](x.md) more":           "exit-codes-and-more",
		"snake_case stays":                      "snake_case-stays",
	} {
		assert.Equal(t, want, slug(in), in)
	}
}

// TestRelativeLinksResolve fails on a relative link to a missing file or a missing heading.
func TestRelativeLinksResolve(t *testing.T) {
	files := markdownFiles(t)
	anchorsOf := map[string]map[string]bool{}
	var all []link
	for _, f := range files {
		links, anchors := scan(t, f)
		anchorsOf[f] = anchors
		all = append(all, links...)
	}
	checked := 0
	for _, l := range all {
		path, frag, _ := strings.Cut(l.target, "#")
		path, _ = url.PathUnescape(path)
		target := l.file
		if path != "" {
			target = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(l.file), path)))
			if strings.HasPrefix(target, "../") {
				t.Errorf("%s:%d: %q leaves the repository", l.file, l.line, l.target)
				continue
			}
			if _, err := os.Stat(filepath.Join(root, target)); err != nil {
				t.Errorf("%s:%d: %q: no such file %s", l.file, l.line, l.target, target)
				continue
			}
		}
		checked++
		if frag == "" || !strings.HasSuffix(target, ".md") {
			continue
		}
		anchors, ok := anchorsOf[target]
		if !ok {
			_, anchors = scan(t, target)
			anchorsOf[target] = anchors
		}
		if !anchors[frag] {
			t.Errorf("%s:%d: %q: %s has no heading with anchor #%s", l.file, l.line, l.target, target, frag)
		}
	}
	t.Logf("%d relative links checked in %d Markdown files", checked, len(files))
	assert.NotZero(t, checked, "no relative link found: the scanner is broken")
}

// readmeBudget is the README's length limit: it is the front door, read in ten minutes; the rest lives in
// docs/, each file linked from it.
const readmeBudget = 250

// TestREADMEIsTheFrontDoor fails on a README over its budget, and on a file of docs/ that the README does
// not link exactly once (a page nobody can find, or a README that sends readers to one page twice).
func TestREADMEIsTheFrontDoor(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	lines := strings.Count(string(data), "\n")
	assert.LessOrEqual(t, lines, readmeBudget, "README.md has %d lines: move detail to docs/", lines)

	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	require.NotEmpty(t, pages, "docs/ has no page")
	links, _ := scan(t, "README.md")
	for _, p := range pages {
		rel := "docs/" + filepath.Base(p)
		n := 0
		for _, l := range links {
			if path, _, _ := strings.Cut(l.target, "#"); path == rel {
				n++
			}
		}
		assert.Equal(t, 1, n, "README.md links %s %d times (want once)", rel, n)
	}
}
