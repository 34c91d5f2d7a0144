package readiness

// Waiting for a CloudNativePG Cluster (gitops/components/ha): PostgreSQL there is no StatefulSet but a
// postgresql.cnpg.io/v1 Cluster whose operator reports readiness in its status. WAIT_FOR names it as
// cluster.postgresql.cnpg.io/<name>, next to the workloads.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
)

// CNPGClusterKind is the WAIT_FOR kind of a CloudNativePG Cluster (resource.group, as kubectl spells it).
const CNPGClusterKind = "cluster.postgresql.cnpg.io"

// CNPGClusters is the resource of CloudNativePG's Cluster.
var CNPGClusters = schema.GroupVersionResource{Group: "postgresql.cnpg.io", Version: "v1", Resource: "clusters"}

var cnpgAliases = map[string]bool{
	CNPGClusterKind: true, "clusters.postgresql.cnpg.io": true,
}

// SplitCNPGClusters takes the CloudNativePG Cluster entries out of a WAIT_FOR list and returns their
// names (in order, without duplicates) and the remaining entries, unchanged, for rollout.ParseWorkloads.
func SplitCNPGClusters(waitFor string) (clusters []string, rest string, err error) {
	var others []string
	for _, entry := range strings.Split(waitFor, ",") {
		kind, name, ok := strings.Cut(strings.TrimSpace(entry), "/")
		if !ok || !cnpgAliases[strings.ToLower(strings.TrimSpace(kind))] {
			others = append(others, entry)
			continue
		}
		name = strings.TrimSpace(name)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return nil, "", fmt.Errorf("workload %q: invalid Cluster name %q: %s", strings.TrimSpace(entry), name, strings.Join(errs, "; "))
		}
		if !slices.Contains(clusters, name) {
			clusters = append(clusters, name)
		}
	}
	return clusters, strings.Join(others, ","), nil
}

// CNPGClusterReady reports whether a Cluster serves: its Ready condition is True, or every instance
// it asks for is ready (status.readyInstances == spec.instances, default 1). msg is a one-line state
// for the logs and the timeout report.
func CNPGClusterReady(obj *unstructured.Unstructured) (ready bool, msg string) {
	instances, found, _ := unstructured.NestedInt64(obj.Object, "spec", "instances")
	if !found {
		instances = 1
	}
	readyInstances, _, _ := unstructured.NestedInt64(obj.Object, "status", "readyInstances")
	phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
	msg = fmt.Sprintf("%d/%d instances ready", readyInstances, instances)
	if phase != "" {
		msg += ", phase " + phase
	}
	conditions, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conditions {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Ready" && m["status"] == "True" {
			return true, msg + ", condition Ready"
		}
	}
	return instances > 0 && readyInstances == instances, msg
}

// CNPGWaiter waits for CloudNativePG Clusters in Namespace. It watches each Cluster by name (a Role with
// get/list/watch and resourceNames suffices) and reacts to its status changes; nothing polls.
type CNPGWaiter struct {
	Client    dynamic.Interface
	Namespace string
	Names     []string
	Logger    *slog.Logger

	mu    sync.Mutex
	state map[string]string // name -> last state; "" when ready
}

// Wait blocks until every Cluster is ready or ctx is done.
func (w *CNPGWaiter) Wait(ctx context.Context) error {
	if w.Client == nil {
		return errors.New("readiness.CNPGWaiter: Client is nil")
	}
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w.mu.Lock()
	w.state = map[string]string{}
	for _, n := range w.Names {
		w.state[n] = "not observed yet"
	}
	w.mu.Unlock()

	errs := make(chan error, len(w.Names))
	for _, name := range w.Names {
		go func() { errs <- w.waitOne(ctx, name, log) }()
	}
	var first error
	for range w.Names {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (w *CNPGWaiter) waitOne(ctx context.Context, name string, log *slog.Logger) error {
	observe := func(u *unstructured.Unstructured) bool {
		state, ready := "not found", false
		if u != nil {
			ready, state = CNPGClusterReady(u)
		}
		w.mu.Lock()
		prev := w.state[name]
		if ready {
			w.state[name] = ""
		} else {
			w.state[name] = state
		}
		w.mu.Unlock()
		if prev != state || ready {
			log.Info("cnpg cluster", "namespace", w.Namespace, "cluster", name, "state", state, "ready", ready)
		}
		return ready
	}
	err := kube.WatchNamed(ctx, w.Client.Resource(CNPGClusters).Namespace(w.Namespace), name, observe, nil)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("watching %s/%s in namespace %s (the job's Role needs get/list/watch on it): %w", CNPGClusterKind, name, w.Namespace, err)
	}
	return nil
}

// Pending returns "cluster.postgresql.cnpg.io/<name>: <state>" for every Cluster not ready yet.
func (w *CNPGWaiter) Pending() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, n := range w.Names {
		st, seen := w.state[n]
		if !seen {
			st = "not observed yet"
		}
		if st != "" {
			out = append(out, CNPGClusterKind+"/"+n+": "+st)
		}
	}
	return out
}

// AllWorkloads waits for several Workloads at once (the rollouts and the Clusters) and reports what
// each still waits for.
type AllWorkloads []Workloads

// Wait returns nil when every member is ready, else the first error.
func (a AllWorkloads) Wait(ctx context.Context) error {
	errs := make(chan error, len(a))
	for _, w := range a {
		go func() { errs <- w.Wait(ctx) }()
	}
	var first error
	for range a {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Pending concatenates the members' Pending lines.
func (a AllWorkloads) Pending() []string {
	var out []string
	for _, w := range a {
		out = append(out, w.Pending()...)
	}
	return out
}
