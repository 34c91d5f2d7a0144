package manifests

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/admission"
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

func TestServerSideDryRun(t *testing.T) {
	d := manifeststest.NewDryRunner(t, kube)
	for _, tg := range treeTargets {
		if tg.kind == crdTarget {
			continue
		}
		t.Run(tg.dir, func(t *testing.T) {
			objs := manifeststest.Rendered(t, tg.dir)
			require.NotEmpty(t, objs)
			for _, o := range objs {
				err := d.Create(context.Background(), o)
				if apierrors.IsAlreadyExists(err) && (o.GetKind() == "Namespace" || o.GetName() == manifeststest.WorkloadPolicy) {
					continue // created for real by NewDryRunner
				}
				assert.NoError(t, err, "%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
			}
		})
	}
}

// The dry run must be able to fail: a misspelled field, a bad enum and missing required fields (a pod
// template without containers among them).
func TestServerSideDryRunRejects(t *testing.T) {
	d := manifeststest.NewDryRunner(t, kube)
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
			err := d.Create(context.Background(), o)
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
	d := manifeststest.NewDryRunner(t, kube)
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
			require.NoError(t, d.Create(context.Background(), o), "valid as rendered")
			require.Empty(t, admission.CheckPodSecurity([]*unstructured.Unstructured{o}), "offline: valid as rendered")
			tt.breakIt(t, o)
			err := d.Create(context.Background(), o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), fmt.Sprintf("%s %s/%s: ", tt.kind, o.GetNamespace(), tt.obj), "names the object")
			assert.Contains(t, err.Error(), tt.want)
			// `litemaas-ops check` runs PSA's own checks offline: the same verdict, in the same words
			// (the API server refuses a privileged container before PSA sees it).
			offline := admission.CheckPodSecurity([]*unstructured.Unstructured{o})
			require.Len(t, offline, 1)
			if !strings.Contains(err.Error(), "securityContext.privileged: Forbidden") {
				_, verdict, _ := strings.Cut(offline[0], ": ")
				assert.Contains(t, err.Error(), verdict, "offline and the API server agree")
			}
		})
	}
}

// On a bare Pod PSA enforces: the API server refuses it, rather than warning.
func TestServerSideDryRunPodSecurityEnforcedOnPods(t *testing.T) {
	d := manifeststest.NewDryRunner(t, kube)
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
	require.NoError(t, d.Create(context.Background(), pod), "the backend's pod template is restricted")

	manifeststest.Set(t, templateContainer(t, pod, "backend"), []any{"SYS_ADMIN"}, "securityContext", "capabilities", "add")
	err := d.Create(context.Background(), pod)
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), err.Error())
	assert.Contains(t, err.Error(), "Pod litemaas/backend-pod: ")
	assert.Contains(t, err.Error(), `violates PodSecurity "restricted:latest": unrestricted capabilities`)
}

// What restricted-v2 refuses beyond PSA restricted stays a Go rule (CheckRestrictedV2): PSA accepts a
// fixed non-root UID and a Localhost seccomp profile, OpenShift does not.
func TestRestrictedV2BeyondPodSecurity(t *testing.T) {
	d := manifeststest.NewDryRunner(t, kube)
	objs := manifeststest.Rendered(t, sampleOverlay(t).dir)
	backend := manifeststest.MustFind(t, objs, "Deployment", "backend").DeepCopy()
	manifeststest.Set(t, templateSpec(t, backend), int64(1000), "securityContext", "runAsUser")
	manifeststest.Set(t, templateContainer(t, backend, "backend"), map[string]any{"type": "Localhost", "localhostProfile": "profiles/audit.json"}, "securityContext", "seccompProfile")
	require.NoError(t, d.Create(context.Background(), backend), "PSA restricted accepts it")
	got := strings.Join(workload.CheckRestrictedV2([]*unstructured.Unstructured{backend}), "\n")
	assert.Contains(t, got, "Deployment/backend: pod securityContext.runAsUser is set")
	assert.Contains(t, got, "Deployment/backend container backend: seccompProfile is Localhost")
}

// The workload admission policy (gitops/cluster-policy), not Go, judges the generic rules: each case
// breaks one in a rendered workload and the API server refuses it, naming the policy, the object and
// the container. The rendered object passes first, so the refusal is the break's.
func TestServerSideDryRunWorkloadPolicy(t *testing.T) {
	d := manifeststest.NewDryRunner(t, kube)
	objs := manifeststest.Rendered(t, sampleOverlay(t).dir)
	tests := []struct {
		name, kind, obj string
		breakIt         func(t *testing.T, o *unstructured.Unstructured)
		want            string
	}{
		{"no limits", "Deployment", "backend", func(t *testing.T, o *unstructured.Unstructured) {
			delete(objects.MapAt(templateContainer(t, o, "backend"), "resources"), "limits")
		}, "Deployment/backend: container(s) backend without cpu and memory requests and limits"},
		{"no memory request in an init container", "Deployment", "litellm", func(t *testing.T, o *unstructured.Unstructured) {
			delete(objects.MapAt(templateContainer(t, o, "wait-for-postgres"), "resources", "requests"), "memory")
		}, "container(s) wait-for-postgres without cpu and memory"},
		{"a CronJob without resources", "CronJob", "litemaas-sync-drift", func(t *testing.T, o *unstructured.Unstructured) {
			delete(templateContainer(t, o, "litemaas-sync"), "resources")
		}, "CronJob/litemaas-sync-drift: container(s) litemaas-sync without"},
		{"no readiness probe", "Deployment", "frontend", func(t *testing.T, o *unstructured.Unstructured) {
			delete(templateContainer(t, o, "frontend"), "readinessProbe")
		}, "Deployment/frontend: container(s) frontend without a readinessProbe and a livenessProbe"},
		{"no liveness probe", "StatefulSet", "postgres", func(t *testing.T, o *unstructured.Unstructured) {
			delete(templateContainer(t, o, "postgres"), "livenessProbe")
		}, "StatefulSet/postgres: container(s) postgres without"},
		{"image with latest", "Deployment", "backend", func(t *testing.T, o *unstructured.Unstructured) {
			templateContainer(t, o, "backend")["image"] = "quay.io/rh-aiservices-bu/litemaas-backend:latest"
		}, "image not pinned"},
		{"image without tag", "StatefulSet", "postgres", func(t *testing.T, o *unstructured.Unstructured) {
			templateContainer(t, o, "postgres")["image"] = "docker.io/library/postgres"
		}, "postgres (docker.io/library/postgres)"},
		{"image on main", "Deployment", "litellm", func(t *testing.T, o *unstructured.Unstructured) {
			templateContainer(t, o, "litellm")["image"] = "quay.io/rh-aiservices-bu/litellm-non-root:main"
		}, "litellm (quay.io/rh-aiservices-bu/litellm-non-root:main)"},
		{"image from a registry with a port, no tag", "Deployment", "frontend", func(t *testing.T, o *unstructured.Unstructured) {
			templateContainer(t, o, "frontend")["image"] = "registry.local:5000/litemaas-frontend"
		}, "frontend (registry.local:5000/litemaas-frontend)"},
		{"short digest", "Job", "litemaas-sync", func(t *testing.T, o *unstructured.Unstructured) {
			templateContainer(t, o, "litemaas-sync")["image"] = "ghcr.io/litemaas-gitops/litemaas-sync@sha256:0123"
		}, "Job/litemaas-sync: image not pinned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := objects.Find(objs, tt.kind, tt.obj)
			require.NotNil(t, o, "%s/%s", tt.kind, tt.obj)
			o = o.DeepCopy()
			require.NoError(t, d.Create(context.Background(), o.DeepCopy()), "the rendered object passes")
			require.Empty(t, offlinePolicy(t, o), "offline: the rendered object passes")
			tt.breakIt(t, o)
			err := d.Create(context.Background(), o)
			require.Error(t, err)
			t.Logf("%s: %v", tt.name, err)
			assert.Contains(t, err.Error(), manifeststest.WorkloadPolicy)
			assert.Contains(t, err.Error(), tt.want)
			// `litemaas-ops check` evaluates the same policy offline: the same verdict, in the same words.
			offline := offlinePolicy(t, o)
			require.Len(t, offline, 1)
			_, verdict, _ := strings.Cut(offline[0], ": ")
			assert.Contains(t, err.Error(), verdict, "offline and the API server agree")
		})
	}
	// A pinned digest and a fixed tag pass; objects of others (no part-of label) are not judged.
	o := objects.Find(objs, "Deployment", "backend").DeepCopy()
	templateContainer(t, o, "backend")["image"] = "quay.io/x/y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	assert.NoError(t, d.Create(context.Background(), o))
	assert.Empty(t, offlinePolicy(t, o))
	o = objects.Find(objs, "Deployment", "backend").DeepCopy()
	templateContainer(t, o, "backend")["image"] = "quay.io/x/y:latest"
	labels := o.GetLabels()
	delete(labels, "app.kubernetes.io/part-of")
	o.SetLabels(labels)
	assert.NoError(t, d.Create(context.Background(), o), "an object without the part-of label is not the stack's")
	assert.Empty(t, offlinePolicy(t, o), "offline: not the stack's either")
}

// offlinePolicy judges o with the admission policies of gitops/cluster-policy as `litemaas-ops check`
// does, in the namespace the dry run labels as the cluster part would.
func offlinePolicy(t *testing.T, o *unstructured.Unstructured) []string {
	t.Helper()
	return admission.CheckPolicies(manifeststest.Rendered(t, "gitops/cluster-policy"), []*unstructured.Unstructured{o},
		func(ns string) map[string]string { return map[string]string{"kubernetes.io/metadata.name": ns} })
}
