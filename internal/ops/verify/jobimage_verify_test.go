package verify

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
)

const ranDigest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// createHookJob creates an Argo CD hook Job and, when imageID is set, a pod of it whose status reports
// the image the kubelet pulled.
func createHookJob(t *testing.T, ns, name, imageID string) {
	t.Helper()
	ctx := context.Background()
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"argocd.argoproj.io/hook": "PostSync"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: name, Image: "ghcr.io/my-org/litemaas-sync:0.1.0"}},
		}}},
	}
	_, err := srv.Clientset().BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	require.NoError(t, err)
	if imageID == "" {
		return
	}
	pods := srv.Clientset().CoreV1().Pods(ns)
	p, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-x7k2p", Labels: map[string]string{batchv1.JobNameLabel: name}},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: name, Image: "ghcr.io/my-org/litemaas-sync:0.1.0"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	p.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
		Name: name, Image: "ghcr.io/my-org/litemaas-sync:0.1.0", ImageID: imageID,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}},
	}}}
	_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func TestVerifyReportsTheImageTheJobsRan(t *testing.T) {
	setupCluster(t)
	admin := newCluster(t, srv.Config)
	ctx := context.Background()

	empty := srv.CreateNamespace(t, "nojobs")
	rows, err := checkJobImagesRan(ctx, admin, empty)
	require.NoError(t, err)
	assert.Equal(t, []report.Row{{Component: "job image", Check: "hook Jobs", Status: report.StatusSkip, Detail: "no Argo CD hook Job in " + empty + " (not synced yet?)"}}, rows)

	ns := srv.CreateNamespace(t, "jobimage")
	populateNamespace(t, ns, testDomain)
	writeJobStatus(t, ns, "succeeded", goodModels)
	createHookJob(t, ns, "litemaas-sync", "ghcr.io/my-org/litemaas-sync@"+ranDigest)
	createHookJob(t, ns, "litemaas-secrets", "docker-pullable://ghcr.io/my-org/litemaas-sync@"+ranDigest)
	rows, err = checkJobImagesRan(ctx, admin, ns)
	require.NoError(t, err)
	assert.Equal(t, []report.Row{
		{Component: "job image", Check: "Job litemaas-secrets", Status: report.StatusOK, Detail: "ran ghcr.io/my-org/litemaas-sync@" + ranDigest},
		{Component: "job image", Check: "Job litemaas-sync", Status: report.StatusOK, Detail: "ran ghcr.io/my-org/litemaas-sync@" + ranDigest},
	}, rows)

	var out bytes.Buffer
	require.NoError(t, Verify(ctx, admin, Options{Namespace: ns, Catalog: "testdata/models.yaml", SkipRoutes: true, Out: &out}))
	t.Logf("verify:\n%s", out.String())
	assert.Contains(t, squeeze(out.String()), "job image Job litemaas-sync OK ran ghcr.io/my-org/litemaas-sync@"+ranDigest)

	// A Job whose pod is gone (or never started) says what it would run.
	other := srv.CreateNamespace(t, "nopod")
	createHookJob(t, other, "litemaas-sync", "")
	rows, err = checkJobImagesRan(ctx, admin, other)
	require.NoError(t, err)
	assert.Equal(t, []report.Row{{Component: "job image", Check: "Job litemaas-sync", Status: report.StatusWarn, Detail: "no pod of the Job reports the image it ran (it runs ghcr.io/my-org/litemaas-sync:0.1.0)"}}, rows)
}
