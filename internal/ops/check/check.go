// Package check is `litemaas-ops check`: before a push, offline, it renders the fork's tree as Argo CD
// would, validates every models catalog it renders and runs the policy checks the tests run.
package check

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/litemaas-gitops/litemaas-gitops/internal/advisory"
	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

// NewCommand is `litemaas-ops check`.
func NewCommand() *cli.Command {
	return &cli.Command{
		Name: "check", Args: "[--overlay DIR]...",
		Summary: "offline, before a push: validate the catalogs, render, run the policy checks",
		Help: "Renders every kustomization under gitops/ (or the overlays named, with their cluster part) as Argo CD\n" +
			"would, validates every models catalog it renders with litemaas-sync's rules, runs the policy checks\n" +
			"the tests run, and judges each overlay as the cluster's admission will (Pod Security restricted, the\n" +
			"cluster part's admission policies). Every problem is listed, naming the kustomization, the rule and\n" +
			"the object.\n" +
			"Needs no cluster. Exit status 0 when all is well, 2 when problems were found.",
		New: func(fs *flag.FlagSet) cli.Runner {
			o := &Options{}
			fs.Func("overlay", "an overlay to check, with its cluster-admin part (repeatable; default: the whole tree)", func(s string) error {
				o.Overlays = append(o.Overlays, s)
				return nil
			})
			return o
		},
	}
}

// Options configure `litemaas-ops check`: what a user runs before pushing, offline. It runs the
// policy checks of the tests (manifests.Checker) on the tree of the working directory.
type Options struct {
	// Root is the repository root; empty: the checkout holding the working directory.
	Root string
	// Overlays are the overlays to check, each with its cluster-admin part; empty: every kustomization
	// of the tree and the checks on the tree as a whole.
	Overlays []string
}

// Error is returned when problems were found, or the tree's kustomization files cannot be read;
// its exit status is 2, as for an invalid catalog.
type Error struct {
	Count int
	Err   error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "check: " + e.Err.Error()
	}
	if e.Count == 1 {
		return "check: 1 problem (listed above)"
	}
	return fmt.Sprintf("check: %d problems (listed above)", e.Count)
}

// ExitCode is 2: the tree is wrong, and running again cannot help.
func (e *Error) ExitCode() int { return cli.ExitUsage }

func (e *Error) Unwrap() error { return e.Err }

// Run prints one line per kustomization checked, then every problem found.
func (o *Options) Run(_ context.Context, out io.Writer) error {
	root := o.Root
	if root == "" {
		r, err := tree.WorkRoot()
		if err != nil {
			return err
		}
		root = r
	}
	all, err := manifests.Targets(root)
	if err != nil {
		return &Error{Err: fmt.Errorf("reading the kustomizations under %s: %w", filepath.Join(root, "gitops"), err)}
	}
	selected := all
	if len(o.Overlays) > 0 {
		selected = nil
		for _, dir := range o.Overlays {
			t, err := manifests.FindTarget(root, o.resolve(root, dir))
			if err != nil {
				return err
			}
			selected = appendTarget(selected, t)
			if t.Cluster != "" {
				for _, ct := range all {
					if ct.Dir == t.Cluster {
						selected = appendTarget(selected, ct)
					}
				}
			}
		}
	}

	c := manifests.NewChecker(root)
	var findings []manifests.Finding
	for _, t := range selected {
		fs := c.CheckTarget(t, all)
		findings = append(findings, fs...)
		status := "ok  "
		if len(fs) > 0 {
			status = "FAIL"
		}
		fmt.Fprintf(out, "%s %s (%s%s)\n", status, t.Dir, t.Kind, describeTarget(c, t, len(fs)))
		if t.Kind == manifests.AppTarget || t.Kind == manifests.HATarget {
			printAdvisories(out, c, t)
		}
	}
	if len(o.Overlays) == 0 {
		fs := c.CheckTree(all)
		findings = append(findings, fs...)
		status := "ok  "
		if len(fs) > 0 {
			status = "FAIL"
		}
		fmt.Fprintf(out, "%s the tree (root Application, AppProject, images/images.yaml, CRD coverage, no Secret data, every kustomization built)\n", status)
	}
	fmt.Fprintln(out, "(advisories: information; what each exposes here and its mitigation: images/advisories.yaml, README.md \"Security\")")
	if len(findings) == 0 {
		fmt.Fprintf(out, "check: %d kustomizations, no problems\n", len(selected))
		return nil
	}
	fmt.Fprintln(out)
	for _, f := range findings {
		fmt.Fprintln(out, f.String())
	}
	return &Error{Count: len(findings)}
}

// resolve makes a command-line path relative to root: as given when it exists from the working
// directory, else relative to the root.
func (o *Options) resolve(root, dir string) string {
	if filepath.IsAbs(dir) {
		return dir
	}
	if abs, err := filepath.Abs(dir); err == nil {
		if _, err := os.Stat(abs); err == nil {
			if rel, err := filepath.Rel(root, abs); err == nil && !strings.HasPrefix(rel, "..") {
				return rel
			}
		}
	}
	return dir
}

func appendTarget(ts []manifests.Target, t manifests.Target) []manifests.Target {
	if slices.ContainsFunc(ts, func(x manifests.Target) bool { return x.Dir == t.Dir }) {
		return ts
	}
	return append(ts, t)
}

// describeTarget adds the object count and, for an overlay, its catalog and apps domain.
func describeTarget(c *manifests.Checker, t manifests.Target, problems int) string {
	objs, err := c.Render(t.Dir)
	if err != nil {
		return ", does not build"
	}
	s := fmt.Sprintf(", %d objects", len(objs))
	if t.Kind == manifests.AppTarget {
		if t.Catalog != "" {
			s += ", catalog " + t.Catalog
			if n, ok := manifests.CatalogModels(objs); ok {
				s += fmt.Sprintf(" (%d models)", n)
			}
		}
		if d, err := manifests.AppsDomain(c.Root, t.Settings); err == nil {
			s += ", apps domain " + d
		}
	}
	switch {
	case problems == 1:
		s += ": 1 problem"
	case problems > 1:
		s += fmt.Sprintf(": %d problems", problems)
	}
	return s
}

// printAdvisories prints, under an overlay's line, the advisories of images/advisories.yaml open for its
// pins: information, not a failure (the policy check fails only on litemaas#137 without the guard).
func printAdvisories(out io.Writer, c *manifests.Checker, t manifests.Target) {
	objs, err := c.Render(t.Dir)
	if err != nil {
		return // its line already says it does not build
	}
	notes, err := manifests.OpenAdvisories(objs)
	if err != nil {
		fmt.Fprintf(out, "     advisories: %v\n", err)
		return
	}
	for _, n := range notes {
		state := "open"
		switch {
		case n.Mitigated:
			state = "mitigated by " + n.MitigatedBy
		case n.Verdict == advisory.Unknown:
			state = "cannot tell from the tag"
		}
		fmt.Fprintf(out, "     advisory %s: %s\n", state, n.Short())
	}
}
