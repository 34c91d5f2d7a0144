package argocd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/litemaas-gitops/litemaas-gitops/internal/argocdtest"
)

// event is one change of an object's state as a watch saw it.
type event struct {
	T     time.Time
	Kind  string
	NS    string
	Name  string
	State string
}

func (e event) String() string {
	return fmt.Sprintf("%s %s/%s %s", e.T.Format("15:04:05.000"), e.Kind, e.Name, e.State)
}

// recorder keeps, from watches, the moments objects appear, change state (a Job completes, a
// Deployment becomes available, a Route is admitted, an Application's sync moves on) and go away.
type recorder struct {
	mu     sync.Mutex
	events []event
	last   map[string]string
}

var watched = []struct {
	gvr   schema.GroupVersionResource
	kind  string
	state func(*unstructured.Unstructured) string
}{
	{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "Namespace", phaseOf},
	{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, "Job", jobState},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "Pod", phaseOf},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "Deployment", rolloutState},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, "StatefulSet", rolloutState},
	{argocdtest.RouteGVR, "Route", routeState},
	{schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, "Secret", exists},
	{schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "ConfigMap", exists},
	{schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, "ServiceAccount", exists},
	{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, "Role", exists},
	{argocdtest.ApplicationGVR, "Application", appState},
}

func startRecorder(ctx context.Context, dyn dynamic.Interface) (*recorder, error) {
	r := &recorder{last: map[string]string{}}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	var synced []cache.InformerSynced
	for _, w := range watched {
		inf := factory.ForResource(w.gvr).Informer()
		kind, state := w.kind, w.state
		note := func(obj any, deleted bool) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return
			}
			s := "deleted"
			if !deleted {
				s = state(u)
			}
			r.add(kind, u.GetNamespace(), u.GetName(), s)
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { note(obj, false) },
			UpdateFunc: func(_, obj any) { note(obj, false) },
			DeleteFunc: func(obj any) { note(obj, true) },
		}); err != nil {
			return nil, err
		}
		synced = append(synced, inf.HasSynced)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil, fmt.Errorf("the recorder's watches did not sync")
	}
	return r, nil
}

func (r *recorder) add(kind, ns, name, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := kind + "/" + ns + "/" + name
	if r.last[key] == state {
		return
	}
	r.last[key] = state
	r.events = append(r.events, event{T: time.Now(), Kind: kind, NS: ns, Name: name, State: state})
}

// since returns the events from t on, oldest first.
func (r *recorder) since(t time.Time) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.events {
		if !e.T.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

// first is the first event from t on for kind/name (name "" matches any; a trailing "*" is a prefix)
// whose state starts with state; ok is false when there is none.
func first(events []event, kind, name, state string) (event, bool) {
	for _, e := range events {
		if e.Kind == kind && nameMatches(name, e.Name) && strings.HasPrefix(e.State, state) {
			return e, true
		}
	}
	return event{}, false
}

// lastOf is like first, but the last match.
func lastOf(events []event, kind, name, state string) (event, bool) {
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if e.Kind == kind && nameMatches(name, e.Name) && strings.HasPrefix(e.State, state) {
			return e, true
		}
	}
	return event{}, false
}

func nameMatches(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return pattern == "" || pattern == name
}

// timeline renders events relative to t0, skipping the noise (Pods, Secrets and ConfigMaps other
// than the ones named in keep).
func timeline(events []event, t0 time.Time, namespaces ...string) string {
	var b strings.Builder
	for _, e := range events {
		if e.NS != "" && !slices.Contains(namespaces, e.NS) {
			continue
		}
		fmt.Fprintf(&b, "  +%6.2fs  %-14s %-40s %s\n", e.T.Sub(t0).Seconds(), e.Kind, e.Name, e.State)
	}
	return b.String()
}

func exists(*unstructured.Unstructured) string { return "created" }

func phaseOf(u *unstructured.Unstructured) string {
	if u.GetDeletionTimestamp() != nil {
		return "terminating"
	}
	p, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	if p == "" {
		return "created"
	}
	return p
}

func conditionTrue(u *unstructured.Unstructured, typ string) (string, bool) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ && m["status"] == "True" {
			msg, _ := m["message"].(string)
			return msg, true
		}
	}
	return "", false
}

func jobState(u *unstructured.Unstructured) string {
	if _, ok := conditionTrue(u, "Complete"); ok {
		return "Complete"
	}
	if msg, ok := conditionTrue(u, "Failed"); ok {
		return "Failed: " + msg
	}
	if a, _, _ := unstructured.NestedInt64(u.Object, "status", "active"); a > 0 {
		return "active"
	}
	return "created"
}

func rolloutState(u *unstructured.Unstructured) string {
	gen := u.GetGeneration()
	obs, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	want, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	if !found {
		want = 1
	}
	ready, _, _ := unstructured.NestedInt64(u.Object, "status", "readyReplicas")
	updated, _, _ := unstructured.NestedInt64(u.Object, "status", "updatedReplicas")
	if obs >= gen && ready == want && updated == want {
		return fmt.Sprintf("ready %d/%d", ready, want)
	}
	return fmt.Sprintf("progressing %d/%d", ready, want)
}

func routeState(u *unstructured.Unstructured) string {
	ingress, _, _ := unstructured.NestedSlice(u.Object, "status", "ingress")
	for _, in := range ingress {
		m, _ := in.(map[string]any)
		conds, _ := m["conditions"].([]any)
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			if cm["type"] == "Admitted" && cm["status"] == "True" {
				return "admitted"
			}
		}
	}
	return "created"
}

func appState(u *unstructured.Unstructured) string {
	sync, _, _ := unstructured.NestedString(u.Object, "status", "sync", "status")
	health, _, _ := unstructured.NestedString(u.Object, "status", "health", "status")
	phase, _, _ := unstructured.NestedString(u.Object, "status", "operationState", "phase")
	if phase == "" {
		phase = "-"
	}
	return fmt.Sprintf("%s/%s/%s", phase, sync, health)
}
