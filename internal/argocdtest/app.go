package argocdtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube/listwatch"
)

// ApplicationGVR is Argo CD's Application.
var ApplicationGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// App is the part of an Application's state the tests read (decoded from its JSON, so that the
// project does not depend on Argo CD's Go module).
type App struct {
	Name        string
	Annotations map[string]string
	Status      AppStatus
}

// AppStatus is an Application's .status.
type AppStatus struct {
	Sync struct {
		Status   string `json:"status"`
		Revision string `json:"revision"`
	} `json:"sync"`
	Health struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"health"`
	OperationState *struct {
		Phase      string     `json:"phase"`
		Message    string     `json:"message"`
		StartedAt  *time.Time `json:"startedAt"`
		FinishedAt *time.Time `json:"finishedAt"`
		RetryCount int        `json:"retryCount"`
		SyncResult *struct {
			Revision  string           `json:"revision"`
			Resources []ResourceResult `json:"resources"`
		} `json:"syncResult"`
	} `json:"operationState"`
	Conditions []struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"conditions"`
	Resources []struct {
		Group           string `json:"group"`
		Kind            string `json:"kind"`
		Namespace       string `json:"namespace"`
		Name            string `json:"name"`
		Status          string `json:"status"`
		Hook            bool   `json:"hook"`
		RequiresPruning bool   `json:"requiresPruning"`
		Health          *struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"health"`
	} `json:"resources"`
	History []struct {
		ID         int        `json:"id"`
		Revision   string     `json:"revision"`
		DeployedAt *time.Time `json:"deployedAt"`
	} `json:"history"`
	ReconciledAt *time.Time `json:"reconciledAt"`
}

// ResourceResult is one entry of a sync operation's result.
type ResourceResult struct {
	Group     string `json:"group"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
	HookType  string `json:"hookType"`
	HookPhase string `json:"hookPhase"`
	SyncPhase string `json:"syncPhase"`
}

// Phase is the operation's phase, "" without an operation.
func (a *App) Phase() string {
	if a.Status.OperationState == nil {
		return ""
	}
	return a.Status.OperationState.Phase
}

// Done reports Succeeded / Synced / Healthy at revision (any revision when empty).
func (a *App) Done(revision string) bool {
	s := a.Status
	return a.Phase() == "Succeeded" && s.Sync.Status == "Synced" && s.Health.Status == "Healthy" &&
		(revision == "" || (s.Sync.Revision == revision && s.OperationState.SyncResult != nil && s.OperationState.SyncResult.Revision == revision)) &&
		a.Annotations["argocd.argoproj.io/refresh"] == ""
}

// String is a one-line summary for test messages.
func (a *App) String() string {
	if a == nil {
		return "<no Application>"
	}
	s := a.Status
	var b strings.Builder
	fmt.Fprintf(&b, "%s: sync=%s rev=%.8s health=%s", a.Name, s.Sync.Status, s.Sync.Revision, s.Health.Status)
	if s.Health.Message != "" {
		fmt.Fprintf(&b, " (%s)", s.Health.Message)
	}
	if op := s.OperationState; op != nil {
		fmt.Fprintf(&b, " operation=%s %q", op.Phase, op.Message)
	}
	for _, c := range s.Conditions {
		fmt.Fprintf(&b, " condition %s: %s;", c.Type, c.Message)
	}
	for _, r := range s.Resources {
		if r.Status != "Synced" || (r.Health != nil && r.Health.Status != "Healthy") {
			h := ""
			if r.Health != nil {
				h = r.Health.Status + " " + r.Health.Message
			}
			fmt.Fprintf(&b, " [%s/%s %s %s]", r.Kind, r.Name, r.Status, strings.TrimSpace(h))
		}
	}
	return b.String()
}

func decodeApp(u *unstructured.Unstructured) (*App, error) {
	a := &App{Name: u.GetName(), Annotations: u.GetAnnotations()}
	raw, ok := u.Object["status"]
	if !ok {
		return a, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &a.Status); err != nil {
		return nil, fmt.Errorf("decoding the status of Application %s: %w", u.GetName(), err)
	}
	return a, nil
}

// App reads Application name.
func (h *Harness) App(ctx context.Context, name string) (*App, error) {
	u, err := h.Kube.Dynamic().Resource(ApplicationGVR).Namespace(h.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return decodeApp(u)
}

// WaitApp watches Application name until cond holds and returns it then. On timeout the error
// carries the last state seen and the end of the controller's log.
func (h *Harness) WaitApp(ctx context.Context, name string, timeout time.Duration, cond func(*App) bool) (*App, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lw := listwatch.Named(h.Kube.Dynamic().Resource(ApplicationGVR).Namespace(h.Namespace), name)
	var last *App
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		if ev.Type == watch.Deleted {
			last = nil
			return false, nil
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, nil
		}
		a, err := decodeApp(u)
		if err != nil {
			return false, err
		}
		last = a
		if perr := h.Alive(); perr != nil {
			return false, perr
		}
		return cond(a), nil
	})
	if err != nil {
		if wait.Interrupted(err) || errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("not within %s: %w", timeout, context.DeadlineExceeded)
		}
		return last, fmt.Errorf("waiting for Application %s: %w; last seen: %s\n%s", name, err, last, h.Logs(15))
	}
	return last, nil
}

// Refresh asks Argo CD to compare Application name with git now, the way its webhook handler does on
// a push event (the argocd.argoproj.io/refresh annotation, which the controller removes when done).
func (h *Harness) Refresh(ctx context.Context, name string) error {
	patch := []byte(`{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"normal"}}}`)
	_, err := h.Kube.Dynamic().Resource(ApplicationGVR).Namespace(h.Namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("refreshing Application %s: %w", name, err)
	}
	return nil
}

// Terminate stops Application name's running operation, as the console's Terminate button does.
func (h *Harness) Terminate(ctx context.Context, name string) error {
	patch := []byte(`{"status":{"operationState":{"phase":"Terminating"}}}`)
	_, err := h.Kube.Dynamic().Resource(ApplicationGVR).Namespace(h.Namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("terminating the operation of Application %s: %w", name, err)
	}
	return nil
}

// ToUnstructured converts a typed object for Apply.
func ToUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// Sync starts a sync of Application name at revision, as the console's Sync button does: the API
// server writes the Application's .operation (hooks run, no prune beyond the sync policy's), and the
// controller runs it.
func (h *Harness) Sync(ctx context.Context, name, revision string) error {
	op := map[string]any{"operation": map[string]any{
		"initiatedBy": map[string]any{"username": "admin"},
		"sync":        map[string]any{"revision": revision, "syncStrategy": map[string]any{"hook": map[string]any{}}},
	}}
	patch, err := json.Marshal(op)
	if err != nil {
		return err
	}
	_, err = h.Kube.Dynamic().Resource(ApplicationGVR).Namespace(h.Namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("starting a sync of Application %s: %w", name, err)
	}
	return nil
}
