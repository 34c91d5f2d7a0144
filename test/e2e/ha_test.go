package e2e

// The production profile (gitops/overlays/example-ha) end to end, as far as it runs without a
// CloudNativePG operator: the PreSync job generates the role Secrets, the local stack creates the roles
// exactly as the rendered Cluster declares them (login, inRoles, the Secrets' passwords) and gives
// litemaas_db to the bootstrap owner, and the PostSync job, run as rendered, waits for the Cluster's
// status and then reconciles as its own role litemaas_job.

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/litemaas-gitops/litemaas-gitops/internal/devstack"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
)

// applyHAAdmissionPolicy applies the profile's cluster part first and waits until its admission policy
// (cluster-wide, possibly replacing the single-instance one an earlier test applied) is in effect: the
// API server loads policies asynchronously.
func applyHAAdmissionPolicy(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	root, err := manifests.RepoRoot()
	require.NoError(t, err)
	cluster, err := manifests.Render(filepath.Join(root, "gitops", "overlays", "example-ha", "cluster"))
	require.NoError(t, err)
	var policy []*unstructured.Unstructured
	for _, o := range cluster {
		if strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") && o.GetName() == "litemaas-secrets-job" {
			policy = append(policy, o)
		}
	}
	require.Len(t, policy, 2)
	kube.Apply(t, policy...)
	ns := kube.CreateNamespace(t, "ha-vap")
	cs, err := kubernetes.NewForConfig(kube.Config)
	require.NoError(t, err)
	_, err = cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "litemaas-secrets"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "probe"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "litemaas-secrets", Namespace: ns}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	as, err := kubernetes.NewForConfig(kube.TokenConfig(t, ns, "litemaas-secrets"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := as.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "litemaas-db-backup"}, Type: corev1.SecretTypeBasicAuth,
			Data: map[string][]byte{"username": []byte("probe"), "password": []byte("probe")}}, metav1.CreateOptions{})
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "the profile's admission policy never admitted a role Secret")
}

func TestHAProfileJobWaitsForTheClusterAndRunsAsItsRole(t *testing.T) {
	applyHAAdmissionPolicy(t)
	// LiteLLM as the profile runs it: several replicas sharing one database (the double's multi-replica
	// mode, three here), the job talking to the Service, i.e. to one of them.
	s := newStack(t, devstack.Options{Overlay: "gitops/overlays/example-ha", SecretsJob: binary,
		LiteLLMReplicas: 3, LiteLLM: litellmtest.Options{PollInterval: 200 * time.Millisecond}})
	t.Logf("PreSync: %s", s.SecretsSummary)
	ctx := context.Background()

	env, err := s.JobEnv(ctx)
	require.NoError(t, err)
	var dbURL, waitFor string
	for _, kv := range env {
		name, v, _ := strings.Cut(kv, "=")
		switch name {
		case "DATABASE_URL":
			dbURL = v
		case "WAIT_FOR":
			waitFor = v
		}
	}
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	assert.Equal(t, "litemaas_job", u.User.Username(), "the job connects as its own role")
	assert.Equal(t, "verify-full", u.Query().Get("sslmode"), "the job verifies CloudNativePG's certificate")
	require.FileExists(t, u.Query().Get("sslrootcert"), "the Cluster's CA, mounted from Secret litemaas-db-ca")
	assert.Contains(t, waitFor, "cluster.postgresql.cnpg.io/litemaas-db")

	cmd, err := s.Command(ctx, binary)
	require.NoError(t, err)
	out := start(t, cmd)
	done := make(chan result, 1)
	go func() { done <- waitResult(cmd, out) }()
	// The job waits for the Cluster and the Deployments: 1.5 s later it has neither ended nor written
	// anything. (cmd.ProcessState stays nil until Wait returns, so it cannot tell.)
	select {
	case r := <-done:
		t.Fatalf("the job ended before the Cluster and the Deployments were ready (exit %d):\n%s", r.code, r.stderr)
	case <-time.After(1500 * time.Millisecond):
	}
	require.Zero(t, s.Proxy.Writes(), "nothing written to LiteLLM before the Cluster is ready")
	require.NoError(t, s.MarkReady(ctx))
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "cluster.postgresql.cnpg.io", "the job logged its wait for the Cluster")
	assert.Contains(t, r.stdout, "database created=5")
	assert.Contains(t, r.stdout, "oauth_id made nullable", "litemaas_job may ALTER the backend's table through its membership in litemaas_backend")
	all, plain := s.PostgresTLS.Sessions()
	assert.Positive(t, all, "the job's sessions went through the Cluster's TLS server")
	assert.Zero(t, plain, "no session without TLS")
	assertConverged(t, s, runbookModels)
	assertNoSecrets(t, s, r)
	// Every replica serves every model after its poll, and each answers a chat through each replica.
	for i := 1; i < len(s.Replicas); i++ {
		s.Replicas[i].Proxy().Poll()
	}
	require.Len(t, s.Replicas, 3)
	for i := range s.Replicas {
		chatTable(t, s, i, runbookModels)
	}
	for _, id := range runbookModels {
		assert.Equal(t, 3, s.VLLM.Calls(id), "%s answered once per replica", id)
	}

	// The drift CronJob, as rendered in this profile (the Cluster in WAIT_FOR, the job's role): a row
	// edited by hand is repaired, as litemaas_job.
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `UPDATE models SET name = 'edited by hand' WHERE id = 'granite-8b-agent'`)
	require.NoError(t, err)
	cron, err := s.CronJobCommand(ctx, devstack.DriftCronJobName, binary)
	require.NoError(t, err)
	rc := wait(t, cron, start(t, cron))
	require.Equal(t, 0, rc.code, rc.stderr)
	assert.Contains(t, rc.stdout, "database created=0 updated=1 unchanged=4")
	var name string
	require.NoError(t, conn.QueryRow(ctx, `SELECT name FROM models WHERE id = 'granite-8b-agent'`).Scan(&name))
	assert.Equal(t, "Granite-8B Agent", name)

	// Without the membership the rendered Cluster grants, the role cannot use the backend's tables: the
	// privilege comes from inRoles, nothing else. The job says so (oauth_id is nullable by now, so the
	// first refusal is the read of the models table).
	admin, err := pgx.Connect(ctx, s.PG.URL("postgres"))
	require.NoError(t, err)
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "REVOKE litemaas_backend FROM litemaas_job")
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "GRANT litemaas_backend TO litemaas_job") })
	s.Proxy.Reset()
	r = runJob(t, ctx, s)
	assert.NotEqual(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout+r.stderr, "permission denied for table models")
	assert.Equal(t, 0, s.Proxy.Writes(), "nothing written to LiteLLM by a job that cannot use the database")
}
