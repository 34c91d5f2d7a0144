// Package opstest holds the fixtures the tests of the litemaas-ops command packages share: an API
// server set up like an OpenShift cluster with OpenShift GitOps (on a real kube-apiserver from
// internal/kapitest), a copy of the tree standing for the user's fork, a namespace populated as a synced
// LiteMaaS leaves it, and Routes served over real HTTPS.
package opstest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

// Domain is the apps domain of the test cluster.
const Domain = "apps.cluster.example.com"

// RepoURL is the fork the tests deploy from.
const RepoURL = "https://github.com/test-org/litemaas-gitops.git"

// ingressCRD is OpenShift's config.openshift.io Ingress CRD, which kube-apiserver does not serve.
//
//go:embed testdata/ingresses.config.openshift.io.yaml
var ingressCRD []byte

var (
	setupMu   sync.Mutex
	setupDone = map[*kapitest.Server]bool{}
)

// SetupCluster installs, once per server, what an OpenShift cluster with OpenShift GitOps has: the CRDs of
// the tree's kinds (gitops/test/crds) plus config.openshift.io Ingress, the namespace openshift-gitops and
// the ingress config `cluster` with the apps domain.
func SetupCluster(t *testing.T, srv *kapitest.Server) {
	t.Helper()
	setupMu.Lock()
	defer setupMu.Unlock()
	if setupDone[srv] {
		return
	}
	root := RepoRoot(t)
	crds, err := manifests.Render(filepath.Join(root, "gitops/test/crds"))
	require.NoError(t, err)
	crd := &unstructured.Unstructured{}
	require.NoError(t, tree.YAMLToObject(ingressCRD, crd))
	ns := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "openshift-gitops"},
	}}
	srv.Apply(t, append(crds, crd, ns)...)
	srv.Apply(t, IngressObject(Domain))
	setupDone[srv] = true
}

// IngressObject is the cluster's ingress config with apps domain domain.
func IngressObject(domain string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "config.openshift.io/v1", "kind": "Ingress",
		"metadata": map[string]any{"name": "cluster"},
		"spec":     map[string]any{"domain": domain},
	}}
}

// RepoRoot is the root of this checkout.
func RepoRoot(t *testing.T) string {
	t.Helper()
	root, err := manifests.RepoRoot()
	require.NoError(t, err)
	return root
}

// RepoCopy copies gitops/ into a temporary directory that stands for the user's fork, so that deploy
// (which may create an overlay) never writes into the real tree.
func RepoCopy(t *testing.T) string {
	t.Helper()
	return RepoCopyOf(t, "gitops")
}

// RepoCopyOf copies the named top-level directories of the repository (e.g. gitops, images) into a
// temporary root.
func RepoCopyOf(t *testing.T, dirs ...string) string {
	t.Helper()
	dst := t.TempDir()
	for _, d := range dirs {
		require.NoError(t, os.CopyFS(filepath.Join(dst, d), os.DirFS(filepath.Join(RepoRoot(t), d))))
	}
	return dst
}

// NewCluster connects with cfg the way the CLI does, logging through the test.
func NewCluster(t *testing.T, cfg *rest.Config) *cluster.Cluster {
	t.Helper()
	c, err := cluster.New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// SyncBuffer is a bytes.Buffer safe for the writer goroutine and a reader.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// PopulateNamespace creates, in an existing namespace, the default ServiceAccount (which the
// ServiceAccount admission plugin wants for pods), one Ready pod per component and the three Routes.
func PopulateNamespace(t *testing.T, srv *kapitest.Server, ns, domain string) {
	t.Helper()
	ctx := context.Background()
	cs := srv.Clientset()
	_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	for _, comp := range tree.Components {
		name := comp + "-7d9f8-abcde"
		if comp == "postgres" {
			name = "postgres-0"
		}
		CreatePod(t, srv, ns, name, comp, true)
	}
	for route, host := range map[string]string{
		tree.RouteUI:      "litemaas-" + ns + "." + domain,
		tree.RouteLiteLLM: "litellm-" + ns + "." + domain,
		tree.RouteAPI:     "litemaas-api-" + ns + "." + domain,
	} {
		srv.Apply(t, RouteObject(ns, route, host))
	}
}

// RouteObject is a Route of the tree in ns with an edge-terminated host.
func RouteObject(ns, name, host string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "route.openshift.io/v1", "kind": "Route",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{tree.LabelPartOf: tree.PartOf}},
		"spec": map[string]any{
			"host": host,
			"to":   map[string]any{"kind": "Service", "name": name},
			"tls":  map[string]any{"termination": "edge"},
		},
	}}
}

// CreatePod creates a pod of a component and writes the status a kubelet would report: Ready, or
// crash-looping.
func CreatePod(t *testing.T, srv *kapitest.Server, ns, name, component string, ready bool) {
	t.Helper()
	ctx := context.Background()
	pods := srv.Clientset().CoreV1().Pods(ns)
	p, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{tree.LabelName: component, tree.LabelPartOf: tree.PartOf}},
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

// WriteJobStatus writes the litemaas-sync job's status ConfigMap (the job's contract).
func WriteJobStatus(t *testing.T, srv *kapitest.Server, ns, result, modelsJSON string) {
	t.Helper()
	summary := "3 models: 2 served, 1 unavailable; LiteLLM 0 added, 0 updated; database 3 unchanged"
	if result != "succeeded" {
		summary = "LiteLLM not ready after 10m0s"
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: tree.StatusConfigMap, Labels: map[string]string{tree.LabelName: "litemaas-sync"}},
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

// GoodModels is what the job publishes for the tests' catalog testdata/models.yaml when all is well.
const GoodModels = `[
 {"id":"mistral-3-int4","catalog":"available","litellmDeployments":1,"deploymentId":"4f0c1d2e","database":"available"},
 {"id":"granite-8b-agent","catalog":"available","litellmDeployments":1,"deploymentId":"9a8b7c6d","database":"available"},
 {"id":"gpt-oss-20b","catalog":"unavailable","litellmDeployments":0,"deploymentId":"","database":"unavailable"}
]`

// RouteServer is one HTTPS server that answers for every Route host under the test domains with a
// certificate for *.<domain>, signed by its own CA. Hosts starting with "broken-" answer 503.
type RouteServer struct {
	srv *httptest.Server
	// Client trusts the server's CA and sends every request to it, as every Route host resolves to the
	// router.
	Client *http.Client
}

// NewRouteServer starts the server; its Client is base (the client the code under test builds) with
// the server's CA and dialer.
func NewRouteServer(t *testing.T, base *http.Client, domains ...string) *RouteServer {
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
		if r.URL.Path == AdvisoryProbePath {
			BypassStandIn(strings.HasPrefix(r.Host, "bypass-open-")).ServeHTTP(w, r)
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
	client := *base
	tr := client.Transport.(*http.Transport).Clone()
	client.Transport = tr
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	tr.Proxy = nil // a proxy from the environment would not know the test hosts
	addr := s.Listener.Addr().String()
	// Every Route host resolves to the test server, as every Route host resolves to the router.
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &RouteServer{srv: s, Client: &client}
}

// AdvisoryProbePath is the protected read endpoint the route server answers with BypassStandIn:
// LiteMaaS's /api/v1/subscriptions, which verify probes for litemaas#137.
const AdvisoryProbePath = "/api/v1/subscriptions"

// BypassStandIn answers a protected read endpoint like the LiteMaaS backend: without a token it is
// 401, unless open is true and the request passes upstream's authenticateWithDevBypass test (a
// User-Agent containing Mozilla, Chrome, Safari or Firefox, and an Accept of application/json or */*),
// which 0.4.0 answers as a mock admin.
func BypassStandIn(open bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			http.Error(w, `{"error":"invalid token"}`, http.StatusUnauthorized)
			return
		}
		ua, accept := r.Header.Get("User-Agent"), r.Header.Get("Accept")
		browser := false
		for _, b := range []string{"Mozilla", "Chrome", "Safari", "Firefox"} {
			browser = browser || strings.Contains(ua, b)
		}
		if open && browser && (strings.Contains(accept, "application/json") || strings.Contains(accept, "*/*")) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"data":[],"pagination":{"total":0}}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":"UNAUTHORIZED","message":"Authentication required"}}`))
	})
}

// Squeeze collapses runs of white space, so that assertions do not depend on a table's column widths.
func Squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }
