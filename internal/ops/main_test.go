package ops

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
)

// srv is one real kube-apiserver for the package. Tests that need the fixed names of the tree
// (openshift-gitops, litemaas, the cluster-scoped objects) run in TestLifecycle, in order; the others
// work in namespaces of their own.
var srv *kapitest.Server

func TestMain(m *testing.M) {
	srv = kapitest.MustStart(m)
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

const testDomain = "apps.cluster.example.com"

var (
	gvrApplication = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
	gvrIngress     = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "ingresses"}
	gvrRoute       = schema.GroupVersionResource{Group: "route.openshift.io", Version: "v1", Resource: "routes"}
	gvrOAuthClient = schema.GroupVersionResource{Group: "oauth.openshift.io", Version: "v1", Resource: "oauthclients"}
	gvrGroup       = schema.GroupVersionResource{Group: "user.openshift.io", Version: "v1", Resource: "groups"}
)

var setupOnce sync.Once

// setupCluster installs, once, what an OpenShift cluster with OpenShift GitOps has: the CRDs of the tree's
// kinds (gitops/test/crds) plus config.openshift.io Ingress, the namespace openshift-gitops and the
// ingress config `cluster` with the apps domain.
func setupCluster(t *testing.T) {
	t.Helper()
	setupOnce.Do(func() {
		root := repoRoot(t)
		crds, err := manifests.Render(filepath.Join(root, "gitops/test/crds"))
		require.NoError(t, err)
		ingressCRD := readObject(t, "testdata/ingresses.config.openshift.io.yaml")
		ns := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "openshift-gitops"},
		}}
		srv.Apply(t, append(crds, ingressCRD, ns)...)
		srv.Apply(t, ingressObject(testDomain))
	})
}

func ingressObject(domain string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "config.openshift.io/v1", "kind": "Ingress",
		"metadata": map[string]any{"name": "cluster"},
		"spec":     map[string]any{"domain": domain},
	}}
}

func readObject(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	obj := &unstructured.Unstructured{}
	require.NoError(t, yamlToObject(data, obj))
	return obj
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := manifests.RepoRoot()
	require.NoError(t, err)
	return root
}

// repoCopy copies gitops/ into a temporary directory that stands for the user's fork, so that deploy
// (which may create an overlay) never writes into the real tree.
func repoCopy(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	require.NoError(t, copyTree(filepath.Join(repoRoot(t), "gitops"), filepath.Join(dst, "gitops")))
	return dst
}

// newCluster connects with cfg the way the CLI does, logging through the test.
func newCluster(t *testing.T, cfg *rest.Config) *Cluster {
	t.Helper()
	c, err := NewCluster(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// --- a simulated Argo CD -----------------------------------------------------------------------------

// argoSim plays the openshift-gitops application controller for one Application: it refreshes it, syncs
// it through the states a real first sync goes through (creating what the sync would create: namespace,
// Routes, pods, the job's status ConfigMap), answers later refresh requests, and removes the
// resources-finalizer when the Application is deleted (as after pruning).
type argoSim struct {
	t                   *testing.T
	namespace, name     string
	destNS              string
	models              string // models.json the simulated job publishes
	step                int
	stepEvery           time.Duration
	pruneDelay          time.Duration
	populateDestination bool

	mu           sync.Mutex
	deleteSeenAt time.Time // when the sim first saw the Application being deleted
}

// sawDeletion reports whether the Application was deleted while it carried Argo CD's finalizer.
func (s *argoSim) sawDeletion() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.deleteSeenAt.IsZero()
}

func (s *argoSim) run(ctx context.Context) {
	tick := time.NewTicker(s.stepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := s.tick(ctx); err != nil && ctx.Err() == nil {
			s.t.Logf("argo sim: %v", err)
		}
	}
}

func (s *argoSim) tick(ctx context.Context) error {
	apps := srv.Dynamic().Resource(gvrApplication).Namespace(s.namespace)
	app, err := apps.Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if app.GetDeletionTimestamp() != nil {
		s.mu.Lock()
		if s.deleteSeenAt.IsZero() && slices.Contains(app.GetFinalizers(), argoFinalizer) {
			s.deleteSeenAt = time.Now()
		}
		seen := s.deleteSeenAt
		s.mu.Unlock()
		if !seen.IsZero() && time.Since(seen) >= s.pruneDelay && len(app.GetFinalizers()) > 0 {
			return s.patch(ctx, map[string]any{"metadata": map[string]any{"finalizers": nil}})
		}
		return nil
	}
	_, refreshing := app.GetAnnotations()[refreshAnnotation]
	source, _, _ := unstructured.NestedMap(app.Object, "spec", "source")
	destination, _, _ := unstructured.NestedMap(app.Object, "spec", "destination")
	clearRefresh := map[string]any{"annotations": map[string]any{refreshAnnotation: nil}}
	now := time.Now().UTC().Format(time.RFC3339)
	switch s.step {
	case 0:
		s.step++
		return s.patch(ctx, map[string]any{"metadata": clearRefresh, "status": map[string]any{
			"sync":   map[string]any{"status": "OutOfSync", "comparedTo": map[string]any{"source": source, "destination": destination}},
			"health": map[string]any{"status": "Missing"},
			"operationState": map[string]any{
				// Argo CD's CRD requires the operation and its start.
				"operation": map[string]any{"sync": map[string]any{}},
				"phase":     "Running", "message": "one or more tasks are running", "startedAt": now,
			},
		}})
	case 1:
		s.step++
		if s.populateDestination {
			s.createDestination(ctx)
		}
		return s.patch(ctx, map[string]any{"status": map[string]any{
			"sync":   map[string]any{"status": "Synced", "revision": "0123456789abcdef0123", "comparedTo": map[string]any{"source": source, "destination": destination}},
			"health": map[string]any{"status": "Progressing"},
			"resources": []any{
				map[string]any{"kind": "Deployment", "name": "backend", "health": map[string]any{"status": "Progressing"}},
				map[string]any{"kind": "Deployment", "name": "frontend", "health": map[string]any{"status": "Healthy"}},
			},
			"operationState": map[string]any{
				"phase": "Running", "message": "waiting for healthy state of apps/Deployment/backend", "startedAt": now,
			},
		}})
	case 2:
		s.step++
		return s.patch(ctx, map[string]any{"status": map[string]any{
			"health":    map[string]any{"status": "Healthy"},
			"resources": []any{},
			"operationState": map[string]any{
				"phase": "Running", "message": "waiting for completion of hook batch/Job/litemaas-sync",
				"syncResult": map[string]any{"revision": "0123456789abcdef0123", "resources": []any{map[string]any{
					"group": "batch", "version": "v1", "namespace": "litemaas",
					"kind": "Job", "name": "litemaas-sync", "hookType": "PostSync", "hookPhase": "Running", "message": "Pod is running",
				}}},
			},
		}})
	case 3:
		s.step++
		if s.populateDestination {
			s.writeJobStatus(ctx)
		}
		return s.patch(ctx, map[string]any{"status": map[string]any{
			"operationState": map[string]any{
				"phase": "Succeeded", "message": "successfully synced (all tasks run)",
				"syncResult": map[string]any{"revision": "0123456789abcdef0123", "resources": []any{map[string]any{
					"group": "batch", "version": "v1", "namespace": "litemaas",
					"kind": "Job", "name": "litemaas-sync", "hookType": "PostSync", "hookPhase": "Succeeded", "message": "Reached expected number of succeeded pods",
				}}},
			},
		}})
	default:
		// Synced: later deploys only ask for a refresh, which finds nothing new.
		if refreshing {
			return s.patch(ctx, map[string]any{"metadata": clearRefresh})
		}
	}
	return nil
}

func (s *argoSim) patch(ctx context.Context, p map[string]any) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = srv.Dynamic().Resource(gvrApplication).Namespace(s.namespace).Patch(ctx, s.name, types.MergePatchType, data, metav1.PatchOptions{FieldManager: "argocd-application-controller"})
	return err
}

// createDestination creates what the sync of the overlay creates and verify looks at: the namespace,
// Routes with the overlay's hosts, and Ready pods.
func (s *argoSim) createDestination(ctx context.Context) {
	t := s.t
	cs := srv.Clientset()
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   s.destNS,
		Labels: map[string]string{labelPartOf: partOf, "argocd.argoproj.io/managed-by": "openshift-gitops"},
	}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Errorf("argo sim: creating namespace: %v", err)
		return
	}
	populateNamespace(t, s.destNS, testDomain)
}

func (s *argoSim) writeJobStatus(ctx context.Context) {
	writeJobStatus(s.t, s.destNS, "succeeded", s.models)
}

// populateNamespace creates, in an existing namespace, the default ServiceAccount (which the
// ServiceAccount admission plugin wants for pods), one Ready pod per component and the three Routes.
func populateNamespace(t *testing.T, ns, domain string) {
	t.Helper()
	ctx := context.Background()
	cs := srv.Clientset()
	_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	for _, comp := range components {
		name := comp + "-7d9f8-abcde"
		if comp == "postgres" {
			name = "postgres-0"
		}
		createPod(t, ns, name, comp, true)
	}
	for route, host := range map[string]string{
		routeUI:      "litemaas-" + ns + "." + domain,
		routeLiteLLM: "litellm-" + ns + "." + domain,
		routeAPI:     "litemaas-api-" + ns + "." + domain,
	} {
		srv.Apply(t, routeObject(ns, route, host))
	}
}

func routeObject(ns, name, host string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "route.openshift.io/v1", "kind": "Route",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{labelPartOf: partOf}},
		"spec": map[string]any{
			"host": host,
			"to":   map[string]any{"kind": "Service", "name": name},
			"tls":  map[string]any{"termination": "edge"},
		},
	}}
}

// createPod creates a pod of a component and writes the status a kubelet would report: Ready, or
// crash-looping.
func createPod(t *testing.T, ns, name, component string, ready bool) {
	t.Helper()
	ctx := context.Background()
	pods := srv.Clientset().CoreV1().Pods(ns)
	p, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{labelName: component, labelPartOf: partOf}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: component, Image: "example.invalid/" + component + ":1"}}},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		p, err = pods.Get(ctx, name, metav1.GetOptions{})
	}
	require.NoError(t, err)
	now := metav1.Now()
	cond := corev1.ConditionTrue
	cstatus := corev1.ContainerStatus{Name: component, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}
	if !ready {
		cond = corev1.ConditionFalse
		cstatus = corev1.ContainerStatus{Name: component, RestartCount: 5, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "CrashLoopBackOff", Message: "back-off 5m0s restarting failed container",
		}}}
	}
	p.Status = corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: cond, LastTransitionTime: now},
		},
		ContainerStatuses: []corev1.ContainerStatus{cstatus},
	}
	_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// writeJobStatus writes the litemaas-sync job's status ConfigMap (the job's contract).
func writeJobStatus(t *testing.T, ns, result, modelsJSON string) {
	t.Helper()
	summary := "3 models: 2 served, 1 unavailable; LiteLLM 0 added, 0 updated; database 3 unchanged"
	if result != "succeeded" {
		summary = "LiteLLM not ready after 10m0s"
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: StatusConfigMap, Labels: map[string]string{labelName: "litemaas-sync"}},
		Data: map[string]string{
			"summary": summary, "result": result, "finishedAt": "2026-05-04T10:00:00Z", "models.json": modelsJSON,
		},
	}
	cms := srv.Clientset().CoreV1().ConfigMaps(ns)
	if _, err := cms.Create(context.Background(), cm, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		_, err = cms.Update(context.Background(), cm, metav1.UpdateOptions{})
		require.NoError(t, err)
	} else {
		require.NoError(t, err)
	}
}

// goodModels is what the job publishes for testdata/models.yaml when all is well.
const goodModels = `[
 {"id":"mistral-3-int4","catalog":"available","litellmDeployments":1,"deploymentId":"4f0c1d2e","database":"available"},
 {"id":"granite-8b-agent","catalog":"available","litellmDeployments":1,"deploymentId":"9a8b7c6d","database":"available"},
 {"id":"gpt-oss-20b","catalog":"unavailable","litellmDeployments":0,"deploymentId":"","database":"unavailable"}
]`

// --- Routes over real HTTPS ----------------------------------------------------------------------

// routeServer is one HTTPS server that answers for every Route host under the test domains with a
// certificate for *.<domain>, signed by its own CA. Hosts starting with "broken-" answer 503.
type routeServer struct {
	srv    *httptest.Server
	client *http.Client
}

func newRouteServer(t *testing.T, domains ...string) *routeServer {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ingress CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	var names []string
	for _, d := range domains {
		names = append(names, "*."+d)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	require.NoError(t, err)

	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "broken-") {
			http.Error(w, "Application is not available", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == advisoryProbePath {
			bypassStandIn(strings.HasPrefix(r.Host, "bypass-open-")).ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.Host, "litemaas-api-") {
			http.NotFound(w, r) // any answer below 500 counts
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}}
	s.StartTLS()
	t.Cleanup(s.Close)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	client := routeClient(false)
	tr := client.Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	tr.Proxy = nil // a proxy from the environment would not know the test hosts
	addr := s.Listener.Addr().String()
	// Every Route host resolves to the test server, as every Route host resolves to the router.
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &routeServer{srv: s, client: client}
}
