// Package argocdtest runs a real Argo CD against a kapitest cluster, for tests that need what only Argo
// CD decides: sync phases and waves, health, hook deletion and retries, pruning, self-heal, and what it
// reports when a hook fails.
//
// Started by Start:
//   - kube-controller-manager at the kube-apiserver's version (Jobs, Deployments, ReplicaSets,
//     StatefulSets, CronJobs, garbage collection, namespaces, ServiceAccounts, PV binding);
//   - Argo CD's real CRDs (server-side apply: the ApplicationSet CRD is too big for client-side
//     apply), its base config (argocd-cm, argocd-secret, ...) and the AppProject `default` that
//     argocd-server would create;
//   - Argo CD's repo-server and application-controller, out of cluster: ARGOCD_FAKE_IN_CLUSTER makes
//     the destination https://kubernetes.default.svc mean the cluster of $KUBECONFIG;
//   - an in-process Redis (miniredis, as Argo CD's own tests use);
//   - stand-ins, all driven by watches: for the nodes and their storage (internal/kubelettest: the
//     Kubelet and the hostPath Provisioner), for the OpenShift router's Route admission (router.go),
//     and for OpenShift's controllers, SCC admission, OLM and CloudNativePG (internal/openshifttest,
//     see OpenShiftOptions). What the stack's own containers do when they start is
//     internal/stacktest's, plugged into the Kubelet through Options.Kubelet.
//
// The package itself holds what stands in for nothing: Argo CD's processes, the git repository it
// reads (Repo) and the Applications' status as the tests read it (App).
//
// The binaries come from hack/argocd/build.sh (its last output line is the directory, ARGOCD_BIN in
// the tests); kube-apiserver and etcd come from kapitest.
package argocdtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/kubelettest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/openshifttest"
)

// EnvBin names the directory hack/argocd/build.sh prints, for tests.
const EnvBin = "ARGOCD_BIN"

// DefaultNamespace is Argo CD's namespace on OpenShift GitOps; the project's Applications name it.
const DefaultNamespace = "openshift-gitops"

// Binaries in the directory of hack/argocd/build.sh.
var binaries = []string{"argocd", "kube-controller-manager", "kustomize", "git-verify-wrapper.sh",
	"manifests/crds", "manifests/base/config"}

// Options configure Start.
type Options struct {
	// BinDir is the directory hack/argocd/build.sh prints.
	BinDir string
	// Kube is the cluster Argo CD manages (and runs in, as far as it can tell). The caller stops it.
	Kube *kapitest.Server
	// Namespace is Argo CD's namespace (default DefaultNamespace).
	Namespace string
	// AppResync is how often the controller compares each Application with git without being asked
	// (--app-resync; Argo CD's default is 120 s). A webhook or the refresh annotation asks at once.
	AppResync time.Duration
	// Kubelet configures the stand-in for the nodes.
	Kubelet kubelettest.Options
	// OpenShift chooses the OpenShift stand-ins (all on by default).
	OpenShift OpenShiftOptions
	// Log, when set, receives one line per thing the stand-ins do (pods started, hooks run, routes
	// admitted), with a timestamp; useful to read a failed test.
	Log io.Writer
}

// Harness is a running Argo CD with its cluster's stand-ins.
type Harness struct {
	Kube      *kapitest.Server
	Namespace string
	BinDir    string
	// Dir holds the processes' logs, the admin kubeconfig, Redis-free state and the pods' files.
	Dir     string
	Kubelet *kubelettest.Kubelet
	// The OpenShift stand-ins OpenShiftOptions left on (nil when off).
	PullSecrets *openshifttest.PullSecrets
	SCC         *openshifttest.SCC
	OLM         *openshifttest.OLM
	CNPG        *openshifttest.CNPG

	redis      *miniredis.Miniredis
	procs      []*process
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	logMu      sync.Mutex
	log        io.Writer
	repoServer string
	stopOnce   sync.Once
}

// Start starts kube-controller-manager, installs Argo CD's CRDs and config, and starts the repo-server,
// the application-controller and the stand-ins. It returns once all of them answer.
func Start(ctx context.Context, o Options) (_ *Harness, err error) {
	if o.Kube == nil {
		return nil, errors.New("argocdtest: Options.Kube is required")
	}
	if err := CheckBinDir(o.BinDir); err != nil {
		return nil, err
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.AppResync == 0 {
		o.AppResync = 120 * time.Second
	}
	dir, err := os.MkdirTemp("", "argocdtest-")
	if err != nil {
		return nil, fmt.Errorf("creating the harness directory: %w", err)
	}
	h := &Harness{Kube: o.Kube, Namespace: o.Namespace, BinDir: o.BinDir, Dir: dir, log: o.Log}
	defer func() {
		if err != nil {
			h.Stop()
		}
	}()
	runCtx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel

	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	if err := o.Kube.WriteTokenKubeconfig(kubeconfig, o.Kube.Config.BearerToken, ""); err != nil {
		return nil, err
	}
	if err := h.startControllerManager(ctx, kubeconfig); err != nil {
		return nil, err
	}
	if err := h.install(ctx, o.OpenShift); err != nil {
		return nil, err
	}

	// The stand-ins run before Argo CD so that nothing it creates waits for them.
	h.Kubelet, err = kubelettest.New(o.Kube, dir, h.logf, o.Kubelet)
	if err != nil {
		return nil, err
	}
	if err := h.Kubelet.Start(runCtx, &h.wg); err != nil {
		return nil, err
	}
	if err := startRouter(runCtx, h, &h.wg); err != nil {
		return nil, err
	}
	provisioner := &kubelettest.Provisioner{Client: o.Kube.Clientset(), Dir: dir, Log: h.logf}
	if err := provisioner.Start(runCtx, &h.wg); err != nil {
		return nil, err
	}
	if err := h.startOpenShift(runCtx, o.OpenShift); err != nil {
		return nil, err
	}

	if h.redis, err = miniredis.Run(); err != nil {
		return nil, fmt.Errorf("starting the in-process Redis: %w", err)
	}
	if err := h.startArgoCD(ctx, kubeconfig, o.AppResync); err != nil {
		return nil, err
	}
	return h, nil
}

// CheckBinDir reports what hack/argocd/build.sh should have put into dir and did not.
func CheckBinDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: no Argo CD binary directory given (run hack/argocd/build.sh and set %s to the directory it prints)", errMissingBinary, EnvBin)
	}
	var missing []string
	for _, name := range binaries {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s lacks %s (run hack/argocd/build.sh)", errMissingBinary, dir, strings.Join(missing, ", "))
	}
	return nil
}

// Stop kills the processes and stand-ins and removes Dir. Safe to call more than once.
func (h *Harness) Stop() {
	h.stopOnce.Do(func() {
		if h.cancel != nil {
			h.cancel()
		}
		for i := len(h.procs) - 1; i >= 0; i-- {
			h.procs[i].kill()
		}
		h.wg.Wait()
		if h.Kubelet != nil {
			h.Kubelet.Stop()
		}
		if h.redis != nil {
			h.redis.Close()
		}
		if os.Getenv("ARGOCDTEST_KEEP") == "" {
			_ = os.RemoveAll(h.Dir)
		}
	})
}

// Logs returns the last n lines of each process's log (kube-controller-manager, repo-server,
// application-controller), for a failed test's message.
func (h *Harness) Logs(n int) string {
	var b strings.Builder
	for _, p := range h.procs {
		state := "running"
		if !p.alive() {
			state = fmt.Sprintf("exited: %v", p.waitErr)
		}
		fmt.Fprintf(&b, "==> %s (%s) <==\n%s\n", p.name, state, tailFile(p.logPath, n))
	}
	return b.String()
}

// Alive returns an error naming the first process that has exited.
func (h *Harness) Alive() error {
	for _, p := range h.procs {
		if !p.alive() {
			return p.failure(fmt.Errorf("exited (%v)", p.waitErr))
		}
	}
	return nil
}

func (h *Harness) logf(format string, a ...any) {
	if h.log == nil {
		return
	}
	h.logMu.Lock()
	defer h.logMu.Unlock()
	fmt.Fprintf(h.log, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}

func (h *Harness) baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		// A developer's own Argo CD or Kubernetes settings must not reach the harness's processes.
		if strings.HasPrefix(kv, "ARGOCD_") || strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "PATH=") ||
			strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "TMPDIR=") || strings.HasPrefix(kv, "GIT_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH="+h.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func (h *Harness) startControllerManager(ctx context.Context, kubeconfig string) error {
	controllers := []string{
		"job-controller", "deployment-controller", "replicaset-controller", "statefulset-controller",
		"cronjob-controller", "daemonset-controller", "ttl-after-finished-controller", "disruption-controller",
		"garbage-collector-controller", "namespace-controller", "serviceaccount-controller",
		"serviceaccount-token-controller",
		"root-ca-certificate-publisher-controller", "persistentvolume-binder-controller",
		"persistentvolumeclaim-protection-controller", "persistentvolume-protection-controller",
	}
	ports, err := kapitest.FreePorts(1)
	if err != nil {
		return err
	}
	caFile := filepath.Join(h.Dir, "ca.crt")
	if err := os.WriteFile(caFile, h.Kube.CAData, 0o600); err != nil {
		return err
	}
	p, err := startProcess("kube-controller-manager", filepath.Join(h.BinDir, "kube-controller-manager"),
		filepath.Join(h.Dir, "kube-controller-manager.log"), h.baseEnv(),
		"--kubeconfig", kubeconfig,
		"--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports[0]),
		"--cert-dir", filepath.Join(h.Dir, "kcm-certs"),
		"--leader-elect=false",
		"--controllers", strings.Join(controllers, ","),
		"--root-ca-file", caFile,
		// The token controller fills service-account-token Secrets (the OAuth ServiceAccount mode's
		// litemaas-oauth-token), signed with the key kube-apiserver verifies.
		"--service-account-private-key-file", filepath.Join(h.Kube.Dir, "sa.key"),
		// Hook Jobs finish in a second or two; the default 1 s sync periods would only add latency.
		"--concurrent-job-syncs", "5",
		"-v", "1",
	)
	if err != nil {
		return err
	}
	h.procs = append(h.procs, p)
	// /healthz is served once the controllers have started.
	insecure := &rest.Config{Host: "https://127.0.0.1:" + strconv.Itoa(ports[0]), TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	client, err := rest.HTTPClientFor(insecure)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return p.waitReady(ctx, func(ctx context.Context) error {
		resp, err := client.Get(insecure.Host + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("healthz: HTTP %d", resp.StatusCode)
		}
		return nil
	})
}

// install applies the OpenShift CRDs the tree uses (gitops/test/crds), Argo CD's CRDs, Argo CD's
// namespace, base config and AppProject default.
func (h *Harness) install(ctx context.Context, os OpenShiftOptions) error {
	root, err := manifests.RepoRoot()
	if err != nil {
		return err
	}
	crds, err := manifests.Render(filepath.Join(root, "gitops", "test", "crds"))
	if err != nil {
		return fmt.Errorf("rendering gitops/test/crds: %w", err)
	}
	// The operators' CRDs the tree may use (CloudNativePG, monitoring, OLM; internal/manifests'
	// upstream-crds.yaml), so that an overlay's kinds exist. With OLM on, CloudNativePG's come from
	// its Subscription, as on a cluster.
	operatorCRDs, err := manifests.UpstreamCRDs()
	if err != nil {
		return fmt.Errorf("reading the operators' CRDs: %w", err)
	}
	for _, c := range operatorCRDs {
		if !os.NoOLM && cnpgCRD(c) {
			continue
		}
		crds = append(crds, c)
	}
	olm, err := openShiftCRDs(os)
	if err != nil {
		return err
	}
	crds = append(crds, olm...)
	argoCRDs, err := manifests.Render(filepath.Join(h.BinDir, "manifests", "crds"))
	if err != nil {
		return fmt.Errorf("reading Argo CD's CRDs: %w", err)
	}
	config, err := manifests.Render(filepath.Join(h.BinDir, "manifests", "base", "config"))
	if err != nil {
		return fmt.Errorf("reading Argo CD's base config: %w", err)
	}
	ns := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": h.Namespace},
	}}
	objs := append(append(crds, argoCRDs...), ns)
	for _, o := range config {
		o.SetNamespace(h.Namespace)
		objs = append(objs, o)
	}
	objs = append(objs, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
		"metadata": map[string]any{"name": "default", "namespace": h.Namespace},
		"spec": map[string]any{
			"sourceRepos":              []any{"*"},
			"destinations":             []any{map[string]any{"server": "*", "namespace": "*"}},
			"clusterResourceWhitelist": []any{map[string]any{"group": "*", "kind": "*"}},
		},
	}})
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := h.Kube.ApplyObjects(ctx, objs...); err != nil {
		return fmt.Errorf("installing Argo CD's CRDs and config: %w", err)
	}
	return nil
}

func (h *Harness) startArgoCD(ctx context.Context, kubeconfig string, resync time.Duration) error {
	ports, err := kapitest.FreePorts(3)
	if err != nil {
		return err
	}
	repoPort, repoMetrics, ctrlMetrics := ports[0], ports[1], ports[2]
	home := filepath.Join(h.Dir, "home")
	tmp := filepath.Join(h.Dir, "tmp")
	for _, d := range []string{home, tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	env := append(h.baseEnv(),
		"HOME="+home, "TMPDIR="+tmp,
		"ARGOCD_FAKE_IN_CLUSTER=true",
		"KUBECONFIG="+kubeconfig,
		"ARGOCD_GPG_ENABLED=false",
		// Never ask a terminal for git credentials.
		"GIT_TERMINAL_PROMPT=0",
	)
	argocd := filepath.Join(h.BinDir, "argocd")
	h.repoServer = "127.0.0.1:" + strconv.Itoa(repoPort)
	repo, err := startProcess("argocd-repo-server", argocd, filepath.Join(h.Dir, "repo-server.log"),
		append(env, "ARGOCD_BINARY_NAME=argocd-repo-server"),
		"--address", "127.0.0.1", "--port", strconv.Itoa(repoPort),
		"--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(repoMetrics),
		"--redis", h.redis.Addr(), "--disable-tls", "--client-ca-path=", "--loglevel", "info", "--logformat", "text",
	)
	if err != nil {
		return err
	}
	h.procs = append(h.procs, repo)
	ctrl, err := startProcess("argocd-application-controller", argocd, filepath.Join(h.Dir, "application-controller.log"),
		append(env, "ARGOCD_BINARY_NAME=argocd-application-controller"),
		"--kubeconfig", kubeconfig, "--namespace", h.Namespace,
		"--redis", h.redis.Addr(),
		"--repo-server", h.repoServer, "--repo-server-plaintext",
		"--metrics-port", strconv.Itoa(ctrlMetrics),
		"--status-processors", "4", "--operation-processors", "2",
		"--app-resync", strconv.Itoa(int(resync.Seconds())), "--app-resync-jitter", "0",
		"--loglevel", "info", "--logformat", "text",
	)
	if err != nil {
		return err
	}
	h.procs = append(h.procs, ctrl)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := repo.waitReady(ctx, tcpProbe(h.repoServer)); err != nil {
		return err
	}
	return ctrl.waitReady(ctx, httpProbe(fmt.Sprintf("http://127.0.0.1:%d/healthz", ctrlMetrics)))
}

// EnsureNamespace creates namespace name unless it exists (the stand-ins need none; tests that
// apply objects into a namespace Argo CD does not create do).
func (h *Harness) EnsureNamespace(ctx context.Context, name string) error {
	_, err := h.Kube.Clientset().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}
