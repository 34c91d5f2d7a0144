package devstack

// The production profile (gitops/components/ha) locally: no CloudNativePG operator runs here, so the
// stack does the two things of the operator that the job depends on. It creates the Cluster's managed
// roles in the local PostgreSQL exactly as the rendered Cluster declares them (login, inRoles, the
// password of each role's Secret) and makes the bootstrap owner own the backend's database, and
// MarkReady writes the status the operator writes for a healthy Cluster. Everything else of the
// operator (instances, failover, backups) is not simulated.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

var cnpgClusters = schema.GroupVersionResource{Group: "postgresql.cnpg.io", Version: "v1", Resource: "clusters"}

// cnpgCluster returns the rendered CloudNativePG Cluster, or nil for the single-instance profile.
func (s *Stack) cnpgCluster() *unstructured.Unstructured {
	for _, o := range s.Objects {
		if o.GetKind() == "Cluster" && o.GroupVersionKind().Group == cnpgClusters.Group {
			return o
		}
	}
	return nil
}

// createCNPGRoles creates (or updates) every managed role of the Cluster and returns the bootstrap
// database's owner. Roles are cluster-wide in PostgreSQL, so stacks sharing a server share them; each
// run sets the password of its own Secrets.
func (s *Stack) createCNPGRoles(ctx context.Context, c *unstructured.Unstructured) (string, error) {
	cs, err := kubernetes.NewForConfig(s.Kube.Config)
	if err != nil {
		return "", err
	}
	roles, _, _ := unstructured.NestedSlice(c.Object, "spec", "managed", "roles")
	for _, r := range roles {
		m, _ := r.(map[string]any)
		name, _ := m["name"].(string)
		secret, _, _ := unstructured.NestedString(m, "passwordSecret", "name")
		sec, err := cs.CoreV1().Secrets(s.Namespace).Get(ctx, secret, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("role %s: its Secret %s: %w (the secrets job generates it)", name, secret, err)
		}
		if got := string(sec.Data["username"]); got != name {
			return "", fmt.Errorf("role %s: Secret %s has username %q", name, secret, got)
		}
		role := pgx.Identifier{name}.Sanitize()
		opts := "NOLOGIN"
		if login, _ := m["login"].(bool); login {
			opts = "LOGIN"
		}
		stmts := []string{
			fmt.Sprintf(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %s) THEN CREATE ROLE %s; END IF; END $$`, quoteLiteral(name), role),
			fmt.Sprintf("ALTER ROLE %s %s NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s", role, opts, quoteLiteral(string(sec.Data["password"]))),
		}
		inRoles, _, _ := unstructured.NestedStringSlice(m, "inRoles")
		for _, parent := range inRoles {
			stmts = append(stmts, fmt.Sprintf("GRANT %s TO %s", pgx.Identifier{parent}.Sanitize(), role))
		}
		for _, st := range stmts {
			if err := s.adminExec(ctx, st); err != nil {
				return "", fmt.Errorf("role %s: %w", name, err)
			}
		}
	}
	owner, _, _ := unstructured.NestedString(c.Object, "spec", "bootstrap", "initdb", "owner")
	if owner == "" {
		return "", fmt.Errorf("Cluster %s: no bootstrap.initdb.owner", c.GetName())
	}
	return owner, nil
}

// markCNPGClusterReady writes the status of a healthy Cluster: every instance ready, the Ready condition.
func (s *Stack) markCNPGClusterReady(ctx context.Context, o *unstructured.Unstructured) error {
	dyn, err := dynamic.NewForConfig(s.Kube.Config)
	if err != nil {
		return err
	}
	ri := dyn.Resource(cnpgClusters).Namespace(s.Namespace)
	c, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
	if err != nil {
		return err
	}
	n, _, _ := unstructured.NestedInt64(c.Object, "spec", "instances")
	status := map[string]any{
		"instances": n, "readyInstances": n, "phase": "Cluster in healthy state",
		"conditions": []any{map[string]any{
			"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "Cluster is Ready",
			"lastTransitionTime": metav1.Now().UTC().Format("2006-01-02T15:04:05Z"),
		}},
	}
	if err := unstructured.SetNestedMap(c.Object, status, "status"); err != nil {
		return err
	}
	if _, err := ri.UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("marking cluster/%s ready: %w", o.GetName(), err)
	}
	return nil
}
