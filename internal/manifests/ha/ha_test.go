package ha

// The production profile (gitops/components/ha): the checks every overlay gets, adapted where the
// profile differs on purpose (the role Secrets, the job's wait), plus its own: replicas, budgets that
// select their pods, spreading, no superuser URL, backups configured, the Cluster waited for.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/readiness"
)

// Each check of the profile fails on the object it guards.
func TestHAChecksReject(t *testing.T) {
	set := func(kind, name string, v any, path ...string) func(objs []*unstructured.Unstructured) {
		return func(objs []*unstructured.Unstructured) {
			o := objects.Find(objs, kind, name)
			require.NotNil(t, o, "%s/%s", kind, name)
			require.NoError(t, unstructured.SetNestedField(o.Object, v, path...))
		}
	}
	env := func(kind, name, container, envName string, value any) func(objs []*unstructured.Unstructured) {
		return func(objs []*unstructured.Unstructured) {
			o := objects.Find(objs, kind, name)
			require.NotNil(t, o)
			c := objects.ContainerNamed(objects.MapAt(o.Object, "spec", "template", "spec"), container)
			require.NotNil(t, c)
			for _, e := range objects.Maps(objects.ListAt(c, "env")) {
				if objects.StringAt(e, "name") == envName {
					delete(e, "value")
					delete(e, "valueFrom")
					switch v := value.(type) {
					case string:
						e["value"] = v
					case map[string]any:
						e["valueFrom"] = v
					}
					return
				}
			}
			t.Fatalf("%s/%s has no env %s", kind, name, envName)
		}
	}
	secretRef := func(name, key string) map[string]any {
		return map[string]any{"secretKeyRef": map[string]any{"name": name, "key": key}}
	}
	tests := []struct {
		name    string
		breakIt func([]*unstructured.Unstructured)
		want    string
	}{
		{"two instances", set("Cluster", HACluster, int64(2), "spec", "instances"), "want at least 3"},
		{"no anti-affinity", set("Cluster", HACluster, false, "spec", "affinity", "enablePodAntiAffinity"), "enablePodAntiAffinity"},
		{"anti-affinity type typo", set("Cluster", HACluster, "requierd", "spec", "affinity", "podAntiAffinityType"), "podAntiAffinityType"},
		{"operator PDB off", set("Cluster", HACluster, false, "spec", "enablePDB"), "enablePDB"},
		{"superuser access", set("Cluster", HACluster, true, "spec", "enableSuperuserAccess"), "enableSuperuserAccess"},
		{"role with superuser", func(objs []*unstructured.Unstructured) {
			roles := objects.ListAt(objects.Find(objs, "Cluster", HACluster).Object, "spec", "managed", "roles")
			roles[0].(map[string]any)["superuser"] = true
		}, "has superuser"},
		{"role Secret renamed", func(objs []*unstructured.Unstructured) {
			roles := objects.ListAt(objects.Find(objs, "Cluster", HACluster).Object, "spec", "managed", "roles")
			roles[1].(map[string]any)["passwordSecret"] = map[string]any{"name": "hand-made"}
		}, "managed roles"},
		{"database owner", set("Database", "litemaas-db-litellm", "litemaas_backend", "spec", "owner"), "want litemaas_db owned by"},
		{"reclaim delete", set("Database", "litemaas-db-litellm", "delete", "spec", "databaseReclaimPolicy"), "databaseReclaimPolicy"},
		{"no backups", func(objs []*unstructured.Unstructured) {
			unstructured.RemoveNestedField(objects.Find(objs, "Cluster", HACluster).Object, "spec", "backup")
		}, "no WAL archiving"},
		{"placeholder bucket", set("Cluster", HACluster, "s3://CHANGE-ME-BUCKET/x", "spec", "backup", "barmanObjectStore", "destinationPath"), "destinationPath"},
		{"credentials elsewhere", set("Cluster", HACluster, "other", "spec", "backup", "barmanObjectStore", "s3Credentials", "accessKeyId", "name"), "s3Credentials.accessKeyId"},
		{"five-field schedule", set("ScheduledBackup", "litemaas-db-daily", "0 2 * * *", "spec", "schedule"), "6 fields"},
		{"no scheduled backup", set("ScheduledBackup", "litemaas-db-daily", "other", "spec", "cluster", "name"), "no ScheduledBackup"},
		{"one litellm", set("Deployment", "litellm", int64(1), "spec", "replicas"), "Deployment/litellm: replicas 1"},
		{"frontend Recreate", func(objs []*unstructured.Unstructured) {
			d := objects.Find(objs, "Deployment", "frontend")
			require.NoError(t, unstructured.SetNestedMap(d.Object, map[string]any{"type": "Recreate"}, "spec", "strategy"))
		}, "want RollingUpdate"},
		{"no spreading", func(objs []*unstructured.Unstructured) {
			unstructured.RemoveNestedField(objects.Find(objs, "Deployment", "frontend").Object, "spec", "template", "spec", "topologySpreadConstraints")
		}, "Deployment/frontend: no DoNotSchedule"},
		{"budget selects nothing", set("PodDisruptionBudget", "litellm", map[string]any{"app.kubernetes.io/name": "lite-llm"}, "spec", "selector", "matchLabels"), "Deployment/litellm: 0 PodDisruptionBudgets"},
		{"budget selects every part-of pod", set("PodDisruptionBudget", "frontend", map[string]any{"app.kubernetes.io/part-of": "litemaas"}, "spec", "selector", "matchLabels"), "also selects the pods of"},
		{"budget maxUnavailable 2", set("PodDisruptionBudget", "frontend", int64(2), "spec", "maxUnavailable"), "maxUnavailable 2"},
		{"two backends", set("Deployment", "backend", int64(2), "spec", "replicas"), "Deployment/backend: replicas 2"},
		{"litellm without shared redis", env("Deployment", "litellm", "litellm", "REDIS_HOST", "localhost"), "REDIS_HOST"},
		{"superuser URL in LiteLLM", env("Deployment", "litellm", "litellm", "DATABASE_URL", secretRef("litellm-secret", "DATABASE_URL")), "want a role Secret"},
		{"postgres-secret in the backend", env("Deployment", "backend", "backend", "JWT_SECRET", secretRef("postgres-secret", "POSTGRES_PASSWORD")), "superuser's postgres-secret"},
		{"literal URL", env("Deployment", "backend", "backend", "LOG_LEVEL", "postgresql://x@y/z"), "literal database URL"},
		{"job waits for the StatefulSet", env("Job", "litemaas-sync", "litemaas-sync", "WAIT_FOR", "statefulset/postgres,deployment/litellm"), "does not name cluster.postgresql.cnpg.io/litemaas-db"},
		{"secrets job without roles", env("Job", "litemaas-secrets", "litemaas-secrets", "DATABASE_ROLES", "false"), "DATABASE_ROLES"},
		{"secrets job at the old host", env("Job", "litemaas-secrets", "litemaas-secrets", "POSTGRES_HOST", "postgres"), "POSTGRES_HOST"},
		{"init container waits for postgres", func(objs []*unstructured.Unstructured) {
			d := objects.Find(objs, "Deployment", "backend")
			c := objects.Maps(objects.ListAt(d.Object, "spec", "template", "spec", "initContainers"))[0]
			c["command"] = []any{"/bin/sh", "-c", "until pg_isready -h postgres -p 5432; do sleep 2; done"}
		}, "want the Cluster's read-write Service"},
		{"no NetworkPolicy for the instances", func(objs []*unstructured.Unstructured) {
			set("NetworkPolicy", "litemaas-db", "other", "spec", "podSelector", "matchLabels", "cnpg.io/cluster")(objs)
		}, "default-deny-ingress blocks"},
		{"the operator shut out", func(objs []*unstructured.Unstructured) {
			rules := objects.ListAt(objects.Find(objs, "NetworkPolicy", "litemaas-db").Object, "spec", "ingress")
			require.NoError(t, unstructured.SetNestedSlice(objects.Find(objs, "NetworkPolicy", "litemaas-db").Object, rules[:2], "spec", "ingress"))
		}, "the operator's namespace on port 8000"},
		{"role URLs without the CA", env("Job", "litemaas-secrets", "litemaas-secrets", "POSTGRES_CA_FILE", ""), "no POSTGRES_CA_FILE"},
		{"backend without the CA mounted", func(objs []*unstructured.Unstructured) {
			c := objects.ContainerNamed(objects.MapAt(objects.Find(objs, "Deployment", "backend").Object, "spec", "template", "spec"), "backend")
			delete(c, "volumeMounts")
		}, "Deployment/backend container backend: reads a role URL that verifies PostgreSQL"},
		{"the CA's key mounted", func(objs []*unstructured.Unstructured) {
			for _, v := range objects.Maps(objects.ListAt(objects.Find(objs, "Deployment", "litellm").Object, "spec", "template", "spec", "volumes")) {
				if objects.StringAt(v, "name") == "postgres-ca" {
					delete(objects.MapAt(v, "secret"), "items")
				}
			}
		}, "the Secret also holds the CA's private key"},
		{"a StatefulSet again", func(objs []*unstructured.Unstructured) {
			objs[0].SetKind("StatefulSet")
		}, "no single-instance PostgreSQL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := manifeststest.Rendered(t, "gitops/overlays/example-ha")
			require.Empty(t, CheckHAProfile(objs), "the rendered profile passes before it is broken")
			tt.breakIt(objs)
			got := strings.Join(CheckHAProfile(objs), "\n")
			assert.Contains(t, got, tt.want)
		})
	}
	// The rendered cluster part admits the role Secrets; one without them is rejected.
	cluster := manifeststest.Rendered(t, "gitops/overlays/example-ha/cluster")
	require.Empty(t, CheckHAClusterPart(cluster))
	assert.NotEmpty(t, CheckHAClusterPart(manifeststest.Rendered(t, "gitops/overlays/example/cluster")))
}

// The PostSync job's wait for the Cluster, against the real API server with CloudNativePG's CRD: the
// profile's Role (resourceNames) lets the job's ServiceAccount watch that Cluster, and the waiter ends
// when the operator's status says ready.
func TestHAJobWaitsForCNPGCluster(t *testing.T) {
	manifeststest.NewDryRunner(t, kube) // installs the CRDs for real
	ctx := context.Background()
	ns := kube.CreateNamespace(t, "ha-wait")
	objs := manifeststest.Rendered(t, "gitops/overlays/example-ha")
	var rbac []*unstructured.Unstructured
	for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding"} {
		o := objects.Find(objs, kind, objects.SyncJobName)
		require.NotNil(t, o, kind)
		o.SetNamespace(ns)
		if kind == "RoleBinding" {
			subjects := objects.ListAt(o.Object, "subjects")
			subjects[0].(map[string]any)["namespace"] = ns
		}
		rbac = append(rbac, o)
	}
	kube.Apply(t, rbac...)
	cluster := objects.Find(objs, "Cluster", HACluster)
	require.NotNil(t, cluster)
	cluster.SetNamespace(ns)
	admin := kube.Dynamic().Resource(readiness.CNPGClusters).Namespace(ns)
	created, err := admin.Create(ctx, cluster, metav1.CreateOptions{})
	require.NoError(t, err)

	jobDyn, err := dynamic.NewForConfig(kube.TokenConfig(t, ns, objects.SyncJobName))
	require.NoError(t, err)
	w := &readiness.CNPGWaiter{Client: jobDyn, Namespace: ns, Names: []string{HACluster}}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	require.ErrorIs(t, w.Wait(short), context.DeadlineExceeded)
	assert.Equal(t, []string{readiness.CNPGClusterKind + "/" + HACluster + ": 0/3 instances ready"}, w.Pending())

	// Another Cluster is not the job's business.
	_, err = jobDyn.Resource(readiness.CNPGClusters).Namespace(ns).Get(ctx, "other", metav1.GetOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "forbidden")

	done := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		done <- w.Wait(wctx)
	}()
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, unstructured.SetNestedField(created.Object, int64(3), "status", "readyInstances"))
	require.NoError(t, unstructured.SetNestedField(created.Object, "Cluster in healthy state", "status", "phase"))
	_, err = admin.UpdateStatus(ctx, created, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, <-done)
	assert.Empty(t, w.Pending())
}

// The dry run with CloudNativePG's CRDs can fail: misspelled fields, wrong types and enums of the
// profile's own objects are rejected, as the operator's API would reject them.
func TestHADryRunRejects(t *testing.T) {
	d := manifeststest.NewDryRunner(t, kube)
	objs := manifeststest.Rendered(t, "gitops/overlays/example-ha")
	tests := []struct {
		kind, name string
		breakIt    func(*unstructured.Unstructured)
		want       string
	}{
		{"Cluster", HACluster, func(o *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(o.Object, "s3://b/p", "spec", "backup", "barmanObjectStore", "destinationPth"))
		}, `unknown field "spec.backup.barmanObjectStore.destinationPth"`},
		{"Cluster", HACluster, func(o *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(o.Object, "three", "spec", "instances"))
		}, "spec.instances"},
		// (podAntiAffinityType is a free string in the CRD: only the operator's webhook checks it, so the
		// policy check above does.)
		{"Cluster", HACluster, func(o *unstructured.Unstructured) {
			roles := objects.ListAt(o.Object, "spec", "managed", "roles")
			roles[0].(map[string]any)["ensure"] = "maybe"
		}, "spec.managed.roles[0].ensure"},
		{"ScheduledBackup", "litemaas-db-daily", func(o *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(o.Object, "rsync", "spec", "method"))
		}, "spec.method"},
		{"Database", "litemaas-db-litellm", func(o *unstructured.Unstructured) {
			unstructured.RemoveNestedField(o.Object, "spec", "owner")
		}, "spec.owner"},
		{"PrometheusRule", "litemaas", func(o *unstructured.Unstructured) {
			groups := objects.ListAt(o.Object, "spec", "groups")
			groups[0].(map[string]any)["rules"].([]any)[0].(map[string]any)["for"] = "soon"
		}, "for"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.want, func(t *testing.T) {
			o := objects.Find(objs, tt.kind, tt.name)
			require.NotNil(t, o)
			o = o.DeepCopy()
			require.NoError(t, d.Create(context.Background(), o), "valid as rendered")
			tt.breakIt(o)
			err := d.Create(context.Background(), o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// The drift CronJob (gitops/base/litemaas-sync-drift.yaml) gets the profile's WAIT_FOR and the job's
// role Secret too (replacements in the component), while in the single-instance profile it waits for
// the StatefulSet, which the profile's check rejects.
func TestHADriftCronJobWaitsForTheCluster(t *testing.T) {
	single := manifeststest.Rendered(t, "gitops/overlays/example")
	require.NotNil(t, objects.Find(single, "CronJob", "litemaas-sync-drift"))
	assert.NotEmpty(t, CheckWaitFor(single), "the single-instance CronJob waits for the StatefulSet")

	objs := manifeststest.Rendered(t, "gitops/overlays/example-ha")
	c := objects.Find(objs, "CronJob", "litemaas-sync-drift")
	require.NotNil(t, c)
	env := objects.EnvOf(objects.ContainerNamed(objects.MapAt(c.Object, "spec", "jobTemplate", "spec", "template", "spec"), objects.SyncJobName))
	assert.Equal(t, HASyncJob.WaitFor, objects.StringAt(env["WAIT_FOR"], "value"))
	assert.Equal(t, HASyncJob.DatabaseURL[0], objects.StringAt(env["DATABASE_URL"], "valueFrom", "secretKeyRef", "name"), "the CronJob connects as the job's role")
	assert.Empty(t, CheckWaitFor(objs))
	assert.Empty(t, CheckDatabaseURLs(objs))
}
