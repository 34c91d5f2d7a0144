package job

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
	"github.com/litemaas-gitops/litemaas-gitops/internal/reconcile"
)

// publishStatus writes what the run found and did into a small ConfigMap that only the job writes,
// so that `make verify` can check the models without database access from a laptop. It is written
// at every end of a run (the outcome's code, reason and, for a catalog problem, file, model and
// field), and replaces every key: nothing of an earlier run survives.
func publishStatus(ctx context.Context, dc dynamic.Interface, namespace, name string, res reconcile.Result, summary string, outcome *ExitError) error {
	// Still publish after SIGTERM: the status then says the run failed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ms := res.Models
	if ms == nil {
		ms = []reconcile.ModelStatus{} // the catalog was never read: no model is known to be right
	}
	models, err := json.Marshal(ms)
	if err != nil {
		return err
	}
	result := "succeeded"
	if outcome.Code != ExitOK {
		result = "failed"
	}
	data := map[string]string{
		"summary":     summary,
		"result":      result,
		"reason":      outcome.Reason,
		"exitCode":    strconv.Itoa(outcome.Code),
		"finishedAt":  time.Now().UTC().Format(time.RFC3339),
		"passes":      strconv.Itoa(res.Passes),
		"models.json": string(models),
	}
	if outcome.Err != nil {
		data["error"] = outcome.Err.Error()
	}
	for k, v := range map[string]string{"setting": outcome.Setting, "file": outcome.File, "model": outcome.Model, "field": outcome.Field} {
		if v != "" {
			data[k] = v
		}
	}
	cms := kube.ConfigMaps(dc, namespace)
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, &kube.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{
				"app.kubernetes.io/name":       "litemaas-sync",
				"app.kubernetes.io/part-of":    "litemaas",
				"app.kubernetes.io/component":  "model-sync",
				"app.kubernetes.io/managed-by": "litemaas-sync",
			}},
			Data: data,
		}, metav1.CreateOptions{})
	case err == nil:
		cm.Data = data
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("publishing the run's status in ConfigMap %s/%s: %w", namespace, name, err)
	}
	return nil
}
