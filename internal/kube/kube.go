// Package kube holds the small client-side helpers the commands need to talk to a cluster.
package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// serviceAccountNamespaceFile is where the kubelet mounts the pod's namespace; a variable for tests.
var serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// RESTConfig returns the configuration to reach the API server.
//
// Order: an explicitly set $KUBECONFIG, then the in-cluster configuration, then the default kubeconfig
// (~/.kube/config). An explicit $KUBECONFIG wins over in-cluster so that running the binary from inside
// some other pod (a CI runner, a debug pod) talks to the cluster the caller chose and not to the one
// the pod happens to run in.
func RESTConfig() (*rest.Config, error) {
	var inClusterErr error
	if os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" {
		cfg, err := rest.InClusterConfig()
		if err == nil {
			return cfg, nil
		}
		if !errors.Is(err, rest.ErrNotInCluster) {
			// In a pod, but without a usable token (e.g. automountServiceAccountToken: false): a
			// kubeconfig may still be available, so only report this if that fails too.
			inClusterErr = err
		}
	}
	cfg, err := loader().ClientConfig()
	switch {
	case err == nil:
		return cfg, nil
	case clientcmd.IsEmptyConfig(err) && inClusterErr != nil:
		return nil, fmt.Errorf("in-cluster configuration failed and no kubeconfig found: %w", inClusterErr)
	case clientcmd.IsEmptyConfig(err):
		return nil, errors.New("no Kubernetes configuration: not running in a pod (KUBERNETES_SERVICE_HOST is unset) " +
			"and no kubeconfig found; set KUBECONFIG or create ~/.kube/config")
	default:
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
}

// DefaultNamespace returns the namespace to work in: the pod's own namespace, else the current
// kubeconfig context's namespace, else "default". As in RESTConfig, an explicit $KUBECONFIG takes
// precedence over the pod's namespace, so that configuration and namespace come from the same place.
func DefaultNamespace() string {
	if os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" {
		if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
			if ns := strings.TrimSpace(string(b)); ns != "" {
				return ns
			}
		}
	}
	if ns, _, err := loader().Namespace(); err == nil && ns != "" {
		return ns
	}
	return metav1.NamespaceDefault
}

func loader() clientcmd.ClientConfig {
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
}

// ReadConfigMapKey returns the value of key in ConfigMap namespace/name, from data or binaryData.
func ReadConfigMapKey(ctx context.Context, c dynamic.Interface, namespace, name, key string) ([]byte, error) {
	cm, err := ConfigMaps(c, namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("configmap %s/%s not found (wanted key %q): %w", namespace, name, key, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading configmap %s/%s (key %q): %w", namespace, name, key, err)
	}
	if v, ok := cm.Data[key]; ok {
		return []byte(v), nil
	}
	if v, ok := cm.BinaryData[key]; ok {
		return v, nil
	}
	keys := make([]string, 0, len(cm.Data)+len(cm.BinaryData))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	for k := range cm.BinaryData {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	have := "no keys"
	if len(keys) > 0 {
		have = "keys: " + strings.Join(keys, ", ")
	}
	return nil, fmt.Errorf("configmap %s/%s has no key %q (%s)", namespace, name, key, have)
}
