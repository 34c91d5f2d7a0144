package kubelettest

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

type envVar struct{ name, value string }

func envMap(env []envVar) map[string]string {
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.name] = e.value
	}
	return m
}

// resolveEnv is the container's environment as the kubelet builds it: the Services' variables of the
// pod's namespace (unless enableServiceLinks is false; the `kubernetes` Service's always), envFrom,
// then env with $(VAR) references expanded, Secrets and ConfigMaps read at this moment. A missing
// Secret, ConfigMap or key that is not optional is an error, as it is for the kubelet
// (CreateContainerConfigError).
func (k *Kubelet) resolveEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container) ([]envVar, error) {
	services, err := k.serviceEnv(pod)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	var order []string
	set := func(name, value string) {
		if _, ok := vars[name]; !ok {
			order = append(order, name)
		}
		vars[name] = value
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := k.cs.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) && optional(from.ConfigMapRef.Optional) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("envFrom configmap %q: %w", from.ConfigMapRef.Name, err)
			}
			data = cm.Data
		case from.SecretRef != nil:
			sec, err := k.cs.CoreV1().Secrets(pod.Namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) && optional(from.SecretRef.Optional) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("envFrom secret %q: %w", from.SecretRef.Name, err)
			}
			data = map[string]string{}
			for key, v := range sec.Data {
				data[key] = string(v)
			}
		}
		for _, key := range slices.Sorted(maps.Keys(data)) {
			set(from.Prefix+key, data[key])
		}
	}
	lookup := func() map[string]string {
		m := map[string]string{}
		for key, v := range services {
			m[key] = v
		}
		for key, v := range vars {
			m[key] = v
		}
		return m
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, lookup()))
			continue
		}
		v, skip, err := k.valueFrom(ctx, pod, c, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if !skip {
			set(e.Name, v)
		}
	}
	env := make([]envVar, 0, len(order)+len(services))
	for _, name := range order {
		env = append(env, envVar{name, vars[name]})
	}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		if _, ok := vars[name]; !ok {
			env = append(env, envVar{name, services[name]})
		}
	}
	return env, nil
}

func optional(p *bool) bool { return p != nil && *p }

func (k *Kubelet) valueFrom(ctx context.Context, pod *corev1.Pod, c *corev1.Container, from *corev1.EnvVarSource) (value string, skip bool, err error) {
	switch {
	case from.FieldRef != nil:
		v, err := fieldValue(pod, from.FieldRef.FieldPath)
		return v, false, err
	case from.ResourceFieldRef != nil:
		v, err := resourceValue(c, from.ResourceFieldRef)
		return v, false, err
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		sec, err := k.cs.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && optional(ref.Optional) {
			return "", true, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("secret %q: %w", ref.Name, err)
		}
		b, ok := sec.Data[ref.Key]
		if !ok {
			if optional(ref.Optional) {
				return "", true, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return string(b), false, nil
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := k.cs.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && optional(ref.Optional) {
			return "", true, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("configmap %q: %w", ref.Name, err)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if optional(ref.Optional) {
				return "", true, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return v, false, nil
	}
	return "", false, fmt.Errorf("unsupported valueFrom %+v", from)
}

// fieldValue resolves a downward-API field path of pod.
func fieldValue(pod *corev1.Pod, path string) (string, error) {
	if key, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[key], nil
	}
	if key, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[key], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.podIP":
		return "127.0.0.1", nil
	case "status.hostIPs", "status.podIPs":
		return "127.0.0.1", nil
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

// subscript parses prefix['key'].
func subscript(path, prefix string) (string, bool) {
	if !strings.HasPrefix(path, prefix+"['") || !strings.HasSuffix(path, "']") {
		return "", false
	}
	return path[len(prefix)+2 : len(path)-2], true
}

func formatMap(m map[string]string) string {
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		lines = append(lines, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return strings.Join(lines, "\n")
}

// resourceValue resolves a resourceFieldRef as the kubelet does: limits fall back to the node's
// capacity when unset (here: 2 CPUs and 8 GiB), values are divided by the divisor and rounded up.
func resourceValue(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	parts := strings.SplitN(ref.Resource, ".", 2)
	if len(parts) != 2 {
		return "", fmt.Errorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	list := c.Resources.Limits
	if parts[0] == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(parts[1])]
	if !ok {
		switch parts[1] {
		case "cpu":
			q = resource.MustParse("2")
		case "memory":
			q = resource.MustParse("8Gi")
		default:
			q = resource.MustParse("0")
		}
		if parts[0] == "requests" {
			q = resource.MustParse("0")
		}
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if parts[1] == "cpu" {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

// expand replaces $(VAR) with the value of VAR when it is defined, leaves unknown references as they
// are and turns $$ into $, as Kubernetes does for env values, command and args.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// serviceEnv is what the kubelet adds for each Service with a cluster IP: NAME_SERVICE_HOST,
// NAME_SERVICE_PORT, NAME_PORT=tcp://ip:port and the per-port variables. With enableServiceLinks
// false only the `kubernetes` Service of the default namespace counts.
func (k *Kubelet) serviceEnv(pod *corev1.Pod) (map[string]string, error) {
	var svcs []*corev1.Service
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		list, err := k.services.Services(pod.Namespace).List(labels.Everything())
		if err != nil {
			return nil, err
		}
		svcs = append(svcs, list...)
	}
	if master, err := k.services.Services(metav1.NamespaceDefault).Get("kubernetes"); err == nil {
		svcs = append(svcs, master)
	}
	env := map[string]string{}
	for _, s := range svcs {
		ip := s.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone || len(s.Spec.Ports) == 0 {
			continue
		}
		name := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
		first := s.Spec.Ports[0]
		env[name+"_SERVICE_HOST"] = ip
		env[name+"_SERVICE_PORT"] = strconv.Itoa(int(first.Port))
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				env[name+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))] = strconv.Itoa(int(p.Port))
			}
		}
		proto := strings.ToLower(string(first.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		env[name+"_PORT"] = fmt.Sprintf("%s://%s:%d", proto, ip, first.Port)
		for _, p := range s.Spec.Ports {
			pr := p.Protocol
			if pr == "" {
				pr = corev1.ProtocolTCP
			}
			prefix := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(string(pr)))
			env[prefix] = fmt.Sprintf("%s://%s:%d", strings.ToLower(string(pr)), ip, p.Port)
			env[prefix+"_PROTO"] = strings.ToLower(string(pr))
			env[prefix+"_PORT"] = strconv.Itoa(int(p.Port))
			env[prefix+"_ADDR"] = ip
		}
	}
	return env, nil
}

// mount maps a container path to the local directory or file standing in for it.
type mount struct{ path, local string }

// writeVolumes writes the volumes container c mounts into dir and maps each mount path to its copy.
// Deeper mount paths come first, so that the most specific one maps a path.
func (k *Kubelet) writeVolumes(ctx context.Context, pod *corev1.Pod, c *corev1.Container, dir string) ([]mount, error) {
	var mounts []mount
	for _, vm := range c.VolumeMounts {
		var vol *corev1.Volume
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == vm.Name {
				vol = &pod.Spec.Volumes[i]
			}
		}
		if vol == nil {
			return nil, fmt.Errorf("volumeMount %s: no volume of that name", vm.Name)
		}
		local := filepath.Join(dir, vm.Name)
		if vol.PersistentVolumeClaim != nil {
			// The claim's data outlives the pod, as a volume's does.
			local = claimDir(k.dir, pod.Namespace, vol.PersistentVolumeClaim.ClaimName)
		}
		if err := os.MkdirAll(local, 0o755); err != nil {
			return nil, err
		}
		if err := k.fillVolume(ctx, pod, vol, local); err != nil {
			return nil, fmt.Errorf("volume %s: %w", vm.Name, err)
		}
		if vm.SubPath != "" {
			local = filepath.Join(local, vm.SubPath)
		}
		mounts = append(mounts, mount{path: strings.TrimRight(vm.MountPath, "/"), local: local})
	}
	slices.SortFunc(mounts, func(a, b mount) int { return len(b.path) - len(a.path) })
	return mounts, nil
}

func (k *Kubelet) fillVolume(ctx context.Context, pod *corev1.Pod, vol *corev1.Volume, dir string) error {
	switch {
	case vol.ConfigMap != nil:
		return k.writeConfigMap(ctx, pod.Namespace, vol.ConfigMap.Name, vol.ConfigMap.Items, optional(vol.ConfigMap.Optional), dir)
	case vol.Secret != nil:
		return k.writeSecret(ctx, pod.Namespace, vol.Secret.SecretName, vol.Secret.Items, optional(vol.Secret.Optional), dir)
	case vol.DownwardAPI != nil:
		return writeDownward(pod, vol.DownwardAPI.Items, dir)
	case vol.Projected != nil:
		for _, src := range vol.Projected.Sources {
			var err error
			switch {
			case src.ConfigMap != nil:
				err = k.writeConfigMap(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, optional(src.ConfigMap.Optional), dir)
			case src.Secret != nil:
				err = k.writeSecret(ctx, pod.Namespace, src.Secret.Name, src.Secret.Items, optional(src.Secret.Optional), dir)
			case src.DownwardAPI != nil:
				err = writeDownward(pod, src.DownwardAPI.Items, dir)
			}
			if err != nil {
				return err
			}
		}
	}
	// emptyDir, persistentVolumeClaim, hostPath and the rest start as an empty directory.
	return nil
}

func (k *Kubelet) writeConfigMap(ctx context.Context, ns, name string, items []corev1.KeyToPath, opt bool, dir string) error {
	cm, err := k.cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && opt {
		return nil
	}
	if err != nil {
		return fmt.Errorf("configmap %q: %w", name, err)
	}
	data := map[string][]byte{}
	for key, v := range cm.Data {
		data[key] = []byte(v)
	}
	for key, v := range cm.BinaryData {
		data[key] = v
	}
	return writeKeys(data, items, opt, dir, "ConfigMap "+name)
}

func (k *Kubelet) writeSecret(ctx context.Context, ns, name string, items []corev1.KeyToPath, opt bool, dir string) error {
	sec, err := k.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && opt {
		return nil
	}
	if err != nil {
		return fmt.Errorf("secret %q: %w", name, err)
	}
	return writeKeys(sec.Data, items, opt, dir, "Secret "+name)
}

func writeKeys(data map[string][]byte, items []corev1.KeyToPath, opt bool, dir, what string) error {
	if len(items) == 0 {
		for key := range data {
			items = append(items, corev1.KeyToPath{Key: key, Path: key})
		}
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if opt {
				continue
			}
			return fmt.Errorf("%s has no key %s", what, it.Key)
		}
		p := filepath.Join(dir, it.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, v, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writeDownward(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, dir string) error {
	for _, it := range items {
		if it.FieldRef == nil {
			continue
		}
		v, err := fieldValue(pod, it.FieldRef.FieldPath)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, it.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			return err
		}
	}
	return nil
}
