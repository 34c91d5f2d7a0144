package argocdtest

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// PlaceholderRepoURL is the repoURL the tree's Applications ship with (the user's fork goes there).
const PlaceholderRepoURL = "https://github.com/YOUR-ORG/litemaas-gitops.git"

// Repo is a git repository on the local file system that Argo CD reads as file:// URL: a bare
// repository (what Argo CD clones) and a work tree that tests edit and commit to it.
type Repo struct {
	// URL is what Applications name as repoURL.
	URL string
	// Work is the work tree; Commit's edit function changes files there.
	Work string
	bare string
}

// NewRepo creates a repository under dir holding the gitops/ tree of the module at root as it is on
// disk (tracked and untracked files, not ignored ones), with every repoURL placeholder pointed at the
// repository itself, as a user's fork would be. It makes the first commit on branch main.
func NewRepo(ctx context.Context, root, dir string) (*Repo, error) {
	r := &Repo{Work: filepath.Join(dir, "work"), bare: filepath.Join(dir, "litemaas-gitops.git")}
	r.URL = "file://" + r.bare
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := r.git(ctx, dir, "init", "--quiet", "--bare", "-b", "main", r.bare); err != nil {
		return nil, err
	}
	if _, err := r.git(ctx, dir, "init", "--quiet", "-b", "main", r.Work); err != nil {
		return nil, err
	}
	if _, err := r.git(ctx, r.Work, "remote", "add", "origin", r.URL); err != nil {
		return nil, err
	}
	files, err := treeFiles(ctx, root, "gitops")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(f, ".yaml") {
			b = bytes.ReplaceAll(b, []byte(PlaceholderRepoURL), []byte(r.URL))
		}
		dst := filepath.Join(r.Work, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return nil, err
		}
	}
	if _, err := r.Commit(ctx, "the tree under test", nil); err != nil {
		return nil, err
	}
	return r, nil
}

// treeFiles lists the files under sub of the module at root: from git when root is a work tree
// (tracked and untracked, without ignored ones), otherwise every file.
func treeFiles(ctx context.Context, root, sub string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", sub)
	if out, err := cmd.Output(); err == nil {
		var files []string
		for _, f := range strings.Split(string(out), "\x00") {
			if f == "" {
				continue
			}
			// A file deleted in the work tree but still in the index is not part of the tree on disk.
			if _, err := os.Stat(filepath.Join(root, f)); err == nil {
				files = append(files, f)
			}
		}
		return files, nil
	}
	var files []string
	err := filepath.WalkDir(filepath.Join(root, sub), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		files = append(files, rel)
		return err
	})
	return files, err
}

// Commit runs edit on the work tree (when not nil), commits everything and pushes it to main. It
// returns the new commit's SHA.
func (r *Repo) Commit(ctx context.Context, msg string, edit func(work string) error) (string, error) {
	if edit != nil {
		if err := edit(r.Work); err != nil {
			return "", fmt.Errorf("editing the work tree for %q: %w", msg, err)
		}
	}
	if _, err := r.git(ctx, r.Work, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := r.git(ctx, r.Work, "commit", "--quiet", "--allow-empty", "-m", msg); err != nil {
		return "", err
	}
	if _, err := r.git(ctx, r.Work, "push", "--quiet", "origin", "HEAD:main"); err != nil {
		return "", err
	}
	return r.Head(ctx)
}

// Head is the SHA of main.
func (r *Repo) Head(ctx context.Context) (string, error) {
	out, err := r.git(ctx, r.Work, "rev-parse", "HEAD")
	return strings.TrimSpace(out), err
}

// EditFile replaces old with new in the work tree's file rel (relative to the repository root); it
// fails when old is not there, so that a test never commits an edit that did nothing.
func EditFile(work, rel, old, new string) error {
	p := filepath.Join(work, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !bytes.Contains(b, []byte(old)) {
		return fmt.Errorf("%s does not contain %q", rel, old)
	}
	return os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644)
}

func (r *Repo) git(ctx context.Context, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "user.name=litemaas-gitops tests", "-c", "user.email=tests@litemaas-gitops.invalid", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}
