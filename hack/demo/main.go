// Command demo runs litemaas-sync locally against a throwaway stack, exactly as the rendered PostSync
// Job declares it, twice, and cleans up. `make demo` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/litemaas-gitops/litemaas-gitops/internal/devstack"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	binary := flag.String("binary", "bin/litemaas-sync", "the litemaas-sync binary to run")
	overlay := flag.String("overlay", "gitops/overlays/example", "the overlay whose PostSync Job is run")
	flag.Parse()
	if err := run(ctx, os.Stdout, *binary, *overlay); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, binary, overlay string) error {
	abs, err := filepath.Abs(binary)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("%s not found: run `make build` first (make demo does)", binary)
	}
	step := func(format string, a ...any) { fmt.Fprintf(out, "\n==> "+format+"\n", a...) }

	step("Starting a throwaway stack: PostgreSQL, the LiteLLM double, kube-apiserver + etcd; then the PreSync Job")
	fmt.Fprintln(out, "(the cluster-admin part is applied first, as a cluster admin does once; then the PreSync Job")
	fmt.Fprintln(out, " litemaas-secrets runs as rendered and generates every Secret; the backend's tables are created")
	fmt.Fprintln(out, " for the database user it generated, as the backend does at start-up)")
	began := time.Now()
	s, err := devstack.Start(ctx, devstack.Options{Overlay: overlay, SecretsJob: abs})
	if err != nil {
		return fmt.Errorf("%w\n(PostgreSQL server binaries come from the Debian package postgresql; kube-apiserver and etcd are built by hack/kapi/build.sh)", err)
	}
	defer func() {
		step("Cleaning up")
		s.Close()
		fmt.Fprintln(out, "stopped LiteLLM double, kube-apiserver, etcd and PostgreSQL; removed their files")
	}()
	fmt.Fprintf(out, "ready in %s\n", time.Since(began).Round(100*time.Millisecond))
	fmt.Fprintf(out, "  PreSync Job     %s\n", s.SecretsSummary)
	fmt.Fprintf(out, "  PostgreSQL      %s (database with the backend's tables, users.oauth_id NOT NULL as upstream creates it)\n", hostOf(s.DatabaseURL))
	fmt.Fprintf(out, "  LiteLLM double  %s (admin API of LiteLLM v1.81, empty)\n", s.LiteLLM.URL())
	fmt.Fprintf(out, "  kube-apiserver  %s\n", s.Kube.URL)
	kinds := map[string]int{}
	for _, o := range s.Objects {
		if o.GetKind() != "Job" {
			kinds[o.GetKind()]++
		}
	}
	fmt.Fprintf(out, "applied %s (%s) to namespace %s; hook Jobs are run, not applied\n", overlay, countKinds(kinds), s.Namespace)

	env, err := s.JobEnv(ctx)
	if err != nil {
		return err
	}
	c := s.Job.Spec.Template.Spec.Containers[0]
	step("The PostSync Job %q as rendered: args %v, ServiceAccount %s", s.Job.Name, c.Args, s.Job.Spec.Template.Spec.ServiceAccountName)
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			fmt.Fprintf(out, "  %-24s from Secret %s key %s (value hidden)\n", e.Name, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			fmt.Fprintf(out, "  %-24s from the pod's %s = %s\n", e.Name, e.ValueFrom.FieldRef.FieldPath, s.Namespace)
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			fmt.Fprintf(out, "  %-24s from the pod's %s = \"\" (no Job runs locally)\n", e.Name, e.ValueFrom.FieldRef.FieldPath)
		default:
			fmt.Fprintf(out, "  %-24s %s\n", e.Name, e.Value)
		}
	}
	fmt.Fprintf(out, "locally: http://litellm:4000 -> %s, the models ConfigMap mounted as files, identity = a token of ServiceAccount %s\n", s.LiteLLM.URL(), s.Job.Spec.Template.Spec.ServiceAccountName)
	_ = env

	step("Run 1: the workloads are not ready yet; the job waits, and they become ready 2 s later")
	cmd, err := s.Command(ctx, binary)
	if err != nil {
		return err
	}
	cmd.Path = abs
	// One writer for both streams: exec then writes from one goroutine, and lines stay whole.
	child := prefixed(out, "  | ")
	cmd.Stdout, cmd.Stderr = child, child
	if err := cmd.Start(); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	readyAt := time.Now()
	if err := s.MarkReady(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "  (marked %s rolled out)\n", strings.Join(s.Workloads(), ", "))
	if err := exitOK(cmd.Wait()); err != nil {
		return err
	}
	fmt.Fprintf(out, "done %s after the last workload became ready\n", time.Since(readyAt).Round(time.Millisecond))
	if err := show(ctx, out, s); err != nil {
		return err
	}

	step("Run 2: the same Job again; nothing changes")
	s.Proxy.Reset()
	if cmd, err = s.Command(ctx, binary); err != nil {
		return err
	}
	cmd.Path = abs
	child = prefixed(out, "  | ")
	cmd.Stdout, cmd.Stderr = child, child
	if err := exitOK(cmd.Run()); err != nil {
		return err
	}
	fmt.Fprintf(out, "LiteLLM requests in run 2: %d to /model/info, %d writes\n", s.Proxy.Count("GET", "/model/info"), s.Proxy.Writes())
	return nil
}

func exitOK(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("litemaas-sync exited with code %d", ee.ExitCode())
	}
	return err
}

func show(ctx context.Context, out io.Writer, s *devstack.Stack) error {
	ds, err := litellm.New(s.LiteLLM.URL(), s.MasterKey).ListModels(ctx)
	if err != nil {
		return err
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].ModelName < ds[j].ModelName })
	fmt.Fprintf(out, "\nLiteLLM /model/info: %d deployments\n", len(ds))
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  model_name\tmodel_info.id\tapi_base\tmax_tokens")
	for _, d := range ds {
		fmt.Fprintf(tw, "  %s\t%s\t%v\t%v\n", d.ModelName, d.ID(), d.LiteLLMParams["api_base"], d.ModelInfo["max_tokens"])
	}
	tw.Flush()

	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, name, provider, category, availability, array_to_string(features, ','), litellm_model_id FROM models ORDER BY id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	fmt.Fprintln(out, "\nbackend database, table models:")
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  id\tname\tprovider\tcategory\tavailability\tfeatures\tlitellm_model_id")
	for rows.Next() {
		var id, name, provider, category, availability, features, llmID string
		if err := rows.Scan(&id, &name, &provider, &category, &availability, &features, &llmID); err != nil {
			return err
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, name, provider, category, availability, features, llmID)
	}
	tw.Flush()
	var nullable string
	if err := conn.QueryRow(ctx, `SELECT is_nullable FROM information_schema.columns WHERE table_name='users' AND column_name='oauth_id'`).Scan(&nullable); err != nil {
		return err
	}
	fmt.Fprintf(out, "users.oauth_id nullable: %s\n", nullable)
	return rows.Err()
}

func hostOf(url string) string {
	if i := strings.Index(url, "@"); i >= 0 {
		url = url[i+1:]
	} else {
		url = strings.TrimPrefix(strings.TrimPrefix(url, "postgresql://"), "postgres://")
	}
	if i := strings.Index(url, "?"); i >= 0 {
		url = url[:i]
	}
	return url
}

func countKinds(kinds map[string]int) string {
	names := make([]string, 0, len(kinds))
	for k, n := range kinds {
		names = append(names, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// prefixed indents a child's output so that it stands apart from the demo's own lines.
func prefixed(w io.Writer, prefix string) io.Writer {
	return &prefixWriter{w: w, prefix: prefix, bol: true}
}

type prefixWriter struct {
	w      io.Writer
	prefix string
	bol    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, c := range b {
		if p.bol {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
			p.bol = false
		}
		if _, err := p.w.Write([]byte{c}); err != nil {
			return 0, err
		}
		if c == '\n' {
			p.bol = true
		}
	}
	return len(b), nil
}
