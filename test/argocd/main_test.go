// Package argocd runs the tree under a real Argo CD (internal/argocdtest): the root app-of-apps
// synced from an empty cluster with both hooks running the project's binary, edits and a broken
// catalog committed to git, self-heal of the cluster and of LiteLLM, a pruned model, a quiet period with
// a drift Job, and every overlay.
//
// One Argo CD, one cluster and one PostgreSQL serve the scenarios of TestArgoCD, in order: each
// scenario starts from the state the previous one left, as a cluster's life goes on. The overlays
// (TestOverlays) get a second set of their own and run at the same time.
package argocd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/argocdtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/pgtest"
)

const (
	rootApp   = "litemaas-root"
	childApp  = "step-06b-private-ai-litemaas"
	namespace = "litemaas"
	syncImage = "ghcr.io/litemaas-gitops/litemaas-sync"
	// appResync is the controller's periodic comparison with git (Argo CD's default is 120 s): short,
	// so that the quiet scenario sees several comparisons that must find nothing to do.
	appResync = 15 * time.Second
)

type fixture struct {
	root    string
	dir     string
	kube    *kapitest.Server
	pg      *pgtest.Server
	svc     *argocdtest.Services
	h       *argocdtest.Harness
	repo    *argocdtest.Repo
	rec     *recorder
	logPath string
	oidc    *oidcProvider
	cancel  context.CancelFunc
	started time.Time
	// rootSynced says whether the root app-of-apps is deployed and synced: the benchmark, which may run
	// alone or after the scenarios, deploys it when it is not.
	rootSynced bool
}

// shared is a fixture started on first use.
type shared struct {
	once sync.Once
	f    *fixture
	err  error
}

var (
	// scenarioFix serves TestArgoCD's scenarios, TestAppProjectRefuses and the benchmark, one after the other.
	scenarioFix shared
	// overlayFix serves TestOverlays, which runs next to them.
	overlayFix shared
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range []*shared{&scenarioFix, &overlayFix} {
		if s.f != nil {
			s.f.stop()
		}
	}
	os.Exit(code)
}

// setup returns the main fixture, started on first use. Without ARGOCD_BIN the scenarios are skipped,
// except in CI, where missing binaries are a failure.
func setup(t testing.TB) *fixture {
	t.Helper()
	return setupShared(t, &scenarioFix)
}

// setupOverlays returns TestOverlays' own fixture, started on first use.
func setupOverlays(t testing.TB) *fixture {
	t.Helper()
	return setupShared(t, &overlayFix)
}

func setupShared(t testing.TB, s *shared) *fixture {
	t.Helper()
	bin := os.Getenv(argocdtest.EnvBin)
	if bin == "" {
		msg := "ARGOCD_BIN is unset: the Argo CD scenarios need Argo CD, kube-controller-manager and kustomize " +
			"from hack/argocd/build.sh (`make test` builds and passes them; by hand: " +
			"ARGOCD_BIN=$(hack/argocd/build.sh | tail -n 1) go test ./test/argocd/)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s.once.Do(func() { s.f, s.err = start(bin) })
	require.NoError(t, s.err)
	return s.f
}

func start(bin string) (_ *fixture, err error) {
	if err := argocdtest.CheckBinDir(bin); err != nil {
		return nil, err
	}
	f := &fixture{started: time.Now()}
	defer func() {
		if err != nil {
			f.stop()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	if f.root, err = manifests.RepoRoot(); err != nil {
		return nil, err
	}
	if f.dir, err = os.MkdirTemp("", "litemaas-argocd-test-"); err != nil {
		return nil, err
	}
	sync, err := buildSync(ctx, f.root, f.dir)
	if err != nil {
		return nil, err
	}
	if f.kube, err = kapitest.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-apiserver: %w", err)
	}
	if f.pg, err = pgtest.Start(); err != nil {
		return nil, fmt.Errorf("starting PostgreSQL: %w", err)
	}
	f.svc = argocdtest.NewServices(f.pg)
	// The OpenID Connect provider of the oidc overlay, on loopback with a test CA that the hook
	// containers trust (as an image holding the provider's CA would).
	f.oidc = newOIDCProvider()
	caFile := filepath.Join(f.dir, "oidc-ca.pem")
	if err := os.WriteFile(caFile, f.oidc.caPEM, 0o644); err != nil {
		return nil, err
	}
	f.logPath = filepath.Join(f.dir, "stand-ins.log")
	logFile, err := os.Create(f.logPath)
	if err != nil {
		return nil, err
	}
	if f.h, err = argocdtest.Start(ctx, argocdtest.Options{
		BinDir: bin, Kube: f.kube, AppResync: appResync, Log: logFile,
		Kubelet: argocdtest.KubeletOptions{
			Run:     map[string]string{syncImage: sync},
			Rewrite: f.svc.Rewrite,
			Start:   f.svc.Start,
			HostEnv: []string{"SSL_CERT_FILE=" + caFile},
		},
		// OpenShift's controllers, SCC admission, OLM and CloudNativePG (on its PostgreSQL) as stand-ins.
		OpenShift: argocdtest.OpenShiftOptions{Services: f.svc},
	}); err != nil {
		return nil, err
	}
	if f.rec, err = startRecorder(ctx, f.kube.Dynamic()); err != nil {
		return nil, err
	}
	if f.repo, err = argocdtest.NewRepo(ctx, f.root, filepath.Join(f.dir, "git")); err != nil {
		return nil, err
	}
	// As a cluster admin (or make deploy) does once: the AppProject every Application of the tree is
	// in, from the tree's own file, so that every scenario syncs through it.
	if err := applyProject(ctx, f); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *fixture) stop() {
	if f.cancel != nil {
		f.cancel()
	}
	if f.h != nil {
		f.h.Stop()
	}
	if f.oidc != nil {
		f.oidc.srv.Close()
	}
	if f.svc != nil {
		f.svc.Close()
	}
	if f.pg != nil {
		_ = f.pg.Stop()
	}
	if f.kube != nil {
		f.kube.Stop()
	}
	if f.dir != "" && os.Getenv("ARGOCDTEST_KEEP") == "" {
		_ = os.RemoveAll(f.dir)
	}
}

// buildSync builds the job's binary as the image does (static, trimmed).
func buildSync(ctx context.Context, root, dir string) (string, error) {
	out := filepath.Join(dir, "litemaas-sync")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, "./cmd/litemaas-sync")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building litemaas-sync: %w\n%s", err, b)
	}
	return out, nil
}

// diagnostics is what a failed scenario prints: the stand-ins' log and the processes' logs.
func (f *fixture) diagnostics() string {
	var failed strings.Builder
	for _, r := range f.h.Kubelet.Runs() {
		if r.ExitCode != 0 {
			fmt.Fprintf(&failed, "==> %s (pod %s, exit %d) <==\n%s\n", r.Job, r.Pod, r.ExitCode, r.Output)
		}
	}
	return "stand-ins:\n" + tailOf(f.logPath, 30) + "\n" + failed.String() + f.h.Logs(20)
}

func tailOf(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}
