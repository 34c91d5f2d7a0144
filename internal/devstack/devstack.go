// Package devstack starts a throwaway local LiteMaaS stack for the demo, the end-to-end tests and the
// benchmarks: a real PostgreSQL with the backend's schema, the LiteLLM admin-API test double as a
// server, and a real kube-apiserver with the rendered overlay applied. It then runs litemaas-sync
// exactly as the rendered PostSync Job declares it: same arguments, same environment (Secrets and the
// pod's namespace resolved the way the kubelet would, in-cluster service addresses pointed at the local
// servers, the catalog ConfigMap mounted as files) and the Job's ServiceAccount token as its identity.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/pgtest"
)

// JobName is the PostSync Job the stack runs.
const JobName = "litemaas-sync"

// Options configure a stack. Servers given are reused (tests share one per package); the others are
// started and stopped with the stack.
type Options struct {
	// Overlay is the kustomization rendered and applied, relative to the module root.
	Overlay string
	// Namespace replaces the overlay's namespace, so that several stacks can share one API server.
	Namespace string
	Kube      *kapitest.Server
	PG        *pgtest.Server
	// LiteLLM configures the double; its master key is generated when empty.
	LiteLLM litellmtest.Options
	// LiteLLMAddr is where the double listens (default: a free loopback port).
	LiteLLMAddr string
}

// Stack is a running local stack.
type Stack struct {
	Namespace   string
	MasterKey   string
	DatabaseURL string
	Kube        *kapitest.Server
	PG          *pgtest.Server
	LiteLLM     *litellmtest.Server
	Proxy       *litellmtest.Proxy
	// Objects are the rendered overlay, namespace replaced.
	Objects []*unstructured.Unstructured
	Job     *batchv1.Job
	Root    string

	dir     string
	ownKube bool
	ownPG   bool
	dbName  string
}

// Start renders the overlay, starts what is missing and applies every object except hook Jobs. The
// workloads are not ready until MarkReady.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	root, err := manifests.RepoRoot()
	if err != nil {
		return nil, err
	}
	if o.Overlay == "" {
		o.Overlay = "gitops/overlays/example"
	}
	if o.Namespace == "" {
		o.Namespace = "litemaas"
	}
	s := &Stack{Namespace: o.Namespace, Root: root, Kube: o.Kube, PG: o.PG}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.dir, err = os.MkdirTemp("", "litemaas-devstack-"); err != nil {
		return nil, err
	}
	objs, err := manifests.Render(filepath.Join(root, o.Overlay))
	if err != nil {
		return nil, err
	}
	s.Objects = setNamespace(objs, o.Namespace)
	for _, obj := range s.Objects {
		if obj.GetKind() == "Job" && obj.GetName() == JobName {
			s.Job = &batchv1.Job{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, s.Job); err != nil {
				return nil, fmt.Errorf("reading the rendered Job: %w", err)
			}
		}
	}
	if s.Job == nil {
		return nil, fmt.Errorf("%s renders no Job %q", o.Overlay, JobName)
	}
	c, err := s.container()
	if err != nil {
		return nil, err
	}
	if _, err := s.mountVolumes(c); err != nil {
		return nil, err
	}

	if s.PG == nil {
		if s.PG, err = pgtest.Start(); err != nil {
			return nil, fmt.Errorf("starting PostgreSQL: %w", err)
		}
		s.ownPG = true
	}
	if err := s.createDatabase(ctx); err != nil {
		return nil, err
	}

	lo := o.LiteLLM
	if lo.MasterKey == "" {
		lo.MasterKey = "sk-" + randomHex(16)
	}
	s.MasterKey = lo.MasterKey
	s.Proxy = litellmtest.New(lo)
	s.LiteLLM = litellmtest.NewServer(s.Proxy)
	addr := o.LiteLLMAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := s.LiteLLM.Start(addr); err != nil {
		return nil, fmt.Errorf("starting the LiteLLM double: %w", err)
	}

	if s.Kube == nil {
		if s.Kube, err = kapitest.Start(); err != nil {
			return nil, fmt.Errorf("starting kube-apiserver: %w", err)
		}
		s.ownKube = true
	}
	if err := s.applyAll(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops what the stack started and removes its files.
func (s *Stack) Close() {
	if s.LiteLLM != nil {
		_ = s.LiteLLM.Stop()
	}
	if s.ownKube && s.Kube != nil {
		s.Kube.Stop()
	}
	if s.PG != nil && s.dbName != "" {
		_ = s.adminExec(context.Background(), fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{s.dbName}.Sanitize()))
	}
	if s.ownPG && s.PG != nil {
		_ = s.PG.Stop()
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

func (s *Stack) createDatabase(ctx context.Context) error {
	s.dbName = "litemaas_db_" + randomHex(4)
	if err := s.adminExec(ctx, "CREATE DATABASE "+pgx.Identifier{s.dbName}.Sanitize()); err != nil {
		return fmt.Errorf("creating the backend database: %w", err)
	}
	s.DatabaseURL = s.PG.URL(s.dbName)
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// The backend creates its tables at start-up; locally the test fixture stands in for it.
	if _, err := conn.Exec(ctx, pgtest.SchemaSQL); err != nil {
		return fmt.Errorf("loading the LiteMaaS schema fixture: %w", err)
	}
	return nil
}

func (s *Stack) adminExec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.PG.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// applyAll creates the CRDs the tree uses, the Secrets the secrets job would create (with local
// values), and every rendered object but hook Jobs, which Argo CD runs rather than applies.
func (s *Stack) applyAll(ctx context.Context) error {
	// The OpenShift and Argo CD kinds the tree uses (Route, OAuthClient, Group, Application).
	objs, err := manifests.Render(filepath.Join(s.Root, "gitops", "test", "crds"))
	if err != nil {
		return err
	}
	for _, o := range s.Objects {
		if o.GetKind() == "Job" {
			continue
		}
		objs = append(objs, o)
	}
	if err := applyObjects(ctx, s.Kube.Config, objs); err != nil {
		return err
	}
	return s.createSecrets(ctx)
}

func (s *Stack) createSecrets(ctx context.Context) error {
	admin := "ltm_admin_" + randomHex(16)
	secrets := map[string]map[string]string{
		"postgres-secret": {"POSTGRES_USER": "litemaas_admin", "POSTGRES_PASSWORD": randomHex(16)},
		"litellm-secret":  {"LITELLM_MASTER_KEY": s.MasterKey, "LITELLM_SALT_KEY": randomHex(16), "DATABASE_URL": s.PG.URL("litellm_db")},
		"backend-secret": {"DATABASE_URL": s.DatabaseURL, "JWT_SECRET": randomHex(24), "OAUTH_CLIENT_SECRET": randomHex(16),
			"ADMIN_API_KEYS": admin, "LITELLM_API_KEY": s.MasterKey, "LITELLM_DATABASE_URL": s.PG.URL("litellm_db")},
	}
	cs, err := kubernetes.NewForConfig(s.Kube.Config)
	if err != nil {
		return err
	}
	for name, data := range secrets {
		_, err := cs.CoreV1().Secrets(s.Namespace).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.Namespace},
			StringData: data,
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating Secret %s: %w", name, err)
		}
	}
	return nil
}

// MarkReady writes, for every Deployment and StatefulSet, the status its controller writes once it
// is rolled out (no controller runs here).
func (s *Stack) MarkReady(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(s.Kube.Config)
	if err != nil {
		return err
	}
	for _, o := range s.Objects {
		switch o.GetKind() {
		case "Deployment":
			d, err := cs.AppsV1().Deployments(s.Namespace).Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			d.Status = kapitest.RolledOutDeploymentStatus(d)
			if _, err := cs.AppsV1().Deployments(s.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("marking deployment/%s ready: %w", o.GetName(), err)
			}
		case "StatefulSet":
			st, err := cs.AppsV1().StatefulSets(s.Namespace).Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			st.Status = kapitest.RolledOutStatefulSetStatus(st)
			if _, err := cs.AppsV1().StatefulSets(s.Namespace).UpdateStatus(ctx, st, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("marking statefulset/%s ready: %w", o.GetName(), err)
			}
		}
	}
	return nil
}

// Workloads lists the stack's Deployments and StatefulSets as kind/name.
func (s *Stack) Workloads() []string {
	var w []string
	for _, o := range s.Objects {
		switch o.GetKind() {
		case "Deployment", "StatefulSet":
			w = append(w, strings.ToLower(o.GetKind())+"/"+o.GetName())
		}
	}
	return w
}

// Command is the Job's container command, run locally: binary with the Job's arguments and its
// environment resolved against the local stack. extraEnv entries (NAME=value) override it.
func (s *Stack) Command(ctx context.Context, binary string, extraEnv ...string) (*exec.Cmd, error) {
	c, err := s.container()
	if err != nil {
		return nil, err
	}
	env, err := s.JobEnv(ctx)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, binary, append(append([]string{}, c.Command[min(len(c.Command), 1):]...), c.Args...)...)
	cmd.Env = append(env, extraEnv...)
	cmd.Dir = s.dir
	return cmd, nil
}

func (s *Stack) container() (*corev1.Container, error) {
	for i := range s.Job.Spec.Template.Spec.Containers {
		c := &s.Job.Spec.Template.Spec.Containers[i]
		if c.Name == JobName {
			return c, nil
		}
	}
	return nil, fmt.Errorf("the Job has no container %q", JobName)
}

// JobEnv resolves the Job container's environment as the kubelet would, for a local run.
func (s *Stack) JobEnv(ctx context.Context) ([]string, error) {
	c, err := s.container()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(s.Kube.Config)
	if err != nil {
		return nil, err
	}
	mounts, err := s.mountVolumes(c)
	if err != nil {
		return nil, err
	}
	services := map[string]string{
		"http://litellm:4000": s.LiteLLM.URL(),
	}
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			sec, err := cs.CoreV1().Secrets(s.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			b, ok := sec.Data[ref.Key]
			if !ok {
				return nil, fmt.Errorf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			v = string(b)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			v = s.Namespace
		default:
			return nil, fmt.Errorf("env %s: unsupported valueFrom", e.Name)
		}
		for from, to := range services {
			v = strings.ReplaceAll(v, from, to)
		}
		for from, to := range mounts {
			if strings.HasPrefix(v, from+"/") {
				v = to + strings.TrimPrefix(v, from)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	kubeconfig, err := s.serviceAccountKubeconfig(ctx, s.Job.Spec.Template.Spec.ServiceAccountName)
	if err != nil {
		return nil, err
	}
	return append(env, "KUBECONFIG="+kubeconfig), nil
}

// mountVolumes writes the Job's ConfigMap volumes to files and maps each mount path to its folder.
func (s *Stack) mountVolumes(c *corev1.Container) (map[string]string, error) {
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		for _, v := range s.Job.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm := manifests.Find(s.Objects, "ConfigMap", v.ConfigMap.Name)
			if cm == nil {
				return nil, fmt.Errorf("volume %s: ConfigMap %s is not in the overlay", v.Name, v.ConfigMap.Name)
			}
			dir := filepath.Join(s.dir, "volumes", v.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
			for k, val := range data {
				// Written once: tests edit the mounted catalog between runs, as a user edits the ConfigMap.
				if _, err := os.Stat(filepath.Join(dir, k)); err == nil {
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, k), []byte(val), 0o644); err != nil {
					return nil, err
				}
			}
			mounts[m.MountPath] = dir
		}
	}
	return mounts, nil
}

// CatalogPath is the local file standing in for the mounted catalog; tests edit it.
func (s *Stack) CatalogPath() string {
	return filepath.Join(s.dir, "volumes", "models", "models.yaml")
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates with a real token of sa (the
// TokenRequest API), so the job runs with exactly the rights the rendered RBAC grants.
func (s *Stack) serviceAccountKubeconfig(ctx context.Context, sa string) (string, error) {
	cs, err := kubernetes.NewForConfig(s.Kube.Config)
	if err != nil {
		return "", err
	}
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(s.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for ServiceAccount %s: %w", sa, err)
	}
	path := filepath.Join(s.dir, "kubeconfig-"+sa)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: s.Kube.Config.Host, CertificateAuthorityData: s.Kube.Config.CAData, CertificateAuthority: s.Kube.Config.CAFile}
	kc.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["job"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: sa, Namespace: s.Namespace}
	kc.CurrentContext = "job"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return "", err
	}
	return path, nil
}

// setNamespace moves every namespaced object, the Namespace itself and RoleBinding subjects to ns.
func setNamespace(objs []*unstructured.Unstructured, ns string) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		o = o.DeepCopy()
		switch {
		case o.GetKind() == "Namespace":
			o.SetName(ns)
		case o.GetNamespace() != "":
			o.SetNamespace(ns)
		}
		if o.GetKind() == "RoleBinding" {
			subs, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			for _, sub := range subs {
				if m, ok := sub.(map[string]any); ok && m["namespace"] != nil {
					m["namespace"] = ns
				}
			}
			_ = unstructured.SetNestedSlice(o.Object, subs, "subjects")
		}
		out = append(out, o)
	}
	return out
}

// applyObjects creates or updates objects with server-side apply, CRDs and Namespaces first.
func applyObjects(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) error {
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
	rank := func(o *unstructured.Unstructured) int {
		switch o.GetKind() {
		case "CustomResourceDefinition":
			return 0
		case "Namespace":
			return 1
		}
		return 2
	}
	for r := 0; r <= 2; r++ {
		for _, o := range objs {
			if rank(o) != r {
				continue
			}
			gvk := o.GroupVersionKind()
			var mapping *meta.RESTMapping
			for i := 0; ; i++ {
				mapping, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				if err == nil || i == 50 {
					break
				}
				// A CRD applied a moment ago may not be in discovery yet.
				mapper.Reset()
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(100 * time.Millisecond):
				}
			}
			if err != nil {
				return fmt.Errorf("applying %s %s: %w", gvk.Kind, o.GetName(), err)
			}
			var ri dynamic.ResourceInterface = dc.Resource(mapping.Resource)
			if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
				ri = dc.Resource(mapping.Resource).Namespace(o.GetNamespace())
			}
			if _, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "devstack", Force: true}); err != nil {
				return fmt.Errorf("applying %s %s: %w", gvk.Kind, o.GetName(), err)
			}
		}
		if r == 0 {
			mapper.Reset()
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
