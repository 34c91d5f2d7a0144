package argocd

import (
	"fmt"
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
		runs := len(f.h.Kubelet.Runs())
		since := time.Now()
		from, to := "    contextLength: 131072\n    supportsStreaming: true\n    availability: available\n    apiBase: http://gpt-oss",
			"    contextLength: 65536\n    supportsStreaming: true\n    availability: available\n    apiBase: http://gpt-oss"
		if i%2 == 1 {
			from, to = to, from
		}
		_, took := commitAndSync(b, f, fmt.Sprintf("catalog: gpt-oss-20b context, edit %d", i+1), func(work string) error {
			return argocdtest.EditFile(work, modelsFile, from, to)
		})
		total += took
		worst = max(worst, took)
		started := newPods(f.rec.since(since))
		if hooks := len(f.h.Kubelet.Runs()) - runs; hooks != 2 || started != 2 {
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

// newPods counts the pods of namespace litemaas first seen in events.
func newPods(events []event) int {
	seen := map[string]bool{}
	for _, e := range events {
		if e.Kind == "Pod" && e.NS == namespace && e.State != "deleted" {
			seen[e.Name] = true
		}
	}
	return len(seen)
}
