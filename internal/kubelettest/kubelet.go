// Package kubelettest stands in for a cluster's nodes on a plain kube-apiserver (internal/kapitest), for
// tests in which pods must run or become Ready without a container runtime:
//
//   - Kubelet: the kubelet's side of a pod's life. A Job's pod of a mapped image runs as a local process
//     and ends Succeeded or Failed; any other pod becomes Running and Ready. It follows the kubelet
//     (kubernetes pkg/kubelet): the container environment as kubelet_pods.go builds it
//     (makeEnvironmentVariables: envFrom, env, valueFrom, the downward API, resourceFieldRef), the
//     Services' variables of pkg/kubelet/envvars, $(VAR) expansion as
//     third_party/forked/golang/expansion does it, volumes written as the configMap, secret, downwardAPI
//     and projected volume plugins write them, a bound ServiceAccount token as the pod's identity, and
//     the pod and container statuses (phase, conditions, exit codes, FallbackToLogsOnError termination
//     messages) that pkg/kubelet/status and pkg/kubelet/kuberuntime report.
//   - Provisioner: the nodes' local storage, as a dynamic provisioner of hostPath volumes (as
//     kube-controller-manager's hostPath provisioner and sig-storage's external provisioners do: a
//     PersistentVolume pre-bound to its claim), whose directories the Kubelet mounts.
//
// Both are driven by watches. They never schedule, pull or isolate anything.
package kubelettest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
)

// Options configure the Kubelet.
type Options struct {
	// Run maps a container image without tag or digest (e.g. "ghcr.io/litemaas-gitops/litemaas-sync")
	// to a local binary. A Job's container of that image is run as that binary, as the image's
	// entrypoint would be: the container's command (after its first word) and args, its environment
	// resolved as the kubelet resolves it, its volumes written to files, and a token of its
	// ServiceAccount as its identity (through KUBECONFIG). A Job container of any other image exits 0
	// at once.
	Run map[string]string
	// Rewrite, when set, rewrites every resolved environment value and argument of a run container;
	// tests point in-cluster service addresses (http://litellm:4000, @postgres:5432) at local servers
	// with it. ns is the pod's namespace.
	Rewrite func(ns, value string) string
	// Start, when set, is called for each container of a pod that is not a Job's, with its resolved
	// environment, before the pod is reported Ready: it plays what the container would do on start
	// (create a database, start a server). An error keeps the pod not Ready, and it is tried again
	// with back-off, as a crash-looping container is.
	// mounts maps each of the container's mount paths to the local directory holding its volume.
	Start func(ctx context.Context, pod *corev1.Pod, c *corev1.Container, env, mounts map[string]string) error
	// HostEnv is added to every run container's environment (NAME=value) and stands in for what the
	// node's image would hold, e.g. SSL_CERT_FILE naming a test CA, as an image's trust store would.
	HostEnv []string
}

// Kubelet plays the nodes: it never schedules, pulls or isolates anything, but gives every pod the
// status a kubelet would. A Job's pod runs (see Options.Run) and ends Succeeded or Failed with
// its containers' exit codes, reasons and termination messages; any other pod becomes Running and
// Ready. Pods are picked up from a watch as they are created.
//
// What it cannot do: /dev/termination-log does not exist on the host, so a program's own termination
// message is lost; with terminationMessagePolicy FallbackToLogsOnError a failed container's message
// is the tail of its output, as on a node when the program wrote no message.
type Kubelet struct {
	kube     *kapitest.Server
	dir      string
	log      Logf
	o        Options
	cs       kubernetes.Interface
	factory  informers.SharedInformerFactory
	pods     listersv1.PodLister
	services listersv1.ServiceLister
	queue    workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	started map[types.UID]bool               // pods given a status (Running or final)
	cancel  map[types.UID]context.CancelFunc // running processes
	runs    []Run
	procWG  sync.WaitGroup
}

// Run is one container run for a Job's pod.
type Run struct {
	Namespace, Pod, Job, Container, Image string
	Args                                  []string
	ExitCode                              int
	Started, Finished                     time.Time
	// Output is the process's combined stdout and stderr.
	Output string
}

// Logf receives one line per thing a stand-in does; nil discards them.
type Logf func(format string, args ...any)

func (l Logf) printf(format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}

// New returns a Kubelet for the pods of kube. dir holds the pods' files (their logs, volumes,
// kubeconfigs and work directories) and the claims' data (see Provisioner). Start runs it.
func New(kube *kapitest.Server, dir string, log Logf, o Options) (*Kubelet, error) {
	cs := kube.Clientset()
	factory := informers.NewSharedInformerFactory(cs, 0)
	k := &Kubelet{
		kube: kube, dir: dir, log: log, o: o, cs: cs, factory: factory,
		pods:     factory.Core().V1().Pods().Lister(),
		services: factory.Core().V1().Services().Lister(),
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](
			200*time.Millisecond, 5*time.Second)),
		started: map[types.UID]bool{},
		cancel:  map[types.UID]context.CancelFunc{},
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			k.queue.Add(key)
		}
	}
	_, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				k.stop(p.UID)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// Start watches pods until ctx ends (wg tracks the workers) and returns once the watch has synced.
// Processes it started outlive ctx: Stop ends them.
func (k *Kubelet) Start(ctx context.Context, wg *sync.WaitGroup) error {
	k.factory.Start(ctx.Done())
	for typ, ok := range k.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("kubelet: the %v informer did not sync", typ)
		}
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k.next(ctx) {
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		k.queue.ShutDown()
	}()
	return nil
}

func (k *Kubelet) next(ctx context.Context) bool {
	key, quit := k.queue.Get()
	if quit {
		return false
	}
	defer k.queue.Done(key)
	if err := k.sync(ctx, key); err != nil {
		if ctx.Err() == nil {
			k.log.printf("kubelet: pod %s: %v (retrying)", key, err)
			k.queue.AddRateLimited(key)
		}
		return true
	}
	k.queue.Forget(key)
	return true
}

// Runs returns the Job containers run so far, in start order.
func (k *Kubelet) Runs() []Run {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Run(nil), k.runs...)
}

func (k *Kubelet) stop(uid types.UID) {
	k.mu.Lock()
	cancel := k.cancel[uid]
	k.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Stop ends the processes still running (as deleting their pods would) and waits for them.
func (k *Kubelet) Stop() {
	k.mu.Lock()
	for _, c := range k.cancel {
		c()
	}
	k.mu.Unlock()
	k.procWG.Wait()
}

func (k *Kubelet) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := k.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pod.DeletionTimestamp != nil {
		k.stop(pod.UID)
		return nil
	}
	k.mu.Lock()
	done := k.started[pod.UID]
	k.mu.Unlock()
	if done || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	if jobOf(pod) != "" {
		return k.startJobPod(ctx, pod.DeepCopy())
	}
	return k.startPod(ctx, pod.DeepCopy())
}

func jobOf(pod *corev1.Pod) string {
	for _, ref := range pod.OwnerReferences {
		if ref.Kind == "Job" && ref.Controller != nil && *ref.Controller {
			return ref.Name
		}
	}
	return ""
}

// ImageName is the image reference without tag or digest: what Options.Run maps.
func ImageName(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// startPod resolves each container's environment, plays its start and reports the pod Running and Ready.
func (k *Kubelet) startPod(ctx context.Context, pod *corev1.Pod) error {
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		env, err := k.resolveEnv(ctx, pod, c)
		if err != nil {
			k.setWaiting(ctx, pod, "CreateContainerConfigError", err.Error())
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
		if k.o.Start != nil {
			ms, err := k.writeVolumes(ctx, pod, c, filepath.Join(k.dir, "pods", string(pod.UID), "volumes"))
			if err != nil {
				k.setWaiting(ctx, pod, "CreateContainerConfigError", err.Error())
				return fmt.Errorf("container %s: %w", c.Name, err)
			}
			mounts := map[string]string{}
			for _, m := range ms {
				mounts[m.path] = m.local
			}
			if err := k.o.Start(ctx, pod, c, envMap(env), mounts); err != nil {
				k.setWaiting(ctx, pod, "CrashLoopBackOff", err.Error())
				return fmt.Errorf("container %s: %w", c.Name, err)
			}
		}
	}
	now := metav1.Now()
	if err := k.updateStatus(ctx, pod, func(st *corev1.PodStatus) {
		runningStatus(pod, st, now, true)
	}); err != nil {
		return err
	}
	k.mu.Lock()
	k.started[pod.UID] = true
	k.mu.Unlock()
	k.log.printf("kubelet: pod %s/%s Running and Ready", pod.Namespace, pod.Name)
	return nil
}

// startJobPod runs the pod's containers of a mapped image and reports the outcome.
func (k *Kubelet) startJobPod(ctx context.Context, pod *corev1.Pod) error {
	type prepared struct {
		c   *corev1.Container
		cmd *exec.Cmd
		out *os.File
	}
	var runs []prepared
	dir := filepath.Join(k.dir, "pods", string(pod.UID))
	// The processes outlive this call; deleting the pod cancels them (see stop).
	runCtx, cancel := context.WithCancel(context.Background())
	launched := false
	defer func() {
		if !launched {
			cancel()
			for _, r := range runs {
				if r.out != nil {
					r.out.Close()
				}
			}
		}
	}()
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		bin, ok := k.o.Run[ImageName(c.Image)]
		if !ok {
			runs = append(runs, prepared{c: c})
			continue
		}
		cmd, err := k.command(ctx, runCtx, pod, c, bin, dir)
		if err != nil {
			k.setWaiting(ctx, pod, "CreateContainerConfigError", err.Error())
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
		out, err := os.Create(filepath.Join(dir, c.Name+".log"))
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = out, out
		runs = append(runs, prepared{c: c, cmd: cmd, out: out})
	}
	start := metav1.Now()
	if err := k.updateStatus(ctx, pod, func(st *corev1.PodStatus) { runningStatus(pod, st, start, false) }); err != nil {
		return err
	}
	launched = true
	k.mu.Lock()
	k.started[pod.UID] = true
	k.cancel[pod.UID] = cancel
	k.mu.Unlock()
	k.log.printf("kubelet: pod %s/%s of Job %s started", pod.Namespace, pod.Name, jobOf(pod))

	k.procWG.Add(1)
	go func() {
		defer k.procWG.Done()
		defer cancel()
		results := make([]corev1.ContainerStatus, len(runs))
		var wg sync.WaitGroup
		for i, r := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = k.runContainer(runCtx, pod, r.c, r.cmd, r.out, start)
			}()
		}
		wg.Wait()
		k.mu.Lock()
		delete(k.cancel, pod.UID)
		k.mu.Unlock()
		if runCtx.Err() != nil {
			// Deleted while running: there is no pod left to report on.
			return
		}
		phase := corev1.PodSucceeded
		for _, s := range results {
			if s.State.Terminated != nil && s.State.Terminated.ExitCode != 0 {
				phase = corev1.PodFailed
			}
		}
		err := k.updateStatus(ctx, pod, func(st *corev1.PodStatus) { terminalStatus(pod, st, phase, results) })
		if err != nil && !apierrors.IsNotFound(err) {
			k.log.printf("kubelet: pod %s/%s: reporting %s: %v", pod.Namespace, pod.Name, phase, err)
			return
		}
		k.log.printf("kubelet: pod %s/%s of Job %s %s", pod.Namespace, pod.Name, jobOf(pod), phase)
	}()
	return nil
}

// runContainer runs one container to its end (an unmapped image ends at once with exit code 0).
func (k *Kubelet) runContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, cmd *exec.Cmd, out *os.File, start metav1.Time) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: containerID(pod, c)}
	if cmd == nil {
		cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: start, FinishedAt: metav1.Now(), ContainerID: cs.ContainerID}
		return cs
	}
	started := time.Now()
	err := cmd.Run()
	finished := time.Now()
	out.Close()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && ee.ExitCode() >= 0:
			code = ee.ExitCode()
		case errors.As(err, &ee):
			code = 137 // killed by a signal, as a container runtime reports it
		default:
			code = 128
			_ = os.WriteFile(out.Name(), []byte(err.Error()), 0o644)
		}
	}
	output, _ := os.ReadFile(out.Name())
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	msg := ""
	if code != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		msg = logTail(output)
	}
	cs.State.Terminated = &corev1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: reason, Message: msg,
		StartedAt: metav1.NewTime(started), FinishedAt: metav1.NewTime(finished), ContainerID: cs.ContainerID,
	}
	k.mu.Lock()
	k.runs = append(k.runs, Run{
		Namespace: pod.Namespace, Pod: pod.Name, Job: jobOf(pod), Container: c.Name, Image: c.Image,
		Args: cmd.Args[1:], ExitCode: code, Started: started, Finished: finished, Output: string(output),
	})
	k.mu.Unlock()
	return cs
}

// logTail is what the kubelet keeps of a log as a termination message: the last 80 lines, at most
// 2048 bytes.
func logTail(b []byte) string {
	s := string(kapitest.Tail(b, 80))
	if len(s) > 2048 {
		s = s[len(s)-2048:]
	}
	return s
}

func containerID(pod *corev1.Pod, c *corev1.Container) string {
	return "stand-in://" + string(pod.UID) + "/" + c.Name
}

// command builds the process for container c of pod: binary, args, environment, files.
func (k *Kubelet) command(ctx, runCtx context.Context, pod *corev1.Pod, c *corev1.Container, bin, dir string) (*exec.Cmd, error) {
	env, err := k.resolveEnv(ctx, pod, c)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "work"), 0o755); err != nil {
		return nil, err
	}
	mounts, err := k.writeVolumes(ctx, pod, c, filepath.Join(dir, "volumes"))
	if err != nil {
		return nil, err
	}
	kubeconfig, err := k.serviceAccountKubeconfig(ctx, pod, filepath.Join(dir, c.Name+".kubeconfig"))
	if err != nil {
		return nil, err
	}
	vars := envMap(env)
	rewrite := func(s string) string {
		for _, m := range mounts {
			if s == m.path || strings.HasPrefix(s, m.path+"/") {
				s = m.local + strings.TrimPrefix(s, m.path)
				break
			}
		}
		s = rewriteQueryPaths(s, mounts)
		if k.o.Rewrite != nil {
			s = k.o.Rewrite(pod.Namespace, s)
		}
		return s
	}
	var args []string
	if len(c.Command) > 1 {
		args = append(args, c.Command[1:]...)
	}
	args = append(args, c.Args...)
	for i, a := range args {
		args[i] = rewrite(expand(a, vars))
	}
	procEnv := append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOSTNAME=" + pod.Name}, k.o.HostEnv...)
	for _, e := range env {
		procEnv = append(procEnv, e.name+"="+rewrite(e.value))
	}
	// The pod's identity: a bound token of its ServiceAccount, in place of the files under
	// /var/run/secrets/kubernetes.io/serviceaccount that a node mounts.
	if kubeconfig != "" {
		procEnv = append(procEnv, "KUBECONFIG="+kubeconfig)
	}
	cmd := exec.CommandContext(runCtx, bin, args...)
	cmd.Env = procEnv
	cmd.Dir = filepath.Join(dir, "work")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A deleted pod's container gets SIGTERM, then SIGKILL after its grace period.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	grace := int64(30)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	cmd.WaitDelay = time.Duration(grace) * time.Second
	return cmd, nil
}

func (k *Kubelet) serviceAccountKubeconfig(ctx context.Context, pod *corev1.Pod, path string) (string, error) {
	if pod.Spec.AutomountServiceAccountToken != nil && !*pod.Spec.AutomountServiceAccountToken {
		return "", nil
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	exp := int64(3607)
	tr, err := k.cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token of ServiceAccount %s/%s: %w", pod.Namespace, sa, err)
	}
	if err := k.kube.WriteTokenKubeconfig(path, tr.Status.Token, pod.Namespace); err != nil {
		return "", err
	}
	return path, nil
}

func (k *Kubelet) setWaiting(ctx context.Context, pod *corev1.Pod, reason, msg string) {
	_ = k.updateStatus(ctx, pod, func(st *corev1.PodStatus) {
		st.Phase = corev1.PodPending
		st.ContainerStatuses = nil
		for _, c := range pod.Spec.Containers {
			st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}},
			})
		}
	})
}

// updateStatus applies change to the pod's current status and writes it.
func (k *Kubelet) updateStatus(ctx context.Context, pod *corev1.Pod, change func(*corev1.PodStatus)) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	pods := k.cs.CoreV1().Pods(pod.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pod.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
		}
		change(&cur.Status)
		_, err = pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{FieldManager: "kubelet"})
		return err
	})
}

func podConditions(now metav1.Time, ready bool) []corev1.PodCondition {
	r := corev1.ConditionFalse
	reason := "PodCompleted"
	if ready {
		r, reason = corev1.ConditionTrue, ""
	}
	return []corev1.PodCondition{
		{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: r, Reason: reason, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: r, Reason: reason, LastTransitionTime: now},
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
}

// runningStatus is a started pod: init containers done, containers running (Ready when ready).
func runningStatus(pod *corev1.Pod, st *corev1.PodStatus, now metav1.Time, ready bool) {
	st.Phase = corev1.PodRunning
	st.StartTime = &now
	st.HostIP, st.PodIP = "127.0.0.1", "127.0.0.1"
	st.HostIPs, st.PodIPs = []corev1.HostIP{{IP: "127.0.0.1"}}, []corev1.PodIP{{IP: "127.0.0.1"}}
	st.Conditions = podConditions(now, ready)
	st.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		s := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: containerID(pod, &c), Ready: true}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			started := true
			s.Started = &started
			s.State.Running = &corev1.ContainerStateRunning{StartedAt: now}
		} else {
			s.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now, ContainerID: s.ContainerID}
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, s)
	}
	st.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		started := true
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: containerID(pod, &c),
			Ready: ready, Started: &started, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
}

func terminalStatus(pod *corev1.Pod, st *corev1.PodStatus, phase corev1.PodPhase, results []corev1.ContainerStatus) {
	now := metav1.Now()
	st.Phase = phase
	st.Conditions = podConditions(now, false)
	for i := range st.Conditions {
		if st.Conditions[i].Type == corev1.PodReadyToStartContainers {
			st.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	st.ContainerStatuses = results
	started := false
	for i := range st.ContainerStatuses {
		st.ContainerStatuses[i].Started = &started
	}
}

// rewriteQueryPaths maps the mounted files a URL's query names (libpq's sslrootcert=/path, ...) to their
// local copies.
func rewriteQueryPaths(s string, mounts []mount) string {
	if !strings.Contains(s, "://") {
		return s
	}
	for _, m := range mounts {
		s = strings.ReplaceAll(s, "="+m.path+"/", "="+m.local+"/")
	}
	return s
}
