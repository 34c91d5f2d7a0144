package workload

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// brokenCase is manifeststest.BrokenCase, declared here so that the table lists its fields in order.
type brokenCase struct {
	Name  string
	Check func(t *testing.T, objs []*unstructured.Unstructured) []string
	Break func(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured
	Want  string // a substring of one reported problem
}

// Each rule must be able to fail: every case below breaks one thing in an otherwise good rendering of
// the sample overlay and asserts that the rule reports it (and that the unbroken rendering passes it).
func TestRulesRejectBrokenObjects(t *testing.T) {
	manifeststest.RunBrokenCases(t, manifeststest.SampleOverlay(t).Dir, []brokenCase{
		// restricted-v2 beyond PSA restricted (which the dry run judges: TestServerSideDryRunPodSecurity)
		{"pod runAsUser", manifeststest.Plain(CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.PodSpecOf(t, o, "Deployment", "backend"), int64(1000), "securityContext", "runAsUser")
			return o
		}, "runAsUser"},
		{"container runAsUser", manifeststest.Plain(CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.ContainerOf(t, o, "StatefulSet", "postgres", "postgres"), int64(999), "securityContext", "runAsUser")
			return o
		}, "runAsUser"},
		{"fsGroup", manifeststest.Plain(CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.PodSpecOf(t, o, "StatefulSet", "postgres"), int64(70), "securityContext", "fsGroup")
			return o
		}, "fsGroup"},
		{"runAsGroup", manifeststest.Plain(CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.PodSpecOf(t, o, "Job", objects.SyncJobName), int64(0), "securityContext", "runAsGroup")
			return o
		}, "runAsGroup"},
		{"seccomp Localhost in the pod", manifeststest.Plain(CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.PodSpecOf(t, o, "Deployment", "backend"), map[string]any{"type": "Localhost", "localhostProfile": "profiles/audit.json"}, "securityContext", "seccompProfile")
			return o
		}, "Deployment/backend: pod seccompProfile is Localhost"},
		{"seccomp Localhost in a container", manifeststest.Plain(CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.ContainerOf(t, o, "Deployment", "litellm", "litellm"), map[string]any{"type": "Localhost", "localhostProfile": "profiles/audit.json"}, "securityContext", "seccompProfile")
			return o
		}, "Deployment/litellm container litellm: seccompProfile is Localhost"},
		{"CronJob with runAsUser", manifeststest.Plain(CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			job := manifeststest.MustFind(t, o, "Job", objects.SyncJobName).DeepCopy()
			cj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": map[string]any{"name": "backup"}}}
			tmpl := objects.MapAt(job.Object, "spec", "template")
			manifeststest.Set(t, tmpl, int64(26), "spec", "securityContext", "runAsUser")
			manifeststest.Set(t, cj.Object, tmpl, "spec", "jobTemplate", "spec", "template")
			return append(o, cj)
		}, "CronJob/backup"},

		// secrets
		{"Secret with data", manifeststest.Plain(CheckNoSecretData), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return append(o, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "litellm-secret"}, "data": map[string]any{"LITELLM_MASTER_KEY": "c2stMTIz"}}})
		}, "Secret with data"},
		{"Secret with stringData", manifeststest.Plain(CheckNoSecretData), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return append(o, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "backend-secret"}, "stringData": map[string]any{"JWT_SECRET": "x"}}})
		}, "stringData"},

		// labels
		{"object without part-of", manifeststest.Plain(CheckLabels), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			s := manifeststest.MustFind(t, o, "Service", "postgres")
			l := s.GetLabels()
			delete(l, objects.LabelPartOf)
			s.SetLabels(l)
			return o
		}, objects.LabelPartOf},
		{"workload without component", manifeststest.Plain(CheckLabels), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			d := manifeststest.MustFind(t, o, "Deployment", "litellm")
			l := d.GetLabels()
			delete(l, objects.LabelComponent)
			d.SetLabels(l)
			return o
		}, objects.LabelComponent},
		{"Job pod labelled part-of", manifeststest.Plain(CheckLabels), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, "litemaas", "spec", "template", "metadata", "labels", objects.LabelPartOf)
			return o
		}, "oc wait"},
		{"Deployment pod not labelled part-of", manifeststest.Plain(CheckLabels), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(objects.MapAt(manifeststest.MustFind(t, o, "Deployment", "backend").Object, "spec", "template", "metadata", "labels"), objects.LabelPartOf)
			return o
		}, "oc wait"},
		{"namespace not managed", manifeststest.Plain(CheckNamespace), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			ns := manifeststest.MustFind(t, o, "Namespace", "litemaas")
			ns.SetLabels(map[string]string{objects.LabelName: "litemaas"})
			return o
		}, "managed-by"},
	})
}

func TestPinned(t *testing.T) {
	for image, ok := range map[string]bool{
		"docker.io/library/postgres:16.9-alpine":                                              true,
		"quay.io/rh-aiservices-bu/litellm-non-root:main-v1.81.0-stable-custom":                true,
		"registry.local:5000/litemaas-backend:0.4.0":                                          true,
		"quay.io/x/y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": true,
		"quay.io/x/y@sha256:0123":                                                             false,
		"registry.local:5000/litemaas-backend":                                                false,
		"postgres":                                                                            false,
		"postgres:latest":                                                                     false,
		"quay.io/x/y:main":                                                                    false,
		"":                                                                                    false,
	} {
		if got := Pinned(image) == ""; got != ok {
			t.Errorf("pinned(%q) = %q, want pinned=%v", image, Pinned(image), ok)
		}
	}
}

// The image inventory (images/images.yaml) against the rendered images, and its file format.
func TestImageInventoryRejects(t *testing.T) {
	t.Run("image inventory", func(t *testing.T) {
		used := objects.ImagesOf(manifeststest.Rendered(t, manifeststest.SampleOverlay(t).Dir))
		if got := CheckImageInventory(used, used); len(got) != 0 {
			t.Fatalf("equal sets fail: %v", got)
		}
		if got := strings.Join(CheckImageInventory(used, used[1:]), "\n"); !strings.Contains(got, "not listed") {
			t.Errorf("an unlisted image was not reported: %q", got)
		}
		if got := strings.Join(CheckImageInventory(used, append(used, "docker.io/library/busybox:1.36")), "\n"); !strings.Contains(got, "no manifest uses it") {
			t.Errorf("an unused listed image was not reported: %q", got)
		}
		if got := strings.Join(CheckImageInventory(used, append(used, used[0])), "\n"); !strings.Contains(got, "twice") {
			t.Errorf("a duplicate was not reported: %q", got)
		}
	})
	t.Run("images.yaml of another kind", func(t *testing.T) {
		if _, err := ImageSetImages([]byte("kind: ImageSetConfiguration\napiVersion: v1\nmirror: {additionalImages: []}\n")); err == nil {
			t.Error("accepted apiVersion v1")
		}
		if _, err := ImageSetImages([]byte("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror: {additionalImage: []}\n")); err == nil {
			t.Error("accepted a misspelt field")
		}
	})
}
