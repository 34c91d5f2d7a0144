package manifeststest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/upstream"
)

// PodSecurityLabels make the dry-run namespaces ask Pod Security Admission for the restricted level.
// PSA enforces only on Pods; on a workload's pod template (Deployment, StatefulSet, Job, CronJob) it
// only warns, so warn is set too and DryRunner.create turns each warning into a failure.
var PodSecurityLabels = map[string]string{
	"pod-security.kubernetes.io/enforce":         "restricted",
	"pod-security.kubernetes.io/enforce-version": "latest",
	"pod-security.kubernetes.io/warn":            "restricted",
	"pod-security.kubernetes.io/warn-version":    "latest",
}

// DryRunner creates objects on the real API server with dryRun=All and strict field validation, so
// an unknown or misspelled field, a wrong type or a failed schema rule fails as it would on a cluster;
// the namespaces carry PodSecurityLabels, so the apiserver's Pod Security Admission judges every pod
// and pod template against the restricted level.
type DryRunner struct {
	dyn      dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	warnings *warningRecorder
	mu       sync.Mutex // one create at a time, so the warnings recorded belong to it
}

// warningRecorder keeps the Warning headers of the API server's answers (client-go hands them to the
// rest.Config's WarningHandler, by default only logged).
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// NewDryRunner installs the CRDs (the tree's test CRDs and the upstream ones) and the namespaces on
// kube for real, and returns a DryRunner on it.
func NewDryRunner(t *testing.T, kube *kapitest.Server) *DryRunner {
	t.Helper()
	root, err := objects.RepoRoot()
	require.NoError(t, err)
	// The CRDs (Route, OAuthClient, Group, Application) and the namespaces are created for real
	// first: a dry run cannot create a kind or a namespace that later objects of the same run need.
	crds, err := objects.Render(filepath.Join(root, "gitops", "test", "crds"))
	require.NoError(t, err)
	// The operators' own CRDs (CloudNativePG, OLM, Prometheus operator, ApplicationSet) from their Go modules.
	crds = append(crds, UpstreamCRDs(t)...)
	var nss []*unstructured.Unstructured
	for _, name := range []string{"litemaas", "openshift-gitops", "openshift-operators"} {
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		ns.SetName(name)
		ns.SetLabels(PodSecurityLabels)
		nss = append(nss, ns)
	}
	kube.Apply(t, append(crds, nss...)...)
	// The workload admission policy the cluster-admin part ships (gitops/cluster-policy), for real: the
	// API server, not Go, judges resources, probes and pinned images.
	policy, err := objects.Render(filepath.Join(root, "gitops", "cluster-policy"))
	require.NoError(t, err)
	kube.Apply(t, policy...)
	rec := &warningRecorder{}
	cfg := rest.CopyConfig(kube.Config)
	cfg.WarningHandler = rec
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	d := &DryRunner{dyn: dyn, warnings: rec, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Clientset().Discovery()))}
	waitForWorkloadPolicy(t, d)
	return d
}

// WorkloadPolicy is the name of the ValidatingAdmissionPolicy of gitops/cluster-policy.
const WorkloadPolicy = "litemaas-workloads"

// waitForWorkloadPolicy waits until the API server enforces WorkloadPolicy: it loads policies
// asynchronously, so a Deployment without resources is dry-run until it is refused.
func waitForWorkloadPolicy(t *testing.T, d *DryRunner) {
	t.Helper()
	probe := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "policy-probe", "namespace": "litemaas", "labels": map[string]any{"app.kubernetes.io/part-of": "litemaas"}},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "probe"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "probe"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "probe", "image": "probe:latest"}}},
			},
		},
	}}
	var last error
	require.Eventually(t, func() bool {
		last = d.Create(context.Background(), probe.DeepCopy())
		return last != nil && strings.Contains(last.Error(), WorkloadPolicy)
	}, 30*time.Second, 100*time.Millisecond, "the workload admission policy never took effect (last answer: %v)", last)
}

// Create dry-runs obj; its error names the object. A Pod Security warning (a pod template that would
// violate the namespace's level) is an error too, as PSA's rejection of a Pod is.
func (d *DryRunner) Create(ctx context.Context, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	m, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = d.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = d.dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.warnings.take()
	id := fmt.Sprintf("%s %s/%s", gvk.Kind, obj.GetNamespace(), obj.GetName())
	_, err = ri.Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	var psa []string
	for _, w := range d.warnings.take() {
		if strings.Contains(w, "PodSecurity") {
			psa = append(psa, w)
		}
	}
	if len(psa) > 0 {
		return fmt.Errorf("%s: %s", id, strings.Join(psa, "; "))
	}
	return nil
}

// UpstreamCRDs returns the CRDs of upstream-crds.yaml (the operators' own, from their Go modules).
func UpstreamCRDs(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	objs, err := upstream.CRDs()
	if err != nil {
		t.Fatalf("upstream CRDs: %v", err)
	}
	return objs
}

// UpstreamModuleDir returns the module cache directory of a module of upstream-crds.yaml.
func UpstreamModuleDir(t *testing.T, module string) string {
	t.Helper()
	dir, err := upstream.ListedModuleDir(module)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
