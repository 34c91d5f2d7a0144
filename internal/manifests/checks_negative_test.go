package manifests

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/syncjob"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/wiring"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/workload"
)

// Each policy check must be able to fail: every case below breaks one thing in an otherwise good
// rendering and asserts that the check reports it (and that the unbroken rendering passes that check).

func TestChecksRejectBrokenObjects(t *testing.T) {
	sample := sampleOverlay(t)
	overlay := sample.dir
	domain := manifeststest.AppsDomain(t, sample.settings)
	domainCheck := func(t *testing.T, objs []*unstructured.Unstructured) []string {
		return wiring.CheckDomainWiring(objs, manifeststest.Rendered(t, sample.cluster), domain)
	}
	plain := func(check func([]*unstructured.Unstructured) []string) func(*testing.T, []*unstructured.Unstructured) []string {
		return func(_ *testing.T, objs []*unstructured.Unstructured) []string { return check(objs) }
	}

	cases := []struct {
		name   string
		check  func(t *testing.T, objs []*unstructured.Unstructured) []string
		break_ func(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured
		want   string // a substring of one reported problem
	}{
		// restricted-v2 beyond PSA restricted (which the dry run judges: TestServerSideDryRunPodSecurity)
		{"pod runAsUser", plain(workload.CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.PodSpecOf(t, o, "Deployment", "backend"), int64(1000), "securityContext", "runAsUser")
			return o
		}, "runAsUser"},
		{"container runAsUser", plain(workload.CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.ContainerOf(t, o, "StatefulSet", "postgres", "postgres"), int64(999), "securityContext", "runAsUser")
			return o
		}, "runAsUser"},
		{"fsGroup", plain(workload.CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.PodSpecOf(t, o, "StatefulSet", "postgres"), int64(70), "securityContext", "fsGroup")
			return o
		}, "fsGroup"},
		{"runAsGroup", plain(workload.CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.PodSpecOf(t, o, "Job", objects.SyncJobName), int64(0), "securityContext", "runAsGroup")
			return o
		}, "runAsGroup"},
		{"seccomp Localhost in the pod", plain(workload.CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.PodSpecOf(t, o, "Deployment", "backend"), map[string]any{"type": "Localhost", "localhostProfile": "profiles/audit.json"}, "securityContext", "seccompProfile")
			return o
		}, "Deployment/backend: pod seccompProfile is Localhost"},
		{"seccomp Localhost in a container", plain(workload.CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.ContainerOf(t, o, "Deployment", "litellm", "litellm"), map[string]any{"type": "Localhost", "localhostProfile": "profiles/audit.json"}, "securityContext", "seccompProfile")
			return o
		}, "Deployment/litellm container litellm: seccompProfile is Localhost"},
		{"CronJob with runAsUser", plain(workload.CheckRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			job := manifeststest.MustFind(t, o, "Job", objects.SyncJobName).DeepCopy()
			cj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": map[string]any{"name": "backup"}}}
			tmpl := objects.MapAt(job.Object, "spec", "template")
			manifeststest.Set(t, tmpl, int64(26), "spec", "securityContext", "runAsUser")
			manifeststest.Set(t, cj.Object, tmpl, "spec", "jobTemplate", "spec", "template")
			return append(o, cj)
		}, "CronJob/backup"},

		// resources and probes
		{"no limits", plain(workload.CheckResources), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(objects.MapAt(manifeststest.ContainerOf(t, o, "Deployment", "backend", "backend"), "resources"), "limits")
			return o
		}, "limits"},
		{"no readiness probe", plain(workload.CheckProbes), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(manifeststest.ContainerOf(t, o, "Deployment", "frontend", "frontend"), "readinessProbe")
			return o
		}, "readinessProbe"},

		// hooks
		{"hook Job without deadline", plain(syncjob.CheckHookJobs), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(objects.MapAt(manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, "spec"), "activeDeadlineSeconds")
			return o
		}, "activeDeadlineSeconds"},
		{"hook Job without delete policy", plain(syncjob.CheckHookJobs), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			j := manifeststest.MustFind(t, o, "Job", objects.SyncJobName)
			a := j.GetAnnotations()
			delete(a, objects.HookDeleteAnnotation)
			j.SetAnnotations(a)
			return o
		}, objects.HookDeleteAnnotation},

		// images
		{"image with latest", plain(workload.CheckImagesPinned), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.ContainerOf(t, o, "Deployment", "backend", "backend")["image"] = "quay.io/rh-aiservices-bu/litemaas-backend:latest"
			return o
		}, "not pinned"},
		{"image without tag", plain(workload.CheckImagesPinned), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.ContainerOf(t, o, "StatefulSet", "postgres", "postgres")["image"] = "docker.io/library/postgres"
			return o
		}, "no tag"},
		{"image on main", plain(workload.CheckImagesPinned), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.ContainerOf(t, o, "Deployment", "litellm", "litellm")["image"] = "quay.io/rh-aiservices-bu/litellm-non-root:main"
			return o
		}, "moving tag"},
		{"image from a registry with a port, no tag", plain(workload.CheckImagesPinned), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.ContainerOf(t, o, "Deployment", "frontend", "frontend")["image"] = "registry.local:5000/litemaas-frontend"
			return o
		}, "no tag"},

		// secrets
		{"Secret with data", plain(workload.CheckNoSecretData), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return append(o, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "litellm-secret"}, "data": map[string]any{"LITELLM_MASTER_KEY": "c2stMTIz"}}})
		}, "Secret with data"},
		{"Secret with stringData", plain(workload.CheckNoSecretData), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return append(o, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "backend-secret"}, "stringData": map[string]any{"JWT_SECRET": "x"}}})
		}, "stringData"},
		{"secretKeyRef outside the contract", plain(wiring.CheckSecretRefs), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			c := manifeststest.ContainerOf(t, o, "Deployment", "backend", "backend")
			c["env"] = append(objects.ListAt(c, "env"), map[string]any{"name": "X", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "backend-secret", "key": "jwt-secret"}}})
			return o
		}, "not in the Secret contract"},

		// the apps domain
		{"internal LITELLM_API_URL", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "LITELLM_API_URL", "http://litellm:4000")
			return o
		}, "LITELLM_API_URL"},
		{"callback on another host", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "OAUTH_CALLBACK_URL", "https://litemaas-api-litemaas."+domain+"/api/auth/callback")
			return o
		}, "OAUTH_CALLBACK_URL"},
		{"CORS origin with a trailing slash", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "CORS_ORIGIN", "https://litemaas-litemaas."+domain+"/")
			return o
		}, "CORS_ORIGIN"},
		{"issuer with a trailing slash", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "OAUTH_ISSUER", "https://oauth-openshift."+domain+"/")
			return o
		}, "OAUTH_ISSUER"},
		{"ServiceAccount OAuth client without its ServiceAccount", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "OAUTH_CLIENT_ID", "system:serviceaccount:litemaas:litemaas-oauth")
			return o
		}, "no such ServiceAccount"},
		{"ServiceAccount OAuth client without a redirect reference", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "OAUTH_CLIENT_ID", "system:serviceaccount:litemaas:"+objects.SyncJobName)
			return o
		}, "oauth-redirectreference"},
		{"route host off the runbook's URL", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Route", "litellm").Object, "llm."+domain, "spec", "host")
			return o
		}, "Route/litellm"},
		{"route without TLS redirect", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Route", "litemaas").Object, "Allow", "spec", "tls", "insecureEdgeTerminationPolicy")
			return o
		}, "insecureEdgeTerminationPolicy"},
		{"placeholder left", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := manifeststest.MustFind(t, o, "ConfigMap", "postgres-initdb")
			manifeststest.Set(t, cm.Object, "https://x."+objects.Placeholder, "data", "note")
			return o
		}, "placeholder"},

		// labels
		{"object without part-of", plain(workload.CheckLabels), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			s := manifeststest.MustFind(t, o, "Service", "postgres")
			l := s.GetLabels()
			delete(l, objects.LabelPartOf)
			s.SetLabels(l)
			return o
		}, objects.LabelPartOf},
		{"workload without component", plain(workload.CheckLabels), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			d := manifeststest.MustFind(t, o, "Deployment", "litellm")
			l := d.GetLabels()
			delete(l, objects.LabelComponent)
			d.SetLabels(l)
			return o
		}, objects.LabelComponent},
		{"Job pod labelled part-of", plain(workload.CheckLabels), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, "litemaas", "spec", "template", "metadata", "labels", objects.LabelPartOf)
			return o
		}, "oc wait"},
		{"Deployment pod not labelled part-of", plain(workload.CheckLabels), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(objects.MapAt(manifeststest.MustFind(t, o, "Deployment", "backend").Object, "spec", "template", "metadata", "labels"), objects.LabelPartOf)
			return o
		}, "oc wait"},
		{"namespace not managed", plain(workload.CheckNamespace), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			ns := manifeststest.MustFind(t, o, "Namespace", "litemaas")
			ns.SetLabels(map[string]string{objects.LabelName: "litemaas"})
			return o
		}, "managed-by"},

		// component settings
		{"two backend replicas", plain(wiring.CheckComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Deployment", "backend").Object, int64(2), "spec", "replicas")
			return o
		}, "replicas"},
		{"NODE_ENV development", plain(wiring.CheckComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "NODE_ENV", "development")
			return o
		}, "NODE_ENV"},
		{"unknown OAuth client id", plain(wiring.CheckComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "OAUTH_CLIENT_ID", "litemaas")
			return o
		}, "OAUTH_CLIENT_ID"},
		{"TLS checks off", plain(wiring.CheckComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "NODE_TLS_REJECT_UNAUTHORIZED", "0")
			return o
		}, "NODE_TLS_REJECT_UNAUTHORIZED"},
		{"LiteLLM without its database", plain(wiring.CheckComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "litellm", "litellm", "DATABASE_URL", "")
			return o
		}, "DATABASE_URL"},

		// the sync Job
		{"extra Job env", plain(syncjob.CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Job", objects.SyncJobName, objects.SyncJobName, "LITELLM_API_KEY", "x")
			return o
		}, "env names"},
		{"missing Job env", plain(syncjob.CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			c := manifeststest.ContainerOf(t, o, "Job", objects.SyncJobName, objects.SyncJobName)
			var kept []any
			for _, e := range objects.Maps(objects.ListAt(c, "env")) {
				if objects.StringAt(e, "name") != "WAIT_FOR" {
					kept = append(kept, e)
				}
			}
			c["env"] = kept
			return o
		}, "env names"},
		{"deadline below WAIT_TIMEOUT", plain(syncjob.CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, int64(600), "spec", "activeDeadlineSeconds")
			return o
		}, "WAIT_TIMEOUT"},
		{"no podFailurePolicy", plain(syncjob.CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(objects.MapAt(manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, "spec"), "podFailurePolicy")
			return o
		}, "exit code 2"},
		{"podFailurePolicy on another exit code", plain(syncjob.CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			rule := objects.Maps(objects.ListAt(manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, "spec", "podFailurePolicy", "rules"))[0]
			manifeststest.Set(t, rule, []any{int64(1)}, "onExitCodes", "values")
			return o
		}, "exit code 2"},
		{"Job mounts another ConfigMap", plain(syncjob.CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			v := objects.Maps(objects.ListAt(manifeststest.PodSpecOf(t, o, "Job", objects.SyncJobName), "volumes"))[0]
			manifeststest.Set(t, v, "litemaas-models", "configMap", "name")
			return o
		}, "mounts no volume"},
		{"MODELS_FILE elsewhere", plain(syncjob.CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Job", objects.SyncJobName, objects.SyncJobName, "MODELS_FILE", "/models.yaml")
			return o
		}, "MODELS_FILE"},
		{"hook deletes itself too early", plain(syncjob.CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, int64(5), "spec", "ttlSecondsAfterFinished")
			return o
		}, "ttlSecondsAfterFinished"},

		// RBAC
		{"Role on the ungenerated ConfigMap name", plain(syncjob.CheckSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			rule := objects.Maps(objects.ListAt(manifeststest.MustFind(t, o, "Role", objects.SyncJobName).Object, "rules"))[1]
			rule["resourceNames"] = []any{"litemaas-models"}
			return o
		}, "resourceNames"},
		{"Role reads secrets", plain(syncjob.CheckSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			r := manifeststest.MustFind(t, o, "Role", objects.SyncJobName)
			r.Object["rules"] = append(objects.ListAt(r.Object, "rules"), map[string]any{"apiGroups": []any{""}, "resources": []any{"secrets"}, "verbs": []any{"get"}})
			return o
		}, "unexpected rule"},
		{"Role may create ConfigMaps", plain(syncjob.CheckSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			for _, rule := range objects.Maps(objects.ListAt(manifeststest.MustFind(t, o, "Role", objects.SyncJobName).Object, "rules")) {
				if slices.Equal(objects.Strs(objects.ListAt(rule, "resourceNames")), []string{objects.SyncStatusConfigMap}) {
					rule["verbs"] = []any{"get", "update", "create"}
				}
			}
			return o
		}, "want get and update"},
		{"status ConfigMap not shipped", plain(syncjob.CheckSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			var kept []*unstructured.Unstructured
			for _, x := range o {
				if x.GetName() != objects.SyncStatusConfigMap {
					kept = append(kept, x)
				}
			}
			return kept
		}, "ConfigMap/litemaas-sync-status is missing"},
		{"ClusterRole", plain(syncjob.CheckSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return append(o, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": map[string]any{"name": "litemaas-sync"}}})
		}, "cluster-wide"},

		// the catalog
		{"catalog with a duplicate id", plain(wiring.CheckCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := objects.ModelsConfigMap(o)
			s := objects.StringAt(cm.Object, "data", objects.ModelsConfigMapDataKey)
			manifeststest.Set(t, cm.Object, s+"  - id: granite-8b-agent\n    name: Again\n    contextLength: 8\n    apiBase: http://x:8080/v1\n", "data", objects.ModelsConfigMapDataKey)
			return o
		}, "field id: duplicate id"},
		{"catalog model without apiBase", plain(wiring.CheckCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := objects.ModelsConfigMap(o)
			s := objects.StringAt(cm.Object, "data", objects.ModelsConfigMapDataKey)
			manifeststest.Set(t, cm.Object, s+"  - id: llama-3-8b\n    name: Llama 3 8B\n    contextLength: 8192\n", "data", objects.ModelsConfigMapDataKey)
			return o
		}, "model llama-3-8b: field apiBase: required"},
		{"catalog with an inline API key", plain(wiring.CheckCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := objects.ModelsConfigMap(o)
			s := objects.StringAt(cm.Object, "data", objects.ModelsConfigMapDataKey)
			manifeststest.Set(t, cm.Object, s+"  - id: llama-3-8b\n    name: Llama 3 8B\n    contextLength: 8192\n    apiBase: https://llm.example.com/v1\n    apiKey: sk-123\n", "data", objects.ModelsConfigMapDataKey)
			return o
		}, "inline API keys"},
		{"catalog not YAML", plain(wiring.CheckCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, objects.ModelsConfigMap(o).Object, "models: [\n", "data", objects.ModelsConfigMapDataKey)
			return o
		}, "not valid YAML"},
		{"catalog missing", plain(wiring.CheckCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			var kept []*unstructured.Unstructured
			for _, x := range o {
				if x != objects.ModelsConfigMap(o) {
					kept = append(kept, x)
				}
			}
			return kept
		}, "no models catalog"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.check(t, manifeststest.Rendered(t, overlay)); len(got) != 0 {
				t.Fatalf("the unbroken rendering already fails this check: %v", got)
			}
			got := tc.check(t, tc.break_(t, manifeststest.Rendered(t, overlay)))
			for _, p := range got {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Errorf("check did not report %q; it reported %v", tc.want, got)
		})
	}
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
		if got := workload.Pinned(image) == ""; got != ok {
			t.Errorf("pinned(%q) = %q, want pinned=%v", image, workload.Pinned(image), ok)
		}
	}
}

func TestOtherChecksRejectBrokenObjects(t *testing.T) {
	t.Run("CRD with an open spec", func(t *testing.T) {
		crd := manifeststest.MustFind(t, manifeststest.Rendered(t, "gitops/test/crds"), "CustomResourceDefinition", "routes.route.openshift.io")
		if got := checkCRD(crd); len(got) != 0 {
			t.Fatalf("unbroken CRD fails: %v", got)
		}
		v := objects.Maps(objects.ListAt(crd.Object, "spec", "versions"))[0]
		manifeststest.Set(t, v, true, "schema", "openAPIV3Schema", "properties", "spec", "x-kubernetes-preserve-unknown-fields")
		if got := checkCRD(crd); len(got) == 0 || !strings.Contains(got[0], ".spec") {
			t.Errorf("checkCRD did not reject preserve-unknown-fields at spec: %v", got)
		}
	})
	t.Run("kind without a CRD", func(t *testing.T) {
		crds := manifeststest.Rendered(t, "gitops/test/crds")
		extra := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": map[string]any{"name": "litellm"}}}
		if got := checkCRDCoverage([]*unstructured.Unstructured{extra}, crds); len(got) != 1 {
			t.Errorf("checkCRDCoverage = %v, want one problem", got)
		}
	})
	t.Run("Application without retry or on a missing path", func(t *testing.T) {
		app := manifeststest.MustFind(t, manifeststest.Rendered(t, "gitops/argocd/app-of-apps"), "Application", "step-06b-private-ai-litemaas")
		good := objects.StringAt(app.Object, "spec", "source", "path")
		exists := func(p string) bool { return p == good }
		if got := checkApplication(app, exists); len(got) != 0 {
			t.Fatalf("unbroken Application fails: %v", got)
		}
		delete(objects.MapAt(app.Object, "spec", "syncPolicy"), "retry")
		manifeststest.Set(t, app.Object, "gitops/overlays/typo", "spec", "source", "path")
		app.SetFinalizers([]string{"resources-finalizer.argocd.argoproj.io"})
		got := strings.Join(checkApplication(app, exists), "\n")
		for _, want := range []string{"retry.limit", "source.path", "finalizers"} {
			if !strings.Contains(got, want) {
				t.Errorf("checkApplication did not report %q: %s", want, got)
			}
		}
	})
	t.Run("image inventory", func(t *testing.T) {
		used := objects.ImagesOf(manifeststest.Rendered(t, sampleOverlay(t).dir))
		if got := workload.CheckImageInventory(used, used); len(got) != 0 {
			t.Fatalf("equal sets fail: %v", got)
		}
		if got := strings.Join(workload.CheckImageInventory(used, used[1:]), "\n"); !strings.Contains(got, "not listed") {
			t.Errorf("an unlisted image was not reported: %q", got)
		}
		if got := strings.Join(workload.CheckImageInventory(used, append(used, "docker.io/library/busybox:1.36")), "\n"); !strings.Contains(got, "no manifest uses it") {
			t.Errorf("an unused listed image was not reported: %q", got)
		}
		if got := strings.Join(workload.CheckImageInventory(used, append(used, used[0])), "\n"); !strings.Contains(got, "twice") {
			t.Errorf("a duplicate was not reported: %q", got)
		}
	})
	t.Run("OAuthClient redirect URI or secret", func(t *testing.T) {
		sample := sampleOverlay(t)
		domain := manifeststest.AppsDomain(t, sample.settings)
		app := manifeststest.Rendered(t, sample.dir)
		cluster := manifeststest.Rendered(t, sample.cluster)
		if got := wiring.CheckDomainWiring(app, cluster, domain); len(got) != 0 {
			t.Fatalf("unbroken rendering fails: %v", got)
		}
		oc := manifeststest.MustFind(t, cluster, "OAuthClient", "litemaas-oauth-client")
		oc.Object["redirectURIs"] = []any{"https://litemaas-litemaas.apps.other.example.com/api/auth/callback"}
		oc.Object["secret"] = "0123456789abcdef"
		got := strings.Join(wiring.CheckDomainWiring(app, cluster, domain), "\n")
		for _, want := range []string{"redirectURIs", "secret is set"} {
			if !strings.Contains(got, want) {
				t.Errorf("checkDomainWiring did not report %q: %s", want, got)
			}
		}
	})
	t.Run("images.yaml of another kind", func(t *testing.T) {
		if _, err := workload.ImageSetImages([]byte("kind: ImageSetConfiguration\napiVersion: v1\nmirror: {additionalImages: []}\n")); err == nil {
			t.Error("accepted apiVersion v1")
		}
		if _, err := workload.ImageSetImages([]byte("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror: {additionalImage: []}\n")); err == nil {
			t.Error("accepted a misspelt field")
		}
	})
}
