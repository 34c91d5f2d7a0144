package deploy

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
)

// TestPreflightWithoutOpenShiftGitOps: on a bare API server (no OpenShift, no OpenShift GitOps) deploy
// lists every missing prerequisite at once and changes nothing.
func TestPreflightWithoutOpenShiftGitOps(t *testing.T) {
	t.Parallel()
	bare, err := kapitest.Start()
	require.NoError(t, err)
	t.Cleanup(bare.Stop)

	var out bytes.Buffer
	err = Deploy(context.Background(), newCluster(t, bare.Config), Options{Root: repoCopy(t), RepoURL: testRepoURL, Yes: true, Timeout: time.Second, Out: &out})
	t.Logf("deploy on a bare cluster:\n%s\nerror: %v", out.String(), err)
	var pe *report.ProblemsError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 2, pe.Count)
	o := squeeze(out.String())
	for _, want := range []string{
		"logged in as OK kapitest-admin (groups: system:masters, system:authenticated)",
		"namespace FAIL namespace openshift-gitops not found: install the Red Hat OpenShift GitOps operator",
		"Application CRD FAIL the cluster serves no applications.argoproj.io/v1alpha1",
		"apps domain WARN the cluster serves no ingresses.config.openshift.io (not OpenShift?); the overlay's domain cannot be checked",
		"overlay domain WARN gitops/overlays/example is set for apps.cluster.example.com (not compared",
		"may apply WARN the cluster does not serve OAuthClient.oauth.openshift.io, Group.user.openshift.io (not OpenShift?)",
	} {
		assert.Contains(t, o, squeeze(want))
	}
	assert.NotContains(t, o, "Applying")
}

func TestDeployMissingOverlay(t *testing.T) {
	setupCluster(t)
	root := repoCopy(t)
	var out bytes.Buffer
	err := Deploy(context.Background(), newCluster(t, srv.Config), Options{
		Root: root, Overlay: filepath.Join(root, "gitops/overlays/mycluster"), RepoURL: testRepoURL, Yes: true, Out: &out,
	})
	t.Logf("deploy --overlay gitops/overlays/mycluster (missing):\n%s\nerror: %v", out.String(), err)
	var pe *report.ProblemsError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, squeeze(out.String()), "overlay FAIL gitops/overlays/mycluster does not exist: create one for this cluster with --init-overlay cluster")
}

// TestWaitStopsWhenTheSyncFailedForGood: a sync that fails during the wait with no retry left ends the
// wait at once with Argo CD's message; a failure from before the wait does not.
func TestWaitStopsWhenTheSyncFailedForGood(t *testing.T) {
	setupCluster(t)
	ctx := context.Background()
	ns := srv.CreateNamespace(t, "argo")
	app := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
		"metadata": map[string]any{"name": "litemaas", "namespace": ns, "annotations": map[string]any{refreshAnnotation: "normal"}},
		"spec": map[string]any{
			"project":     "default",
			"source":      map[string]any{"repoURL": testRepoURL, "path": "gitops/overlays/example", "targetRevision": "HEAD"},
			"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": "litemaas"},
			"syncPolicy":  map[string]any{"retry": map[string]any{"limit": int64(1)}},
		},
	}}
	srv.Apply(t, app)
	apps := srv.Dynamic().Resource(gvrApplication).Namespace(ns)
	patch := func(p string) {
		_, err := apps.Patch(ctx, "litemaas", types.MergePatchType, []byte(p), metav1.PatchOptions{FieldManager: "argocd-application-controller"})
		require.NoError(t, err)
	}
	// Yesterday's failure, already there when deploy starts waiting.
	patch(`{"status":{"sync":{"status":"OutOfSync"},"health":{"status":"Degraded"},"operationState":{"operation":{"sync":{}},"phase":"Failed","message":"yesterday","startedAt":"2026-05-03T10:00:00Z","retryCount":5}}}`)
	go func() {
		time.Sleep(300 * time.Millisecond)
		patch(`{"metadata":{"annotations":{"` + refreshAnnotation + `":null}},"status":{"health":{"status":"Progressing"},"operationState":{"phase":"Running","message":"waiting for completion of hook batch/Job/litemaas-sync","startedAt":"2026-05-04T10:00:00Z","retryCount":0,
			"syncResult":{"revision":"0123456789abcdef0123","resources":[{"group":"batch","version":"v1","namespace":"litemaas","kind":"Job","name":"litemaas-sync","hookType":"PostSync","hookPhase":"Running"}]}}}}`)
		time.Sleep(300 * time.Millisecond)
		patch(`{"status":{"operationState":{"phase":"Failed","message":"one or more synchronization tasks completed unsuccessfully","startedAt":"2026-05-04T10:00:00Z","retryCount":1,
			"syncResult":{"revision":"0123456789abcdef0123","resources":[{"group":"batch","version":"v1","namespace":"litemaas","kind":"Job","name":"litemaas-sync","hookType":"PostSync","hookPhase":"Failed","message":"Job has reached the specified backoff limit"}]}}}}`)
	}()

	var out syncBuffer
	start := time.Now()
	err := waitForApplication(ctx, newCluster(t, srv.Config), app, &out, 20*time.Second)
	t.Logf("wait:\n%s\nerror: %v", out.String(), err)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 10*time.Second, "no waiting for the timeout")
	assert.ErrorContains(t, err, "the sync of Application "+ns+"/litemaas failed: one or more synchronization tasks completed unsuccessfully; PostSync: Job litemaas-sync Failed: Job has reached the specified backoff limit")
	assert.ErrorContains(t, err, "oc logs -n litemaas job/litemaas-sync")
	assert.Contains(t, out.String(), "operation=Failed (yesterday)", "the old failure is shown, not acted on")
}
