// Package workflows lints the GitHub Actions workflows with actionlint, so that a broken workflow (an
// unknown key, a bad expression, a wrong action input, a shell mistake when shellcheck is installed)
// fails `make test` instead of a fork's first run.
package workflows

import (
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func lint(t *testing.T, files ...string) []*actionlint.Error {
	t.Helper()
	opts := &actionlint.LinterOptions{}
	// shellcheck checks the run: scripts when it is installed (it is on GitHub's runners).
	if p := shellcheck(); p != "" {
		opts.Shellcheck = p
	} else {
		t.Log("shellcheck not found: run: scripts are not checked (apt-get install shellcheck)")
	}
	l, err := actionlint.NewLinter(io.Discard, opts)
	require.NoError(t, err)
	errs, err := l.LintFiles(files, nil)
	require.NoError(t, err)
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
