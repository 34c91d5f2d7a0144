package manifests

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Each policy check must be able to fail: every case below breaks one thing in an otherwise good
// rendering and asserts that the check reports it (and that the unbroken rendering passes that check).

// mustFind returns the object or fails the test.
func mustFind(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o := Find(objs, kind, name)
	if o == nil {
		t.Fatalf("%s/%s not rendered", kind, name)
	}
	return o
}

func podSpecOf(t *testing.T, objs []*unstructured.Unstructured, kind, name string) map[string]any {
	t.Helper()
	o := mustFind(t, objs, kind, name)
	spec := mapAt(o.Object, "spec", "template", "spec")
	if spec == nil {
		t.Fatalf("%s/%s has no pod template", kind, name)
	}
	return spec
}

func containerOf(t *testing.T, objs []*unstructured.Unstructured, kind, name, cname string) map[string]any {
	t.Helper()
	c := containerNamed(podSpecOf(t, objs, kind, name), cname)
	if c == nil {
		t.Fatalf("%s/%s has no container %s", kind, name, cname)
	}
	return c
}

func set(t *testing.T, obj map[string]any, value any, path ...string) {
	t.Helper()
	if err := unstructured.SetNestedField(obj, value, path...); err != nil {
		t.Fatal(err)
	}
}

func setEnv(t *testing.T, objs []*unstructured.Unstructured, kind, name, cname, env, value string) {
	t.Helper()
	c := containerOf(t, objs, kind, name, cname)
	for _, e := range maps(listAt(c, "env")) {
		if stringAt(e, "name") == env {
			delete(e, "valueFrom")
			e["value"] = value
			return
		}
	}
	c["env"] = append(listAt(c, "env"), map[string]any{"name": env, "value": value})
}

func TestChecksRejectBrokenObjects(t *testing.T) {
	sample := sampleOverlay(t)
	overlay := sample.dir
	domain := appsDomain(t, sample.settings)
	domainCheck := func(t *testing.T, objs []*unstructured.Unstructured) []string {
		return checkDomainWiring(objs, rendered(t, sample.cluster), domain)
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
		{"pod runAsUser", plain(checkRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, podSpecOf(t, o, "Deployment", "backend"), int64(1000), "securityContext", "runAsUser")
			return o
		}, "runAsUser"},
		{"container runAsUser", plain(checkRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, containerOf(t, o, "StatefulSet", "postgres", "postgres"), int64(999), "securityContext", "runAsUser")
			return o
		}, "runAsUser"},
		{"fsGroup", plain(checkRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, podSpecOf(t, o, "StatefulSet", "postgres"), int64(70), "securityContext", "fsGroup")
			return o
		}, "fsGroup"},
		{"runAsGroup", plain(checkRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, podSpecOf(t, o, "Job", syncJobName), int64(0), "securityContext", "runAsGroup")
			return o
		}, "runAsGroup"},
		{"seccomp Localhost in the pod", plain(checkRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, podSpecOf(t, o, "Deployment", "backend"), map[string]any{"type": "Localhost", "localhostProfile": "profiles/audit.json"}, "securityContext", "seccompProfile")
			return o
		}, "Deployment/backend: pod seccompProfile is Localhost"},
		{"seccomp Localhost in a container", plain(checkRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, containerOf(t, o, "Deployment", "litellm", "litellm"), map[string]any{"type": "Localhost", "localhostProfile": "profiles/audit.json"}, "securityContext", "seccompProfile")
			return o
		}, "Deployment/litellm container litellm: seccompProfile is Localhost"},
		{"CronJob with runAsUser", plain(checkRestrictedV2), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			job := mustFind(t, o, "Job", syncJobName).DeepCopy()
			cj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": map[string]any{"name": "backup"}}}
			tmpl := mapAt(job.Object, "spec", "template")
			set(t, tmpl, int64(26), "spec", "securityContext", "runAsUser")
			set(t, cj.Object, tmpl, "spec", "jobTemplate", "spec", "template")
			return append(o, cj)
		}, "CronJob/backup"},

		// resources and probes
		{"no limits", plain(checkResources), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(mapAt(containerOf(t, o, "Deployment", "backend", "backend"), "resources"), "limits")
			return o
		}, "limits"},
		{"no readiness probe", plain(checkProbes), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(containerOf(t, o, "Deployment", "frontend", "frontend"), "readinessProbe")
			return o
		}, "readinessProbe"},

		// hooks
		{"hook Job without deadline", plain(checkHookJobs), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(mapAt(mustFind(t, o, "Job", syncJobName).Object, "spec"), "activeDeadlineSeconds")
			return o
		}, "activeDeadlineSeconds"},
		{"hook Job without delete policy", plain(checkHookJobs), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			j := mustFind(t, o, "Job", syncJobName)
			a := j.GetAnnotations()
			delete(a, hookDeleteAnnotation)
			j.SetAnnotations(a)
			return o
		}, hookDeleteAnnotation},

		// images
		{"image with latest", plain(checkImagesPinned), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			containerOf(t, o, "Deployment", "backend", "backend")["image"] = "quay.io/rh-aiservices-bu/litemaas-backend:latest"
			return o
		}, "not pinned"},
		{"image without tag", plain(checkImagesPinned), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			containerOf(t, o, "StatefulSet", "postgres", "postgres")["image"] = "docker.io/library/postgres"
			return o
		}, "no tag"},
		{"image on main", plain(checkImagesPinned), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			containerOf(t, o, "Deployment", "litellm", "litellm")["image"] = "quay.io/rh-aiservices-bu/litellm-non-root:main"
			return o
		}, "moving tag"},
		{"image from a registry with a port, no tag", plain(checkImagesPinned), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			containerOf(t, o, "Deployment", "frontend", "frontend")["image"] = "registry.local:5000/litemaas-frontend"
			return o
		}, "no tag"},

		// secrets
		{"Secret with data", plain(checkNoSecretData), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return append(o, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "litellm-secret"}, "data": map[string]any{"LITELLM_MASTER_KEY": "c2stMTIz"}}})
		}, "Secret with data"},
		{"Secret with stringData", plain(checkNoSecretData), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return append(o, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "backend-secret"}, "stringData": map[string]any{"JWT_SECRET": "x"}}})
		}, "stringData"},
		{"secretKeyRef outside the contract", plain(checkSecretRefs), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			c := containerOf(t, o, "Deployment", "backend", "backend")
			c["env"] = append(listAt(c, "env"), map[string]any{"name": "X", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "backend-secret", "key": "jwt-secret"}}})
			return o
		}, "not in the Secret contract"},

		// the apps domain
		{"internal LITELLM_API_URL", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			setEnv(t, o, "Deployment", "backend", "backend", "LITELLM_API_URL", "http://litellm:4000")
			return o
		}, "LITELLM_API_URL"},
		{"callback on another host", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			setEnv(t, o, "Deployment", "backend", "backend", "OAUTH_CALLBACK_URL", "https://litemaas-api-litemaas."+domain+"/api/auth/callback")
			return o
		}, "OAUTH_CALLBACK_URL"},
		{"CORS origin with a trailing slash", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			setEnv(t, o, "Deployment", "backend", "backend", "CORS_ORIGIN", "https://litemaas-litemaas."+domain+"/")
			return o
		}, "CORS_ORIGIN"},
		{"issuer with a trailing slash", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			setEnv(t, o, "Deployment", "backend", "backend", "OAUTH_ISSUER", "https://oauth-openshift."+domain+"/")
			return o
		}, "OAUTH_ISSUER"},
		{"ServiceAccount OAuth client without its ServiceAccount", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			setEnv(t, o, "Deployment", "backend", "backend", "OAUTH_CLIENT_ID", "system:serviceaccount:litemaas:litemaas-oauth")
			return o
		}, "no such ServiceAccount"},
		{"ServiceAccount OAuth client without a redirect reference", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			setEnv(t, o, "Deployment", "backend", "backend", "OAUTH_CLIENT_ID", "system:serviceaccount:litemaas:"+syncJobName)
			return o
		}, "oauth-redirectreference"},
		{"route host off the runbook's URL", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, mustFind(t, o, "Route", "litellm").Object, "llm."+domain, "spec", "host")
			return o
		}, "Route/litellm"},
		{"route without TLS redirect", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, mustFind(t, o, "Route", "litemaas").Object, "Allow", "spec", "tls", "insecureEdgeTerminationPolicy")
			return o
		}, "insecureEdgeTerminationPolicy"},
		{"placeholder left", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := mustFind(t, o, "ConfigMap", "postgres-initdb")
			set(t, cm.Object, "https://x."+Placeholder, "data", "note")
			return o
		}, "placeholder"},

		// labels
		{"object without part-of", plain(checkLabels), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			s := mustFind(t, o, "Service", "postgres")
			l := s.GetLabels()
			delete(l, labelPartOf)
			s.SetLabels(l)
			return o
		}, labelPartOf},
		{"workload without component", plain(checkLabels), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			d := mustFind(t, o, "Deployment", "litellm")
			l := d.GetLabels()
			delete(l, labelComponent)
			d.SetLabels(l)
			return o
		}, labelComponent},
		{"Job pod labelled part-of", plain(checkLabels), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, mustFind(t, o, "Job", syncJobName).Object, "litemaas", "spec", "template", "metadata", "labels", labelPartOf)
			return o
		}, "oc wait"},
		{"Deployment pod not labelled part-of", plain(checkLabels), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(mapAt(mustFind(t, o, "Deployment", "backend").Object, "spec", "template", "metadata", "labels"), labelPartOf)
			return o
		}, "oc wait"},
		{"namespace not managed", plain(checkNamespace), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			ns := mustFind(t, o, "Namespace", "litemaas")
			ns.SetLabels(map[string]string{labelName: "litemaas"})
			return o
		}, "managed-by"},

		// component settings
		{"two backend replicas", plain(checkComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, mustFind(t, o, "Deployment", "backend").Object, int64(2), "spec", "replicas")
			return o
		}, "replicas"},
		{"NODE_ENV development", plain(checkComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			setEnv(t, o, "Deployment", "backend", "backend", "NODE_ENV", "development")
			return o
		}, "NODE_ENV"},
		{"unknown OAuth client id", plain(checkComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			setEnv(t, o, "Deployment", "backend", "backend", "OAUTH_CLIENT_ID", "litemaas")
			return o
		}, "OAUTH_CLIENT_ID"},
		{"TLS checks off", plain(checkComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			setEnv(t, o, "Deployment", "backend", "backend", "NODE_TLS_REJECT_UNAUTHORIZED", "0")
			return o
		}, "NODE_TLS_REJECT_UNAUTHORIZED"},
		{"LiteLLM without its database", plain(checkComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			setEnv(t, o, "Deployment", "litellm", "litellm", "DATABASE_URL", "")
			return o
		}, "DATABASE_URL"},

		// the sync Job
		{"extra Job env", plain(checkSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			setEnv(t, o, "Job", syncJobName, syncJobName, "LITELLM_API_KEY", "x")
			return o
		}, "env names"},
		{"missing Job env", plain(checkSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			c := containerOf(t, o, "Job", syncJobName, syncJobName)
			var kept []any
			for _, e := range maps(listAt(c, "env")) {
				if stringAt(e, "name") != "WAIT_FOR" {
					kept = append(kept, e)
				}
			}
			c["env"] = kept
			return o
		}, "env names"},
		{"deadline below WAIT_TIMEOUT", plain(checkSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, mustFind(t, o, "Job", syncJobName).Object, int64(600), "spec", "activeDeadlineSeconds")
			return o
		}, "WAIT_TIMEOUT"},
		{"no podFailurePolicy", plain(checkSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(mapAt(mustFind(t, o, "Job", syncJobName).Object, "spec"), "podFailurePolicy")
			return o
		}, "exit code 2"},
		{"podFailurePolicy on another exit code", plain(checkSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			rule := maps(listAt(mustFind(t, o, "Job", syncJobName).Object, "spec", "podFailurePolicy", "rules"))[0]
			set(t, rule, []any{int64(1)}, "onExitCodes", "values")
			return o
		}, "exit code 2"},
		{"Job mounts another ConfigMap", plain(checkSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			v := maps(listAt(podSpecOf(t, o, "Job", syncJobName), "volumes"))[0]
			set(t, v, "litemaas-models", "configMap", "name")
			return o
		}, "mounts no volume"},
		{"MODELS_FILE elsewhere", plain(checkSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			setEnv(t, o, "Job", syncJobName, syncJobName, "MODELS_FILE", "/models.yaml")
			return o
		}, "MODELS_FILE"},
		{"hook deletes itself too early", plain(checkSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, mustFind(t, o, "Job", syncJobName).Object, int64(5), "spec", "ttlSecondsAfterFinished")
			return o
		}, "ttlSecondsAfterFinished"},

		// RBAC
		{"Role on the ungenerated ConfigMap name", plain(checkSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			rule := maps(listAt(mustFind(t, o, "Role", syncJobName).Object, "rules"))[1]
			rule["resourceNames"] = []any{"litemaas-models"}
			return o
		}, "resourceNames"},
		{"Role reads secrets", plain(checkSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			r := mustFind(t, o, "Role", syncJobName)
			r.Object["rules"] = append(listAt(r.Object, "rules"), map[string]any{"apiGroups": []any{""}, "resources": []any{"secrets"}, "verbs": []any{"get"}})
			return o
		}, "unexpected rule"},
		{"Role may create ConfigMaps", plain(checkSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			for _, rule := range maps(listAt(mustFind(t, o, "Role", syncJobName).Object, "rules")) {
				if slices.Equal(strs(listAt(rule, "resourceNames")), []string{syncStatusConfigMap}) {
					rule["verbs"] = []any{"get", "update", "create"}
				}
			}
			return o
		}, "want get and update"},
		{"status ConfigMap not shipped", plain(checkSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			var kept []*unstructured.Unstructured
			for _, x := range o {
				if x.GetName() != syncStatusConfigMap {
					kept = append(kept, x)
				}
			}
			return kept
		}, "ConfigMap/litemaas-sync-status is missing"},
		{"ClusterRole", plain(checkSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return append(o, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": map[string]any{"name": "litemaas-sync"}}})
		}, "cluster-wide"},

		// the catalog
		{"catalog with a duplicate id", plain(checkCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := modelsConfigMap(o)
			s := stringAt(cm.Object, "data", modelsConfigMapDataKey)
			set(t, cm.Object, s+"  - id: granite-8b-agent\n    name: Again\n    contextLength: 8\n    apiBase: http://x:8080/v1\n", "data", modelsConfigMapDataKey)
			return o
		}, "field id: duplicate id"},
		{"catalog model without apiBase", plain(checkCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := modelsConfigMap(o)
			s := stringAt(cm.Object, "data", modelsConfigMapDataKey)
			set(t, cm.Object, s+"  - id: llama-3-8b\n    name: Llama 3 8B\n    contextLength: 8192\n", "data", modelsConfigMapDataKey)
			return o
		}, "model llama-3-8b: field apiBase: required"},
		{"catalog with an inline API key", plain(checkCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := modelsConfigMap(o)
			s := stringAt(cm.Object, "data", modelsConfigMapDataKey)
			set(t, cm.Object, s+"  - id: llama-3-8b\n    name: Llama 3 8B\n    contextLength: 8192\n    apiBase: https://llm.example.com/v1\n    apiKey: sk-123\n", "data", modelsConfigMapDataKey)
			return o
		}, "inline API keys"},
		{"catalog not YAML", plain(checkCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			set(t, modelsConfigMap(o).Object, "models: [\n", "data", modelsConfigMapDataKey)
			return o
		}, "not valid YAML"},
		{"catalog missing", plain(checkCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			var kept []*unstructured.Unstructured
			for _, x := range o {
				if x != modelsConfigMap(o) {
					kept = append(kept, x)
				}
			}
			return kept
		}, "no models catalog"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.check(t, rendered(t, overlay)); len(got) != 0 {
				t.Fatalf("the unbroken rendering already fails this check: %v", got)
			}
			got := tc.check(t, tc.break_(t, rendered(t, overlay)))
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
		if got := pinned(image) == ""; got != ok {
			t.Errorf("pinned(%q) = %q, want pinned=%v", image, pinned(image), ok)
		}
	}
}

func TestOtherChecksRejectBrokenObjects(t *testing.T) {
	t.Run("CRD with an open spec", func(t *testing.T) {
		crd := mustFind(t, rendered(t, "gitops/test/crds"), "CustomResourceDefinition", "routes.route.openshift.io")
		if got := checkCRD(crd); len(got) != 0 {
			t.Fatalf("unbroken CRD fails: %v", got)
		}
		v := maps(listAt(crd.Object, "spec", "versions"))[0]
		set(t, v, true, "schema", "openAPIV3Schema", "properties", "spec", "x-kubernetes-preserve-unknown-fields")
		if got := checkCRD(crd); len(got) == 0 || !strings.Contains(got[0], ".spec") {
			t.Errorf("checkCRD did not reject preserve-unknown-fields at spec: %v", got)
		}
	})
	t.Run("kind without a CRD", func(t *testing.T) {
		crds := rendered(t, "gitops/test/crds")
		extra := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": map[string]any{"name": "litellm"}}}
		if got := checkCRDCoverage([]*unstructured.Unstructured{extra}, crds); len(got) != 1 {
			t.Errorf("checkCRDCoverage = %v, want one problem", got)
		}
	})
	t.Run("Application without retry or on a missing path", func(t *testing.T) {
		app := mustFind(t, rendered(t, "gitops/argocd/app-of-apps"), "Application", "step-06b-private-ai-litemaas")
		good := stringAt(app.Object, "spec", "source", "path")
		exists := func(p string) bool { return p == good }
		if got := checkApplication(app, exists); len(got) != 0 {
			t.Fatalf("unbroken Application fails: %v", got)
		}
		delete(mapAt(app.Object, "spec", "syncPolicy"), "retry")
		set(t, app.Object, "gitops/overlays/typo", "spec", "source", "path")
		app.SetFinalizers([]string{"resources-finalizer.argocd.argoproj.io"})
		got := strings.Join(checkApplication(app, exists), "\n")
		for _, want := range []string{"retry.limit", "source.path", "finalizers"} {
			if !strings.Contains(got, want) {
				t.Errorf("checkApplication did not report %q: %s", want, got)
			}
		}
	})
	t.Run("image inventory", func(t *testing.T) {
		used := imagesOf(rendered(t, sampleOverlay(t).dir))
		if got := checkImageInventory(used, used); len(got) != 0 {
			t.Fatalf("equal sets fail: %v", got)
		}
		if got := strings.Join(checkImageInventory(used, used[1:]), "\n"); !strings.Contains(got, "not listed") {
			t.Errorf("an unlisted image was not reported: %q", got)
		}
		if got := strings.Join(checkImageInventory(used, append(used, "docker.io/library/busybox:1.36")), "\n"); !strings.Contains(got, "no manifest uses it") {
			t.Errorf("an unused listed image was not reported: %q", got)
		}
		if got := strings.Join(checkImageInventory(used, append(used, used[0])), "\n"); !strings.Contains(got, "twice") {
			t.Errorf("a duplicate was not reported: %q", got)
		}
	})
	t.Run("OAuthClient redirect URI or secret", func(t *testing.T) {
		sample := sampleOverlay(t)
		domain := appsDomain(t, sample.settings)
		app := rendered(t, sample.dir)
		cluster := rendered(t, sample.cluster)
		if got := checkDomainWiring(app, cluster, domain); len(got) != 0 {
			t.Fatalf("unbroken rendering fails: %v", got)
		}
		oc := mustFind(t, cluster, "OAuthClient", "litemaas-oauth-client")
		oc.Object["redirectURIs"] = []any{"https://litemaas-litemaas.apps.other.example.com/api/auth/callback"}
		oc.Object["secret"] = "0123456789abcdef"
		got := strings.Join(checkDomainWiring(app, cluster, domain), "\n")
		for _, want := range []string{"redirectURIs", "secret is set"} {
			if !strings.Contains(got, want) {
				t.Errorf("checkDomainWiring did not report %q: %s", want, got)
			}
		}
	})
	t.Run("images.yaml of another kind", func(t *testing.T) {
		if _, err := imageSetImages([]byte("kind: ImageSetConfiguration\napiVersion: v1\nmirror: {additionalImages: []}\n")); err == nil {
			t.Error("accepted apiVersion v1")
		}
		if _, err := imageSetImages([]byte("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror: {additionalImage: []}\n")); err == nil {
			t.Error("accepted a misspelt field")
		}
	})
}
