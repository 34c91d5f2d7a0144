package job

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sethvargo/go-envconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

func TestRecordOutcome(t *testing.T) {
	long := strings.Repeat("é", 800) // 1600 bytes
	for _, tc := range []struct {
		name     string
		env      map[string]string
		msg      string
		failed   bool
		want     int
		wantType string
		reason   string
	}{
		{name: "failed run in a Job", env: map[string]string{"JOB_NAME": "litemaas-sync", "JOB_UID": "u-1", "NAMESPACE": "litemaas"},
			msg: "litemaas-sync: failed: models.yaml:3: model a: field contextLength: required", failed: true, want: 1, wantType: corev1.EventTypeWarning, reason: "Failed"},
		{name: "succeeded run in a Job", env: map[string]string{"JOB_NAME": "litemaas-sync", "JOB_UID": "u-1", "NAMESPACE": "litemaas"},
			msg: "litemaas-sync: done: litellm created=5", want: 1, wantType: corev1.EventTypeNormal, reason: "Succeeded"},
		{name: "note cut to the API's limit", env: map[string]string{"JOB_NAME": "litemaas-sync", "JOB_UID": "u-1", "NAMESPACE": "litemaas"},
			msg: long, failed: true, want: 1, wantType: corev1.EventTypeWarning, reason: "Failed"},
		{name: "outside a Job: nothing", env: map[string]string{"NAMESPACE": "litemaas"}, msg: "x", want: 0},
		{name: "no uid: nothing", env: map[string]string{"JOB_NAME": "litemaas-sync", "NAMESPACE": "litemaas"}, msg: "x", want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := eventsv1.SchemeGroupVersion.WithResource("events")
			dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{events: "EventList"})
			recordOutcome(context.Background(), envconfig.MapLookuper(tc.env), dc, "", "Reconcile", tc.msg, tc.failed, nil)
			list, err := dc.Resource(events).Namespace("litemaas").List(context.Background(), metav1.ListOptions{})
			require.NoError(t, err)
			require.Len(t, list.Items, tc.want)
			if tc.want == 0 {
				return
			}
			assert.Equal(t, "events.k8s.io/v1", list.Items[0].GetAPIVersion())
			assert.Equal(t, "Event", list.Items[0].GetKind())
			var ev eventsv1.Event
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[0].Object, &ev))
			assert.Equal(t, corev1.ObjectReference{APIVersion: "batch/v1", Kind: "Job", Namespace: "litemaas", Name: "litemaas-sync", UID: "u-1"}, ev.Regarding)
			assert.Equal(t, tc.wantType, ev.Type)
			assert.Equal(t, tc.reason, ev.Reason)
			assert.Equal(t, "Reconcile", ev.Action)
			assert.Equal(t, eventController, ev.ReportingController)
			assert.NotEmpty(t, ev.ReportingInstance)
			assert.False(t, ev.EventTime.IsZero())
			assert.LessOrEqual(t, len(ev.Note), maxEventNote)
			assert.True(t, utf8.ValidString(ev.Note))
			if len(tc.msg) <= maxEventNote {
				assert.Equal(t, tc.msg, ev.Note)
			} else {
				assert.True(t, strings.HasSuffix(ev.Note, " …"), ev.Note)
			}
		})
	}
}
