package verify

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
)

// checkJobImagesRan reports, for every Argo CD hook Job in ns, the image digest its newest pod ran, as
// the kubelet recorded it (status.containerStatuses[].imageID): what the overlay's tag or digest
// resolved to on the cluster.
func checkJobImagesRan(ctx context.Context, c *cluster.Cluster, ns string) ([]report.Row, error) {
	jobs, err := c.Kube.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the Jobs in %s: %w", ns, err)
	}
	var hooks []batchv1.Job
	for _, j := range jobs.Items {
		if j.Annotations["argocd.argoproj.io/hook"] != "" {
			hooks = append(hooks, j)
		}
	}
	if len(hooks) == 0 {
		return []report.Row{{Component: "job image", Check: "hook Jobs", Status: report.StatusSkip, Detail: "no Argo CD hook Job in " + ns + " (not synced yet?)"}}, nil
	}
	sort.Slice(hooks, func(i, k int) bool { return hooks[i].Name < hooks[k].Name })
	var rows []report.Row
	for _, j := range hooks {
		pods, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + j.Name})
		if err != nil {
			return nil, fmt.Errorf("listing the pods of Job %s/%s: %w", ns, j.Name, err)
		}
		check := "Job " + j.Name
		ran := ranImages(pods.Items)
		if len(ran) == 0 {
			rows = append(rows, report.Row{Component: "job image", Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf("no pod of the Job reports the image it ran (it runs %s)", strings.Join(specImages(j.Spec.Template.Spec), ", "))})
			continue
		}
		rows = append(rows, report.Row{Component: "job image", Check: check, Status: report.StatusOK, Detail: "ran " + strings.Join(ran, ", ")})
	}
	return rows, nil
}

// ranImages are the image IDs (name@sha256:...) the newest pod that started reports.
func ranImages(pods []corev1.Pod) []string {
	sort.Slice(pods, func(i, k int) bool { return pods[k].CreationTimestamp.Before(&pods[i].CreationTimestamp) })
	for _, p := range pods {
		var ids []string
		for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			if s.ImageID != "" && !slices.Contains(ids, s.ImageID) {
				// Older runtimes prefix the repository digest with a scheme.
				ids = append(ids, strings.TrimPrefix(s.ImageID, "docker-pullable://"))
			}
		}
		if len(ids) > 0 {
			return ids
		}
	}
	return nil
}

func specImages(spec corev1.PodSpec) []string {
	var out []string
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if !slices.Contains(out, c.Image) {
			out = append(out, c.Image)
		}
	}
	return out
}
