package kubelettest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/kubelettest"
)

var kube *kapitest.Server

func TestMain(m *testing.M) {
	kube = kapitest.MustStart(m)
	code := m.Run()
	kube.Stop()
	os.Exit(code)
}

// start runs a stand-in for the test's duration.
func start(t *testing.T, run func(ctx context.Context, wg *sync.WaitGroup) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	require.NoError(t, run(ctx, &wg))
}

// waitPod polls the pod until ok returns true, failing after 30 s with its last status.
func waitPod(t *testing.T, ns, name string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		p, err := kube.Clientset().CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			if last = p; ok(p) {
				return p
			}
		}
	}
	t.Fatalf("pod %s/%s: not within 30s (last status: %+v)", ns, name, last)
	return nil
}

func condition(p *corev1.Pod, typ corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// A Job's pod of a mapped image runs as that binary with its environment resolved and a token of its
// ServiceAccount, and ends with the exit code and the FallbackToLogsOnError message a node reports;
// any other pod becomes Running and Ready once Options.Start has played its start.
func TestKubelet(t *testing.T) {
	ctx := context.Background()
	ns := kube.CreateNamespace(t, "kubelet")
	cs := kube.Clientset()
	_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "greeting"},
		Data:       map[string]string{"GREETING": "hello", "file.txt": "from a volume"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	var mu sync.Mutex
	started := map[string]map[string]string{} // container -> its environment, as Start saw it
	k, err := kubelettest.New(kube, t.TempDir(), t.Logf, kubelettest.Options{
		Run: map[string]string{"example.test/sh": "/bin/sh"},
		Start: func(_ context.Context, _ *corev1.Pod, c *corev1.Container, env, _ map[string]string) error {
			mu.Lock()
			defer mu.Unlock()
			started[c.Name] = env
			return nil
		},
		Rewrite: func(_, v string) string { return strings.ReplaceAll(v, "in-cluster", "local") },
	})
	require.NoError(t, err)
	start(t, k.Start)
	t.Cleanup(k.Stop)

	greeting := corev1.EnvVar{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "greeting"}, Key: "GREETING"}}}
	podName := corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}

	t.Run("a Job's pod runs", func(t *testing.T) {
		controller := true
		pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "hook-abcde", OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: "hook", UID: types.UID("job-uid"), Controller: &controller}}},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{
					Name: "main", Image: "example.test/sh:1.0",
					Command: []string{"/entrypoint", "-c"},
					// A path under a mount, as a word of its own, names the volume's local copy.
					Args: []string{`echo "$GREETING from $(POD_NAME) at $ADDR: $(cat "$1")"; ` +
						`test -s "$KUBECONFIG" && echo token; exit 3`, "sh", "/data/file.txt"},
					Env:                      []corev1.EnvVar{greeting, podName, {Name: "ADDR", Value: "http://in-cluster:4000"}},
					VolumeMounts:             []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
					TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "greeting"}}}}},
			},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		got := waitPod(t, ns, pod.Name, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		require.Len(t, got.Status.ContainerStatuses, 1)
		term := got.Status.ContainerStatuses[0].State.Terminated
		require.NotNil(t, term)
		assert.Equal(t, int32(3), term.ExitCode)
		assert.Equal(t, "Error", term.Reason)
		want := "hello from hook-abcde at http://local:4000: from a volume\ntoken\n"
		assert.Equal(t, strings.TrimSuffix(want, "\n"), strings.TrimSuffix(term.Message, "\n"), "the log's tail as the termination message")
		runs := k.Runs()
		require.Len(t, runs, 1)
		assert.Equal(t, "hook", runs[0].Job)
		assert.Equal(t, 3, runs[0].ExitCode)
		assert.Equal(t, want, runs[0].Output)
	})

	t.Run("any other pod becomes Ready", func(t *testing.T) {
		pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "server"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "server", Image: "example.test/server:1.0", Env: []corev1.EnvVar{greeting, podName},
			}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		got := waitPod(t, ns, pod.Name, func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue })
		assert.Equal(t, corev1.PodRunning, got.Status.Phase)
		mu.Lock()
		env := started["server"]
		mu.Unlock()
		assert.Equal(t, "hello", env["GREETING"])
		assert.Equal(t, "server", env["POD_NAME"])
		assert.NotEmpty(t, env["KUBERNETES_SERVICE_HOST"], "the kubernetes Service's variables")
		assert.Len(t, k.Runs(), 1, "nothing ran for it")
	})
}

// A Pending claim gets a hostPath volume pre-bound to it, in the directory the Kubelet mounts for it.
func TestProvisioner(t *testing.T) {
	ctx := context.Background()
	ns := kube.CreateNamespace(t, "provisioner")
	cs := kube.Clientset()
	dir := t.TempDir()
	p := &kubelettest.Provisioner{Client: cs, Dir: dir, Log: t.Logf}
	start(t, p.Start)

	class := "standard"
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// A claim's status starts empty; the binder controller would set Pending.
	pvc.Status.Phase = corev1.ClaimPending
	_, err = cs.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, pvc, metav1.UpdateOptions{})
	require.NoError(t, err)

	var pv *corev1.PersistentVolume
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && pv == nil; time.Sleep(100 * time.Millisecond) {
		pv, _ = cs.CoreV1().PersistentVolumes().Get(ctx, "pv-"+string(pvc.UID), metav1.GetOptions{})
		if pv != nil && pv.Name == "" {
			pv = nil
		}
	}
	require.NotNil(t, pv, "no volume for the claim within 30s")
	require.NotNil(t, pv.Spec.ClaimRef)
	assert.Equal(t, pvc.UID, pv.Spec.ClaimRef.UID)
	assert.Equal(t, "standard", pv.Spec.StorageClassName)
	assert.Equal(t, resource.MustParse("2Gi"), pv.Spec.Capacity[corev1.ResourceStorage])
	require.NotNil(t, pv.Spec.HostPath)
	assert.Equal(t, filepath.Join(dir, "claims", ns, "data"), pv.Spec.HostPath.Path)
}
