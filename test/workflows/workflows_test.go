// Package workflows lints the GitHub Actions workflows with actionlint, so that a broken workflow (an
// unknown key, a bad expression, a wrong action input, a shell mistake when shellcheck is installed)
// fails `make test` instead of a fork's first run.
package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
)

// envActionlint names the actionlint binary, or the directory holding it, that hack/actionlint/build.sh
// builds (its last output line); `make test` sets it.
const envActionlint = "ACTIONLINT_BIN"

// actionlintBin returns the actionlint binary of $ACTIONLINT_BIN. Unset, the test is skipped, except in
// CI, where a missing linter is a failure.
func actionlintBin(t *testing.T) string {
	t.Helper()
	p := os.Getenv(envActionlint)
	if p == "" {
		msg := envActionlint + " is unset: the workflows are linted by actionlint from hack/actionlint/build.sh " +
			"(`make test` builds and passes it; by hand: " + envActionlint + "=$(hack/actionlint/build.sh | tail -n 1) go test ./test/workflows/)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		p = filepath.Join(p, "actionlint")
	}
	fi, err := os.Stat(p)
	require.NoError(t, err, "%s: no actionlint binary (build it with hack/actionlint/build.sh)", envActionlint)
	require.False(t, fi.IsDir(), "%s: %s is a directory without actionlint", envActionlint, p)
	return p
}

// lintError is one problem as `actionlint -format '{{json .}}'` reports it.
type lintError struct {
	Message  string `json:"message"`
	Filepath string `json:"filepath"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Kind     string `json:"kind"`
}

// lint runs actionlint on files and returns what it reports. Its exit status is 0 for no problem and 1 for
// problems found; anything else (a bad flag, a file it cannot read) fails the test.
func lint(t *testing.T, files ...string) []lintError {
	t.Helper()
	// shellcheck checks the run: scripts when it is installed (it is on GitHub's runners); pyflakes is
	// not used (the workflows have no Python steps), so that a machine that has it judges the same.
	sc := shellcheck()
	if sc == "" {
		t.Log("shellcheck not found: run: scripts are not checked (apt-get install shellcheck)")
	}
	args := append([]string{"-format", "{{json .}}", "-no-color", "-shellcheck=" + sc, "-pyflakes="}, files...)
	cmd := exec.Command(actionlintBin(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		require.NoError(t, err, "actionlint %s:\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
	}
	var errs []lintError
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &errs), "actionlint's JSON output:\n%s\n%s", stdout.String(), stderr.String())
	// Exit status 1 means problems: it must come with at least one.
	assert.Equal(t, err != nil, len(errs) > 0, "exit status %v with %d problems", err, len(errs))
	return errs
}

func TestWorkflowsPassActionlint(t *testing.T) {
	files, err := filepath.Glob("../../.github/workflows/*.y*ml")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no workflow found")
	names := map[string]bool{}
	for _, f := range files {
		names[filepath.Base(f)] = true
	}
	assert.Equal(t, map[string]bool{"checks.yaml": true, "image.yaml": true}, names)
	for _, e := range lint(t, files...) {
		t.Errorf("%s:%d:%d: %s [%s]", filepath.Base(e.Filepath), e.Line, e.Column, e.Message, e.Kind)
	}
}

func shellcheck() string {
	p, _ := exec.LookPath("shellcheck")
	return p
}

// TestActionlintCatchesABrokenWorkflow: the check above can fail.
func TestActionlintCatchesABrokenWorkflow(t *testing.T) {
	errs := lint(t, "testdata/broken.yaml")
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Kind+": "+e.Message)
	}
	all := strings.Join(msgs, "\n")
	t.Logf("actionlint on testdata/broken.yaml:\n%s", all)
	for _, want := range []string{`unknown Webhook event "pull_requests"`, `"runs-on" section is missing in job "build"`, `property "nope" is not defined`} {
		assert.Contains(t, all, want)
	}
	if shellcheck() != "" {
		assert.Contains(t, all, "shellcheck reported issue in this script: SC2086")
	}
}

// pinnedUses matches a `uses:` of an action pinned by full commit SHA, with its tag in a comment.
var pinnedUses = regexp.MustCompile(`^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s+v\d+(\.\d+)*\s*$`)

// unpinnedUses returns the `uses:` lines of data that do not name a full commit SHA with its tag in a
// comment (local actions, ./..., are not fetched from anywhere and need no pin).
func unpinnedUses(data string) []string {
	var out []string
	for i, l := range strings.Split(data, "\n") {
		t := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- "))
		if !strings.HasPrefix(t, "uses:") || strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(t, "uses:")), "./") {
			continue
		}
		if !pinnedUses.MatchString(l) {
			out = append(out, fmt.Sprintf("line %d: %s", i+1, strings.TrimSpace(l)))
		}
	}
	return out
}

// TestActionsPinnedBySHA: a tag can be moved to other code by whoever controls the action's repository;
// a commit SHA cannot. Renovate keeps the SHAs and their tag comments up to date.
func TestActionsPinnedBySHA(t *testing.T) {
	files, err := filepath.Glob("../../.github/workflows/*.y*ml")
	require.NoError(t, err)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		n += strings.Count(string(b), "uses:")
		for _, u := range unpinnedUses(string(b)) {
			t.Errorf("%s: %s: pin the action by its full commit SHA, with the tag in a comment (uses: owner/action@<40 hex> # vX.Y.Z)", filepath.Base(f), u)
		}
	}
	require.Positive(t, n, "no uses: found")
}

func TestUnpinnedUsesFound(t *testing.T) {
	wf := `steps:
  - uses: actions/checkout@v4
  - uses: actions/setup-go@40f1582b2485089dde7abd97c1529aa768e1baff # v5.6.0
  - uses: actions/cache@0057852bfaa89a56745cba8c7296529d2fc39830
  - uses: actions/cache@0057852bfaa89a56745c # v4.3.0
  - uses: ./local-action
`
	assert.Equal(t, []string{
		"line 2: - uses: actions/checkout@v4",
		"line 4: - uses: actions/cache@0057852bfaa89a56745cba8c7296529d2fc39830",
		"line 5: - uses: actions/cache@0057852bfaa89a56745c # v4.3.0",
	}, unpinnedUses(wf))
}

// TestImageWorkflowAttestsTheSBOMMakeImageWrites: the workflow's sbom-path is where `make image` writes the
// SBOM, so that a moved layout fails here and not on the fork's first release.
func TestImageWorkflowAttestsTheSBOMMakeImageWrites(t *testing.T) {
	wf, err := os.ReadFile("../../.github/workflows/image.yaml")
	require.NoError(t, err)
	mk, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)
	out := regexp.MustCompile(`(?m)^\s*\$\(GO\) run \./hack/image build --out (\S+)`).FindSubmatch(mk)
	require.NotNil(t, out, "the Makefile's image target with --out")
	sbom := regexp.MustCompile(`(?m)^\s*sbom-path:\s*(\S+)\s*$`).FindSubmatch(wf)
	require.NotNil(t, sbom, "no sbom-path in image.yaml")
	assert.Equal(t, jobimage.SBOMPath(string(out[1])), string(sbom[1]))
}
