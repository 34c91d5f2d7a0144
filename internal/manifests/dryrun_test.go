package manifests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/workload"
)

var kube *kapitest.Server

func TestMain(m *testing.M) {
	kube = kapitest.MustStart(m)
	code := m.Run()
	kube.Stop()
	os.Exit(code)
}

// podSecurityLabels make the dry-run namespaces ask Pod Security Admission for the restricted level.
// PSA enforces only on Pods; on a workload's pod template (Deployment, StatefulSet, Job, CronJob) it
// only warns, so warn is set too and dryRunner.create turns each warning into a failure.
var podSecurityLabels = map[string]string{
	"pod-security.kubernetes.io/enforce":         "restricted",
	"pod-security.kubernetes.io/enforce-version": "latest",
	"pod-security.kubernetes.io/warn":            "restricted",
	"pod-security.kubernetes.io/warn-version":    "latest",
}

// dryRunner creates objects on the real API server with dryRun=All and strict field validation, so
// an unknown or misspelled field, a wrong type or a failed schema rule fails as it would on a cluster;
// the namespaces carry podSecurityLabels, so the apiserver's Pod Security Admission judges every pod
// and pod template against the restricted level.
type dryRunner struct {
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

func newDryRunner(t *testing.T) *dryRunner {
	t.Helper()
	root, err := objects.RepoRoot()
	require.NoError(t, err)
	// The CRDs (Route, OAuthClient, Group, Application) and the namespaces are created for real
	// first: a dry run cannot create a kind or a namespace that later objects of the same run need.
	crds, err := objects.Render(filepath.Join(root, "gitops", "test", "crds"))
	require.NoError(t, err)
	// The operators' own CRDs (CloudNativePG, OLM, Prometheus operator, ApplicationSet) from their Go modules.
	crds = append(crds, upstreamCRDs(t)...)
	var nss []*unstructured.Unstructured
	for _, name := range []string{"litemaas", "openshift-gitops", "openshift-operators"} {
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		ns.SetName(name)
		ns.SetLabels(podSecurityLabels)
		nss = append(nss, ns)
	}
	kube.Apply(t, append(crds, nss...)...)
	rec := &warningRecorder{}
	cfg := rest.CopyConfig(kube.Config)
	cfg.WarningHandler = rec
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	return &dryRunner{dyn: dyn, warnings: rec, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Clientset().Discovery()))}
}

// create dry-runs obj; its error names the object. A Pod Security warning (a pod template that would
// violate the namespace's level) is an error too, as PSA's rejection of a Pod is.
func (d *dryRunner) create(ctx context.Context, obj *unstructured.Unstructured) error {
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

func TestServerSideDryRun(t *testing.T) {
	d := newDryRunner(t)
	for _, tg := range treeTargets {
		if tg.kind == crdTarget {
			continue
		}
		t.Run(tg.dir, func(t *testing.T) {
			objs := manifeststest.Rendered(t, tg.dir)
			require.NotEmpty(t, objs)
			for _, o := range objs {
				err := d.create(context.Background(), o)
				if apierrors.IsAlreadyExists(err) && o.GetKind() == "Namespace" {
					continue // created for real above
				}
				assert.NoError(t, err, "%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
			}
		})
	}
}

// The dry run must be able to fail: a misspelled field, a bad enum and missing required fields (a pod
// template without containers among them).
func TestServerSideDryRunRejects(t *testing.T) {
	d := newDryRunner(t)
	objs := manifeststest.Rendered(t, sampleOverlay(t).dir)
	tests := []struct {
		kind, name string
		breakIt    func(*unstructured.Unstructured)
		want       string
	}{
		{"Deployment", "backend", func(o *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(o.Object, int64(1), "spec", "replicaz"))
		}, `unknown field "spec.replicaz"`},
		{"Route", "litellm", func(o *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(o.Object, "plain", "spec", "tls", "termination"))
		}, "spec.tls.termination"},
		{"Route", "litemaas", func(o *unstructured.Unstructured) { unstructured.RemoveNestedField(o.Object, "spec", "to") }, "spec.to"},
		{"Job", "litemaas-sync", func(o *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(o.Object, "ten", "spec", "activeDeadlineSeconds"))
		}, "activeDeadlineSeconds"},
		{"Deployment", "backend", func(o *unstructured.Unstructured) {
			unstructured.RemoveNestedField(o.Object, "spec", "template", "spec", "containers")
		}, "spec.template.spec.containers: Required value"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.name, func(t *testing.T) {
			o := objects.Find(objs, tt.kind, tt.name)
			require.NotNil(t, o)
			o = o.DeepCopy()
			tt.breakIt(o)
			err := d.create(context.Background(), o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// templateSpec returns the pod spec of a workload (a CronJob's through its jobTemplate).
func templateSpec(t *testing.T, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	path := []string{"spec", "template", "spec"}
	switch o.GetKind() {
	case "CronJob":
		path = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	case "Pod":
		path = []string{"spec"}
	}
	spec := objects.MapAt(o.Object, path...)
	require.NotNil(t, spec, "%s has no pod template", objects.Ref(o))
	return spec
}

// templateContainer returns a container (or init container) of a workload's pod template by name.
func templateContainer(t *testing.T, o *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	for _, c := range objects.ContainersOf(templateSpec(t, o)) {
		if c.Name == name {
			return c.Spec
		}
	}
	t.Fatalf("%s has no container %s", objects.Ref(o), name)
	return nil
}

// Pod Security Admission (and the apiserver's own validation), not Go, judge the restricted level:
// each case breaks one of its rules in a rendered workload, and the dry run fails naming the object
// and the rule. The rendered object passes first, so the failure is the break's.
func TestServerSideDryRunPodSecurity(t *testing.T) {
	d := newDryRunner(t)
	objs := manifeststest.Rendered(t, sampleOverlay(t).dir)
	tests := []struct {
		name, kind, obj string
		breakIt         func(t *testing.T, o *unstructured.Unstructured)
		want            string // a substring of the verdict
	}{
		{"privileged", "Deployment", "backend", func(t *testing.T, o *unstructured.Unstructured) {
			manifeststest.Set(t, templateContainer(t, o, "backend"), true, "securityContext", "privileged")
			// The apiserver refuses a privileged container before PSA sees it: it runs without
			// --allow-privileged, and privileged contradicts allowPrivilegeEscalation: false.
		}, "securityContext.privileged: Forbidden"},
		{"runAsNonRoot missing", "Deployment", "frontend", func(t *testing.T, o *unstructured.Unstructured) {
			delete(objects.MapAt(templateSpec(t, o), "securityContext"), "runAsNonRoot")
			for _, c := range objects.ContainersOf(templateSpec(t, o)) {
				delete(objects.MapAt(c.Spec, "securityContext"), "runAsNonRoot")
			}
		}, "runAsNonRoot != true"},
		{"runAsNonRoot false in a container", "StatefulSet", "postgres", func(t *testing.T, o *unstructured.Unstructured) {
			manifeststest.Set(t, templateContainer(t, o, "postgres"), false, "securityContext", "runAsNonRoot")
		}, "runAsNonRoot != true"},
		{"allowPrivilegeEscalation true", "Deployment", "litellm", func(t *testing.T, o *unstructured.Unstructured) {
			manifeststest.Set(t, templateContainer(t, o, "litellm"), true, "securityContext", "allowPrivilegeEscalation")
		}, "allowPrivilegeEscalation != false"},
		{"allowPrivilegeEscalation unset in an init container", "Deployment", "backend", func(t *testing.T, o *unstructured.Unstructured) {
			init := objects.Maps(objects.ListAt(templateSpec(t, o), "initContainers"))
			require.NotEmpty(t, init)
			delete(objects.MapAt(init[0], "securityContext"), "allowPrivilegeEscalation")
		}, "allowPrivilegeEscalation != false"},
		{"capabilities not dropped", "Deployment", "frontend", func(t *testing.T, o *unstructured.Unstructured) {
			manifeststest.Set(t, templateContainer(t, o, "frontend"), []any{"NET_RAW"}, "securityContext", "capabilities", "drop")
		}, `must set securityContext.capabilities.drop=["ALL"]`},
		{"capability added", "Deployment", "frontend", func(t *testing.T, o *unstructured.Unstructured) {
			manifeststest.Set(t, templateContainer(t, o, "frontend"), []any{"SYS_ADMIN"}, "securityContext", "capabilities", "add")
		}, `"SYS_ADMIN"`},
		{"seccomp missing", "Deployment", "backend", func(t *testing.T, o *unstructured.Unstructured) {
			delete(objects.MapAt(templateSpec(t, o), "securityContext"), "seccompProfile")
			for _, c := range objects.ContainersOf(templateSpec(t, o)) {
				delete(objects.MapAt(c.Spec, "securityContext"), "seccompProfile")
			}
		}, "seccompProfile"},
		{"seccomp unconfined in a container", "Deployment", "backend", func(t *testing.T, o *unstructured.Unstructured) {
			manifeststest.Set(t, templateContainer(t, o, "backend"), "Unconfined", "securityContext", "seccompProfile", "type")
		}, "seccompProfile"},
		{"hostPath", "StatefulSet", "postgres", func(t *testing.T, o *unstructured.Unstructured) {
			spec := templateSpec(t, o)
			spec["volumes"] = append(objects.ListAt(spec, "volumes"), map[string]any{"name": "host", "hostPath": map[string]any{"path": "/var"}})
		}, `volume "host" uses restricted volume type "hostPath"`},
		{"hostNetwork", "Deployment", "litellm", func(t *testing.T, o *unstructured.Unstructured) {
			templateSpec(t, o)["hostNetwork"] = true
		}, "host namespaces"},
		{"hostPID", "StatefulSet", "postgres", func(t *testing.T, o *unstructured.Unstructured) {
			templateSpec(t, o)["hostPID"] = true
		}, "host namespaces"},
		{"hostPort", "Deployment", "frontend", func(t *testing.T, o *unstructured.Unstructured) {
			ports := objects.Maps(objects.ListAt(templateContainer(t, o, "frontend"), "ports"))
			require.NotEmpty(t, ports)
			ports[0]["hostPort"] = ports[0]["containerPort"]
		}, "hostPort"},
		{"root user", "Job", objects.SyncJobName, func(t *testing.T, o *unstructured.Unstructured) {
			manifeststest.Set(t, templateSpec(t, o), int64(0), "securityContext", "runAsUser")
		}, "runAsUser=0"},
		{"capability added in a CronJob", "CronJob", "litemaas-sync-drift", func(t *testing.T, o *unstructured.Unstructured) {
			manifeststest.Set(t, templateContainer(t, o, objects.SyncJobName), []any{"NET_ADMIN"}, "securityContext", "capabilities", "add")
		}, `would violate PodSecurity "restricted:latest": unrestricted capabilities`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := objects.Find(objs, tt.kind, tt.obj)
			require.NotNil(t, o, "%s/%s not rendered", tt.kind, tt.obj)
			o = o.DeepCopy()
			require.NoError(t, d.create(context.Background(), o), "valid as rendered")
			tt.breakIt(t, o)
			err := d.create(context.Background(), o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), fmt.Sprintf("%s %s/%s: ", tt.kind, o.GetNamespace(), tt.obj), "names the object")
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// On a bare Pod PSA enforces: the API server refuses it, rather than warning.
func TestServerSideDryRunPodSecurityEnforcedOnPods(t *testing.T) {
	d := newDryRunner(t)
	backend := objects.Find(manifeststest.Rendered(t, sampleOverlay(t).dir), "Deployment", "backend")
	require.NotNil(t, backend)
	pod := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod"}}
	pod.SetNamespace(backend.GetNamespace())
	pod.SetName("backend-pod")
	// The ServiceAccount admission plugin wants the pod's ServiceAccount to exist; no controller
	// creates "default" here.
	sa := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ServiceAccount"}}
	sa.SetNamespace(backend.GetNamespace())
	sa.SetName(objects.ServiceAccountOrDefault(objects.StringAt(templateSpec(t, backend), "serviceAccountName")))
	kube.Apply(t, sa)
	manifeststest.Set(t, pod.Object, templateSpec(t, backend.DeepCopy()), "spec")
	require.NoError(t, d.create(context.Background(), pod), "the backend's pod template is restricted")

	manifeststest.Set(t, templateContainer(t, pod, "backend"), []any{"SYS_ADMIN"}, "securityContext", "capabilities", "add")
	err := d.create(context.Background(), pod)
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), err.Error())
	assert.Contains(t, err.Error(), "Pod litemaas/backend-pod: ")
	assert.Contains(t, err.Error(), `violates PodSecurity "restricted:latest": unrestricted capabilities`)
}

// What restricted-v2 refuses beyond PSA restricted stays a Go rule (CheckRestrictedV2): PSA accepts a
// fixed non-root UID and a Localhost seccomp profile, OpenShift does not.
func TestRestrictedV2BeyondPodSecurity(t *testing.T) {
	d := newDryRunner(t)
	objs := manifeststest.Rendered(t, sampleOverlay(t).dir)
	backend := manifeststest.MustFind(t, objs, "Deployment", "backend").DeepCopy()
	manifeststest.Set(t, templateSpec(t, backend), int64(1000), "securityContext", "runAsUser")
	manifeststest.Set(t, templateContainer(t, backend, "backend"), map[string]any{"type": "Localhost", "localhostProfile": "profiles/audit.json"}, "securityContext", "seccompProfile")
	require.NoError(t, d.create(context.Background(), backend), "PSA restricted accepts it")
	got := strings.Join(workload.CheckRestrictedV2([]*unstructured.Unstructured{backend}), "\n")
	assert.Contains(t, got, "Deployment/backend: pod securityContext.runAsUser is set")
	assert.Contains(t, got, "Deployment/backend container backend: seccompProfile is Localhost")
}
