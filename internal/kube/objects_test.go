package kube_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/randfill"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
)

// filler fills objects at random, with the few types whose random bytes are no valid value (managed
// fields, timestamps) given valid ones.
func filler(nilChance float64, minElems, maxElems int) *randfill.Filler {
	return randfill.NewWithSeed(1).NilChance(nilChance).NumElements(minElems, maxElems).Funcs(
		func(f *metav1.FieldsV1, c randfill.Continue) { f.Raw = []byte(`{"f:data":{".":{}}}`) },
		func(tm *metav1.Time, c randfill.Continue) {
			*tm = metav1.Unix(c.Int63n(1<<32), 0)
		},
		func(tm *metav1.MicroTime, c randfill.Continue) {
			*tm = metav1.NewMicroTime(time.UnixMicro(c.Int63n(1 << 50)))
		},
	)
}

// roundTrip decodes the unstructured form of from into a new To and returns both unstructured forms.
func roundTrip[To any](t *testing.T, from any) (before, after map[string]any) {
	t.Helper()
	before, err := runtime.DefaultUnstructuredConverter.ToUnstructured(from)
	require.NoError(t, err)
	to := new(To)
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(before, to))
	after, err = runtime.DefaultUnstructuredConverter.ToUnstructured(to)
	require.NoError(t, err)
	return before, after
}

// TestObjectsKeepEveryField: a kind the job updates, filled at random as k8s.io/api declares it, comes
// back from the job's struct unchanged, so that an Update writes back every field it read.
func TestObjectsKeepEveryField(t *testing.T) {
	f := filler(0.2, 0, 3)
	for range 200 {
		var s corev1.Secret
		f.Fill(&s)
		before, after := roundTrip[kube.Secret](t, &s)
		require.Equal(t, before, after, "Secret")

		var cm corev1.ConfigMap
		f.Fill(&cm)
		before, after = roundTrip[kube.ConfigMap](t, &cm)
		require.Equal(t, before, after, "ConfigMap")

		var sa corev1.ServiceAccount
		f.Fill(&sa)
		before, after = roundTrip[kube.ServiceAccount](t, &sa)
		require.Equal(t, before, after, "ServiceAccount")
	}
}

// TestEventIsAnAPIEvent: every field of the Event the job creates, filled at random, is an
// events.k8s.io/v1 Event field of the same shape.
func TestEventIsAnAPIEvent(t *testing.T) {
	f := filler(0, 1, 2)
	for range 200 {
		var ev kube.Event
		f.Fill(&ev)
		before, after := roundTrip[eventsv1.Event](t, &ev)
		// The API type also has fields the job leaves empty (the deprecated ones).
		for k, v := range before {
			require.Equal(t, v, after[k], k)
		}
	}
}

func TestSecretDeepCopy(t *testing.T) {
	f := filler(0, 1, 2)
	var s kube.Secret
	f.Fill(&s)
	c := s.DeepCopy()
	assert.Equal(t, &s, c)
	for k := range c.Data {
		c.Data[k][0]++
	}
	for k := range c.Labels {
		c.Labels[k] += "x"
	}
	*c.Immutable = !*c.Immutable
	assert.NotEqual(t, &s, c, "the copy shares memory with the original")
	assert.Nil(t, (*kube.Secret)(nil).DeepCopy())
}
