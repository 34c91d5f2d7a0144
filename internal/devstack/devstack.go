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
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/openshifttest"
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
	// LiteLLMReplicas is the number of LiteLLM replicas sharing one database (default 1). The Job
	// talks to the first; the others see its writes on their polls (LiteLLM.PollInterval).
	LiteLLMReplicas int
	// SecretsJob, when set, is the litemaas-sync binary: the stack then runs the PreSync Job
	// litemaas-secrets as rendered (with the cluster-admin part applied first, as a cluster admin does),
	// and the database is set up for the user it generated. Otherwise the Secrets are made up locally.
	SecretsJob string
	// Log receives the secrets job's output (default: discarded).
	Log io.Writer
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
	// Replicas are every LiteLLM replica, LiteLLM first.
	Replicas []*litellmtest.Server
	// VLLM is the model server behind every catalog api_base.
	VLLM *litellmtest.VLLM
	// Objects are the rendered overlay, namespace replaced.
	Objects []*unstructured.Unstructured
	Job     *batchv1.Job
	Root    string
	// SecretsSummary is the secrets job's one-line outcome, when it ran.
	SecretsSummary string
	// PostgresTLS serves the CloudNativePG Cluster of the production profile: the local PostgreSQL
	// behind TLS with the Cluster's own CA, as the operator serves it (nil in the single-instance one).
	PostgresTLS *openshifttest.TLSServer

	dir     string
	ownKube bool
	ownPG   bool
	dbName  string
	// dbUser owns the database when the secrets job chose it.
	dbUser         string
	liteLLMOptions litellmtest.Options
	replicas       int
	vllmAddr       string
	vllmServer     *http.Server
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
	if s.Job, err = s.renderedJob(JobName); err != nil {
		return nil, err
	}
	c, err := container(s.Job)
	if err != nil {
		return nil, err
	}
	if _, err := s.mountVolumes(s.Job, c); err != nil {
		return nil, err
	}

	if s.PG == nil {
		if s.PG, err = pgtest.Start(); err != nil {
			return nil, fmt.Errorf("starting PostgreSQL: %w", err)
		}
		s.ownPG = true
	}
	if c := s.cnpgCluster(); c != nil {
		pgURL, err := url.Parse(s.PG.URL("postgres"))
		if err != nil {
			return nil, err
		}
		if s.PostgresTLS, err = openshifttest.StartTLSServer(s.Namespace, c.GetName(), pgURL.Host); err != nil {
			return nil, fmt.Errorf("serving PostgreSQL with TLS: %w", err)
		}
	}
	lo := o.LiteLLM
	if lo.MasterKey == "" {
		lo.MasterKey = "sk-" + randomHex(16)
	}
	s.MasterKey = lo.MasterKey
	s.liteLLMOptions = lo
	s.replicas = o.LiteLLMReplicas
	if err := s.startModelServer(); err != nil {
		return nil, err
	}
	addr := o.LiteLLMAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := s.startLiteLLM(lo, s.replicas, addr); err != nil {
		return nil, err
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
	if o.SecretsJob == "" {
		if err := s.createDatabase(ctx); err != nil {
			return nil, err
		}
		if err := s.createSecrets(ctx); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := s.runSecretsJob(ctx, o); err != nil {
		return nil, err
	}
	if err := s.createDatabase(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// runSecretsJob applies the overlay's cluster-admin part (OAuthClient, groups, the job's rights on that
// OAuthClient) and runs the PreSync Job litemaas-secrets as rendered, with its ServiceAccount's token.
func (s *Stack) runSecretsJob(ctx context.Context, o Options) error {
	cluster, err := manifests.Render(filepath.Join(s.Root, o.Overlay, "cluster"))
	if err != nil {
		return fmt.Errorf("rendering the cluster-admin part: %w", err)
	}
	if err := s.Kube.ApplyObjects(ctx, setNamespace(cluster, s.Namespace)...); err != nil {
		return err
	}
	job, err := s.renderedJob("litemaas-secrets")
	if err != nil {
		return err
	}
	cmd, err := s.jobCommand(ctx, job, o.SecretsJob)
	if err != nil {
		return err
	}
	var out strings.Builder
	w := io.Writer(&out)
	if o.Log != nil {
		w = io.MultiWriter(&out, o.Log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the secrets job failed: %w\n%s", err, out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "secrets: ") {
			s.SecretsSummary = line
		}
	}
	cs, err := kubernetes.NewForConfig(s.Kube.Config)
	if err != nil {
		return err
	}
	// The backend (and the job) connect as the role of backend-secret's DATABASE_URL, which owns
	// litemaas_db in the cluster.
	sec, err := cs.CoreV1().Secrets(s.Namespace).Get(ctx, "backend-secret", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("the secrets job made no backend-secret: %w", err)
	}
	u, err := url.Parse(string(sec.Data["DATABASE_URL"]))
	if err != nil || u.User == nil || u.User.Username() == "" {
		return errors.New("the secrets job wrote a backend-secret DATABASE_URL without a user")
	}
	s.dbUser = u.User.Username()
	if cm, err := cs.CoreV1().Secrets(s.Namespace).Get(ctx, "litellm-secret", metav1.GetOptions{}); err == nil {
		// The LiteLLM double plays the proxy that was started with this master key.
		if k := string(cm.Data["LITELLM_MASTER_KEY"]); k != "" && k != s.MasterKey {
			if err := s.restartLiteLLMWithKey(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// restartLiteLLMWithKey replaces the double with one that uses the generated master key, on the same
// address, as LiteLLM would start from the generated Secret.
func (s *Stack) restartLiteLLMWithKey(key string) error {
	addr := strings.TrimPrefix(s.LiteLLM.URL(), "http://")
	if err := s.stopLiteLLM(); err != nil {
		return err
	}
	opts := s.liteLLMOptions
	opts.MasterKey = key
	s.MasterKey = key
	return s.startLiteLLM(opts, s.replicas, addr)
}

func (s *Stack) renderedJob(name string) (*batchv1.Job, error) {
	for _, obj := range s.Objects {
		if obj.GetKind() == "Job" && obj.GetName() == name {
			job := &batchv1.Job{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, job); err != nil {
				return nil, fmt.Errorf("reading the rendered Job %s: %w", name, err)
			}
			return job, nil
		}
	}
	return nil, fmt.Errorf("the overlay renders no Job %q", name)
}

// Close stops what the stack started and removes its files.
func (s *Stack) Close() {
	_ = s.stopLiteLLM()
	if s.vllmServer != nil {
		_ = s.vllmServer.Close()
	}
	if s.ownKube && s.Kube != nil {
		s.Kube.Stop()
	}
	if s.PostgresTLS != nil {
		s.PostgresTLS.Close()
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
	create := "CREATE DATABASE " + pgx.Identifier{s.dbName}.Sanitize()
	if c := s.cnpgCluster(); c != nil {
		owner, err := s.createCNPGRoles(ctx, c)
		if err != nil {
			return err
		}
		s.dbUser = owner
	}
	if s.dbUser != "" {
		// The backend creates its tables as the user of its DATABASE_URL, so that user owns them and
		// may ALTER users.oauth_id: the local stand-in does the same.
		role := pgx.Identifier{s.dbUser}.Sanitize()
		if err := s.adminExec(ctx, fmt.Sprintf(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %s) THEN CREATE ROLE %s LOGIN; END IF; END $$`, quoteLiteral(s.dbUser), role)); err != nil {
			return fmt.Errorf("creating role %s: %w", s.dbUser, err)
		}
		create += " OWNER " + role
	}
	if err := s.adminExec(ctx, create); err != nil {
		return fmt.Errorf("creating the backend database: %w", err)
	}
	s.DatabaseURL = s.PG.URL(s.dbName)
	if s.dbUser != "" {
		u, err := url.Parse(s.DatabaseURL)
		if err != nil {
			return err
		}
		u.User = url.User(s.dbUser)
		s.DatabaseURL = u.String()
	}
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

func quoteLiteral(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

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
	// The production profile's CloudNativePG and monitoring objects need their operators' CRDs.
	if s.cnpgCluster() != nil {
		upstream, err := manifests.UpstreamCRDs()
		if err != nil {
			return err
		}
		objs = append(objs, upstream...)
	}
	for _, o := range s.Objects {
		if o.GetKind() == "Job" {
			continue
		}
		objs = append(objs, o)
	}
	return s.Kube.ApplyObjects(ctx, objs...)
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
		case "Cluster":
			if err := s.markCNPGClusterReady(ctx, o); err != nil {
				return err
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
	return s.jobCommand(ctx, s.Job, binary, extraEnv...)
}

func (s *Stack) jobCommand(ctx context.Context, job *batchv1.Job, binary string, extraEnv ...string) (*exec.Cmd, error) {
	c, err := container(job)
	if err != nil {
		return nil, err
	}
	env, err := s.jobEnv(ctx, job)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, binary, append(append([]string{}, c.Command[min(len(c.Command), 1):]...), c.Args...)...)
	cmd.Env = append(env, extraEnv...)
	cmd.Dir = s.dir
	return cmd, nil
}

// container is the Job's container named like the Job.
func container(job *batchv1.Job) (*corev1.Container, error) {
	for i := range job.Spec.Template.Spec.Containers {
		c := &job.Spec.Template.Spec.Containers[i]
		if c.Name == job.Name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("the Job %s has no container of its name", job.Name)
}

// JobEnv resolves the PostSync Job container's environment as the kubelet would, for a local run.
func (s *Stack) JobEnv(ctx context.Context) ([]string, error) {
	return s.jobEnv(ctx, s.Job)
}

func (s *Stack) jobEnv(ctx context.Context, job *batchv1.Job) ([]string, error) {
	c, err := container(job)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(s.Kube.Config)
	if err != nil {
		return nil, err
	}
	mounts, err := s.mountVolumes(job, c)
	if err != nil {
		return nil, err
	}
	pgURL, err := url.Parse(s.PG.URL("x"))
	if err != nil {
		return nil, err
	}
	// In-cluster addresses, pointed at the local servers.
	services := map[string]string{
		"http://litellm:4000": s.LiteLLM.URL(),
		"@postgres:5432/":     "@" + pgURL.Host + "/",
	}
	if c := s.cnpgCluster(); c != nil && s.PostgresTLS != nil {
		services["@"+c.GetName()+"-rw:5432/"] = "@" + s.PostgresTLS.Addr() + "/"
	}
	if s.dbName != "" {
		services["/litemaas_db?"] = "/" + s.dbName + "?"
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
		case e.ValueFrom.FieldRef != nil && strings.HasPrefix(e.ValueFrom.FieldRef.FieldPath, "metadata.labels["):
			// The Job controller's pod labels (JOB_NAME, JOB_UID): a local run belongs to no Job, so
			// it records no Event, as the label's absence resolves to "" on a node.
			v = ""
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
			// A file a URL's query names (libpq's sslrootcert=/path).
			v = strings.ReplaceAll(v, "="+from+"/", "="+to+"/")
		}
		env = append(env, e.Name+"="+v)
	}
	kubeconfig, err := s.serviceAccountKubeconfig(ctx, job.Spec.Template.Spec.ServiceAccountName)
	if err != nil {
		return nil, err
	}
	return append(env, "KUBECONFIG="+kubeconfig), nil
}

// mountVolumes writes the Job's ConfigMap volumes, and the CloudNativePG CA's, to files and maps each
// mount path to its folder.
func (s *Stack) mountVolumes(job *batchv1.Job, c *corev1.Container) (map[string]string, error) {
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		for _, v := range job.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				dir, err := s.mountClusterCA(v)
				if err != nil {
					return nil, err
				}
				if dir != "" {
					mounts[m.MountPath] = dir
				}
				continue
			}
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
		if o.GetKind() == "RoleBinding" || o.GetKind() == "ClusterRoleBinding" {
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

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// mountClusterCA writes the items of a volume of Secret <cluster>-ca, the one Secret volume the stack
// plays (as the operator makes it), and returns its folder; "" before the Cluster's server runs.
func (s *Stack) mountClusterCA(v corev1.Volume) (string, error) {
	c := s.cnpgCluster()
	if c == nil || s.PostgresTLS == nil {
		return "", nil
	}
	if v.Secret.SecretName != c.GetName()+"-ca" {
		return "", fmt.Errorf("volume %s: Secret %s is not played by the local stack", v.Name, v.Secret.SecretName)
	}
	data := map[string][]byte{"ca.crt": s.PostgresTLS.CACert, "ca.key": s.PostgresTLS.CAKey}
	dir := filepath.Join(s.dir, "volumes", v.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	items := v.Secret.Items
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		if _, ok := data[it.Key]; !ok {
			return "", fmt.Errorf("volume %s: Secret %s has no key %s", v.Name, v.Secret.SecretName, it.Key)
		}
		if err := os.WriteFile(filepath.Join(dir, it.Path), data[it.Key], 0o600); err != nil {
			return "", err
		}
	}
	return dir, nil
}
