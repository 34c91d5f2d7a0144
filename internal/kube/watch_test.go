package kube_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
)

var configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// seen records what WatchNamed handed to observe: "absent", or the ConfigMap's data.ready.
type seen struct {
	mu  sync.Mutex
	got []string
}

func (s *seen) observe(u *unstructured.Unstructured) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u == nil {
		s.got = append(s.got, "absent")
		return false
	}
	ready, _, _ := unstructured.NestedString(u.Object, "data", "ready")
	s.got = append(s.got, "ready="+ready)
	return ready == "yes"
}

func (s *seen) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func (s *seen) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) == 0 {
		return ""
	}
	return s.got[len(s.got)-1]
}

func configMap(ns, name, ready string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"data":     map[string]any{"ready": ready},
	}}
}

// TestWatchNamed follows one object on a real API server: absent, created, deleted, created again
// and changed until observe is satisfied; other objects of the kind never reach observe.
func TestWatchNamed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := srv.CreateNamespace(t, "watch")
	ri := srv.Dynamic().Resource(configMapsGVR).Namespace(ns)
	var s seen
	done := make(chan error, 1)
	go func() { done <- kube.WatchNamed(ctx, ri, "w", s.observe, nil) }()

	step := func(want string, do func() error) {
		t.Helper()
		require.NoError(t, do())
		require.Eventually(t, func() bool { return s.last() == want }, 20*time.Second, 10*time.Millisecond, "want %s", want)
	}
	require.Eventually(t, func() bool { return s.last() == "absent" }, 20*time.Second, 10*time.Millisecond)
	step("ready=no", func() error { _, err := ri.Create(ctx, configMap(ns, "w", "no"), metav1.CreateOptions{}); return err })
	_, err := ri.Create(ctx, configMap(ns, "other", "yes"), metav1.CreateOptions{})
	require.NoError(t, err)
	step("absent", func() error { return ri.Delete(ctx, "w", metav1.DeleteOptions{}) })
	step("ready=later", func() error {
		_, err := ri.Create(ctx, configMap(ns, "w", "later"), metav1.CreateOptions{})
		return err
	})
	select {
	case err := <-done:
		t.Fatalf("WatchNamed returned %v before observe was satisfied", err)
	default:
	}
	_, err = ri.Update(ctx, configMap(ns, "w", "yes"), metav1.UpdateOptions{})
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("WatchNamed did not return once observe was satisfied; saw %v", s.snapshot())
	}
	// The other ConfigMap, ready from the start, never reached observe.
	assert.Equal(t, []string{"absent", "ready=no", "absent", "ready=later", "ready=yes"}, s.snapshot())
}

// TestWatchNamedForbidden: a refused list goes to onErr and is retried until ctx ends; the outcome is
// ctx's error.
func TestWatchNamedForbidden(t *testing.T) {
	ns := srv.CreateNamespace(t, "watchdenied")
	dc, err := dynamic.NewForConfig(srv.TokenConfig(t, ns, "nobody"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var mu sync.Mutex
	var errs []error
	err = kube.WatchNamed(ctx, dc.Resource(configMapsGVR).Namespace(ns), "w", func(*unstructured.Unstructured) bool {
		t.Error("observe called without a successful list")
		return false
	}, func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(errs), 2, "the list is retried")
	for _, e := range errs {
		assert.True(t, apierrors.IsForbidden(e), "%v", e)
	}
}

// TestWatchNamedRecovers: a watch that closes at once with nothing, or with an expired
// resourceVersion, makes WatchNamed list again rather than spin or give up.
func TestWatchNamedRecovers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		watcher func() watch.Interface
		wantErr string
	}{
		{name: "closed at once", watcher: func() watch.Interface { return watch.NewEmptyWatch() }, wantErr: "very short watch"},
		{name: "resourceVersion expired", watcher: func() watch.Interface {
			fw := watch.NewFake()
			go fw.Error(&apierrors.NewResourceExpired("too old resource version").ErrStatus)
			return fw
		}, wantErr: "too old resource version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{configMapsGVR: "ConfigMapList"}, configMap("ns", "w", "no"))
			var mu sync.Mutex
			lists := 0
			dc.PrependReactor("list", "configmaps", func(clienttesting.Action) (bool, runtime.Object, error) {
				mu.Lock()
				defer mu.Unlock()
				lists++
				return false, nil, nil
			})
			dc.PrependWatchReactor("configmaps", func(clienttesting.Action) (bool, watch.Interface, error) {
				return true, tc.watcher(), nil
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var s seen
			var reported []string
			err := kube.WatchNamed(ctx, dc.Resource(configMapsGVR).Namespace("ns"), "w", func(u *unstructured.Unstructured) bool {
				s.observe(u)
				mu.Lock()
				defer mu.Unlock()
				return lists >= 2 // listed again
			}, func(err error) {
				if err != nil {
					reported = append(reported, err.Error())
				}
			})
			require.NoError(t, err)
			assert.Equal(t, []string{"ready=no", "ready=no"}, s.snapshot())
			require.NotEmpty(t, reported)
			assert.Contains(t, reported[0], tc.wantErr)
		})
	}
}
