package manifests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
)

var kube *kapitest.Server

func TestMain(m *testing.M) {
	kube = kapitest.MustStart(m)
	code := m.Run()
	kube.Stop()
	os.Exit(code)
}

// dryRunner creates objects on the real API server with dryRun=All and strict field validation, so
// an unknown or misspelled field, a wrong type or a failed schema rule fails as it would on a cluster.
type dryRunner struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newDryRunner(t *testing.T) *dryRunner {
	t.Helper()
	root, err := RepoRoot()
	require.NoError(t, err)
	// The CRDs (Route, OAuthClient, Group, Application) and the namespaces are created for real
	// first: a dry run cannot create a kind or a namespace that later objects of the same run need.
	crds, err := Render(filepath.Join(root, "gitops", "test", "crds"))
	require.NoError(t, err)
	// The operators' own CRDs (CloudNativePG, OLM, Prometheus operator, ApplicationSet) from their Go modules.
	crds = append(crds, upstreamCRDs(t)...)
	var nss []*unstructured.Unstructured
	for _, name := range []string{"litemaas", "openshift-gitops", "openshift-operators"} {
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		ns.SetName(name)
		nss = append(nss, ns)
	}
	kube.Apply(t, append(crds, nss...)...)
	return &dryRunner{dyn: kube.Dynamic(), mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Clientset().Discovery()))}
}

func (d *dryRunner) create(ctx context.Context, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	m, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = d.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = d.dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	_, err = ri.Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
	return err
}

func TestServerSideDryRun(t *testing.T) {
	d := newDryRunner(t)
	for _, tg := range targets {
		if tg.kind == crdTarget {
			continue
		}
		t.Run(tg.dir, func(t *testing.T) {
			objs := rendered(t, tg.dir)
			require.NotEmpty(t, objs)
			for _, o := range objs {
				err := d.create(context.Background(), o)
				if apierrors.IsAlreadyExists(err) && o.GetKind() == "Namespace" {
					continue // created for real above
				}
				assert.NoError(t, err, "%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
			}
		})
	}
}

// The dry run must be able to fail: a misspelled field, a bad enum and a missing required field.
func TestServerSideDryRunRejects(t *testing.T) {
	d := newDryRunner(t)
	objs := rendered(t, sampleOverlay(t).dir)
	tests := []struct {
		kind, name string
		breakIt    func(*unstructured.Unstructured)
		want       string
	}{
		{"Deployment", "backend", func(o *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(o.Object, int64(1), "spec", "replicaz"))
		}, `unknown field "spec.replicaz"`},
		{"Route", "litellm", func(o *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(o.Object, "plain", "spec", "tls", "termination"))
		}, "spec.tls.termination"},
		{"Route", "litemaas", func(o *unstructured.Unstructured) { unstructured.RemoveNestedField(o.Object, "spec", "to") }, "spec.to"},
		{"Job", "litemaas-sync", func(o *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(o.Object, "ten", "spec", "activeDeadlineSeconds"))
		}, "activeDeadlineSeconds"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.name, func(t *testing.T) {
			o := Find(objs, tt.kind, tt.name)
			require.NotNil(t, o)
			o = o.DeepCopy()
			tt.breakIt(o)
			err := d.create(context.Background(), o)
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tt.want), err.Error())
		})
	}
}
