package initoverlay

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

// argoFiles are the files of gitops/argocd that name the fork and the revision Argo CD syncs.
var argoFiles = []string{
	tree.RootAppFile,
	tree.AppOfAppsDir + "/step-06b-private-ai-litemaas.yaml",
	"gitops/argocd/fleet/litemaas-fleet.yaml",
	manifests.ProjectFile,
}

// revisionPattern is a branch or tag name git accepts (a subset: no "..", no leading '-' or '/').
var revisionPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._/-]*$`)

// checkRevision rejects HEAD and what is no branch or tag name.
func checkRevision(rev string) error {
	if rev == "HEAD" {
		return fmt.Errorf("revision HEAD follows the repository's default branch: name a branch (e.g. main) or a tag")
	}
	if !revisionPattern.MatchString(rev) || strings.Contains(rev, "..") || strings.HasSuffix(rev, "/") || strings.HasSuffix(rev, ".lock") {
		return fmt.Errorf("revision %q is not a branch or tag name (e.g. main, or v1.2.0)", rev)
	}
	return nil
}

var (
	repoURLLine    = regexp.MustCompile(`(?m)^(\s*repoURL:\s*)(\S+)(.*)$`)
	revisionLine   = regexp.MustCompile(`(?m)^(\s*(?:targetRevision|revision):\s*)(\S+)(.*)$`)
	sourceRepoLine = regexp.MustCompile(`(?m)^(\s*sourceRepos:\s*\n\s*-\s*)(\S+)(.*)$`)
)

// currentSource returns the repoURL and targetRevision of the root Application.
func currentSource(root string) (repo, rev string) {
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(tree.RootAppFile)))
	if err != nil {
		return "", ""
	}
	if m := repoURLLine.FindSubmatch(data); m != nil {
		repo = string(m[2])
	}
	if m := revisionLine.FindSubmatch(data); m != nil {
		rev = string(m[2])
	}
	return repo, rev
}

// setSource writes repo (when not empty) and rev (when not empty) into the files of gitops/argocd: the
// Applications' repoURL and targetRevision, the fleet generator's revision and the AppProject's
// sourceRepos. The files are edited as text, so that their comments stay. It returns the files changed.
func setSource(root, repo, rev string) ([]string, error) {
	var changed []string
	for _, rel := range argoFiles {
		p := filepath.Join(root, filepath.FromSlash(rel))
		data, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return changed, err
		}
		out := data
		if repo != "" {
			out = repoURLLine.ReplaceAll(out, []byte("${1}"+repo+"${3}"))
			out = sourceRepoLine.ReplaceAll(out, []byte("${1}"+repo+"${3}"))
		}
		if rev != "" {
			out = revisionLine.ReplaceAll(out, []byte("${1}"+rev+"${3}"))
		}
		if string(out) == string(data) {
			continue
		}
		if err := os.WriteFile(p, out, 0o644); err != nil {
			return changed, err
		}
		changed = append(changed, rel)
	}
	return changed, nil
}

// ask prints question and reads one line; "" on end of input.
func ask(in io.Reader, out io.Writer, question string) string {
	fmt.Fprint(out, question)
	if in == nil {
		fmt.Fprintln(out)
		return ""
	}
	line, _ := bufio.NewReader(in).ReadString('\n')
	return strings.TrimSpace(line)
}

// SourceOptions are the fork and the revision --init-overlay writes into gitops/argocd (--repo-url,
// --revision), and where to ask for them when not given (unless Yes).
type SourceOptions struct {
	RepoURL, Revision string
	Yes               bool
	In                io.Reader
	Out               io.Writer
}

// WriteSource asks for (or takes from the flags) the fork and the revision Argo CD syncs, and writes
// them into gitops/argocd. It returns the files changed.
func WriteSource(root string, o SourceOptions) ([]string, error) {
	curRepo, curRev := currentSource(root)
	if o.In != nil {
		// One buffered reader for both questions, so that the first does not read ahead into the second's
		// answer (bufio.NewReader returns o.In itself when it is one already).
		o.In = bufio.NewReader(o.In)
	}
	repo, rev := o.RepoURL, o.Revision
	if repo == "" && !o.Yes {
		repo = ask(o.In, o.Out, fmt.Sprintf("Your fork's URL, which Argo CD reads (e.g. https://github.com/<you>/litemaas-gitops.git; empty keeps %s): ", curRepo))
	}
	if rev == "" && !o.Yes {
		rev = ask(o.In, o.Out, fmt.Sprintf("Branch or tag Argo CD syncs (never HEAD; empty keeps %s): ", curRev))
	}
	if repo != "" && !strings.Contains(repo, "://") && !strings.HasPrefix(repo, "git@") {
		return nil, fmt.Errorf("repository URL %q: want e.g. https://github.com/<you>/litemaas-gitops.git", repo)
	}
	if rev != "" {
		if err := checkRevision(rev); err != nil {
			return nil, fmt.Errorf("--revision: %w", err)
		}
	}
	return setSource(root, repo, rev)
}
