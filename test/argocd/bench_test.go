package argocd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/litemaas-gitops/litemaas-gitops/internal/argocdtest"
)

// editTarget is the goal for a one-model edit, from the commit to the PostSync hook's end.
const editTarget = 30 * time.Second

// BenchmarkEditToPostSync times what a user waits for after pushing a one-model catalog edit: the
// refresh a push webhook triggers, the sync (PreSync hook, the new ConfigMap, pruning the old one)
// and the PostSync hook registering the edit, until the Application is Succeeded/Synced/Healthy at
// the commit. It fails when an edit takes editTarget or more, or when a sync starts any pod but one
// per hook.
func BenchmarkEditToPostSync(b *testing.B) {
	f := setup(b)
	ensureSynced(b, f)
	var worst, total time.Duration
	pods := 0
	b.ResetTimer()
	for i := range b.N {
		runs := len(hookRuns(f.h.Kubelet.Runs()))
		since := time.Now()
		// gpt-oss-20b's context goes back and forth between 32k and 64k (the testing package calls
		// the benchmark more than once, so the file's state decides the direction).
		a := "    contextLength: 32768\n    supportsStreaming: true\n    availability: available\n    apiBase: http://gpt-oss"
		z := strings.Replace(a, "32768", "65536", 1)
		_, took := commitAndSync(b, f, fmt.Sprintf("catalog: gpt-oss-20b context, edit %d", i+1), func(work string) error {
			if err := argocdtest.EditFile(work, modelsFile, a, z); err == nil {
				return nil
			}
			return argocdtest.EditFile(work, modelsFile, z, a)
		})
		total += took
		worst = max(worst, took)
		started := newPods(f.rec, since)
		if hooks := len(hookRuns(f.h.Kubelet.Runs())) - runs; hooks != 2 || started != 2 {
			b.Fatalf("edit %d: %d pods started, %d of them hooks; want exactly one per hook (2)", i+1, started, hooks)
		}
		pods += started
	}
	b.StopTimer()
	b.ReportMetric(total.Seconds()/float64(b.N), "s/edit")
	b.ReportMetric(worst.Seconds(), "s/edit-max")
	b.ReportMetric(float64(pods)/float64(b.N), "pods/sync")
	if worst >= editTarget {
		b.Fatalf("a one-model edit took %.1fs from commit to PostSync done; the target is under %s", worst.Seconds(), editTarget)
	}
}

// newPods counts the pods of namespace litemaas that first appeared at or after since (older pods'
// later changes, such as the previous hook pods being deleted, do not count).
func newPods(r *recorder, since time.Time) int {
	old := map[string]bool{}
	seen := map[string]bool{}
	for _, e := range r.since(time.Time{}) {
		// The drift CronJob runs on its own schedule (the cronjob controller is on): its pods are not
		// the sync's.
		if e.Kind != "Pod" || e.NS != namespace || strings.HasPrefix(e.Name, "litemaas-sync-drift-") {
			continue
		}
		if e.T.Before(since) {
			old[e.Name] = true
		} else if !old[e.Name] {
			seen[e.Name] = true
		}
	}
	return len(seen)
}
