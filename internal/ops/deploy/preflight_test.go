package deploy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/initoverlay"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

// Tests talk only to loopback: deploy's lookup of an image elsewhere (the tree's ghcr.io image) answers
// as an unreachable registry, a warning.
func init() {
	registryTransport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if !jobimage.IsLoopback(req.URL.Hostname()) {
			return nil, fmt.Errorf("dial tcp %s: tests reach only loopback", req.URL.Host)
		}
		return http.DefaultTransport.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// testRegistry is an in-process registry on loopback, optionally behind HTTP basic auth.
type testRegistry struct {
	host       string
	user, pass string
}

func newTestRegistry(t *testing.T, user, pass string) *testRegistry {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if user != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return &testRegistry{host: strings.TrimPrefix(s.URL, "http://"), user: user, pass: pass}
}

// push pushes a small random index (the registry's answer is what deploy checks, not the content).
func (r *testRegistry) push(t *testing.T, repoTag string) string {
	t.Helper()
	idx, err := random.Index(64, 1, 2)
	require.NoError(t, err)
	o := jobimage.RegistryOptions{}
	if r.user != "" {
		kc, err := jobimage.DockerConfigKeychain(r.dockerConfig())
		require.NoError(t, err)
		o.Keychain = kc
	}
	d, err := jobimage.Push(context.Background(), idx, r.host+"/"+repoTag, o)
	require.NoError(t, err)
	return d.DigestStr()
}

func (r *testRegistry) dockerConfig() []byte {
	auth := base64.StdEncoding.EncodeToString([]byte(r.user + ":" + r.pass))
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{r.host: map[string]string{"auth": auth}}})
	return b
}

// pinJobImage points the copy's example overlay at ref, as a fork does after `make image-push`.
func pinJobImage(t *testing.T, root, ref string) {
	t.Helper()
	require.NoError(t, initoverlay.SetJobImage(root, tree.DefaultOverlay, ref))
}

// jobImageRows runs deploy's preflight and returns its job image rows.
func jobImageRows(t *testing.T, root string) []report.Row {
	t.Helper()
	o := Options{Root: root, RepoURL: testRepoURL, Yes: true, Out: io.Discard}
	_, rows, err := preflight(context.Background(), newCluster(t, srv.Config), &o)
	require.NoError(t, err)
	var out []report.Row
	for _, r := range rows {
		if r.Component == "job image" {
			out = append(out, r)
		}
	}
	return out
}

func TestPreflightJobImageMissingStopsDeploy(t *testing.T) {
	setupCluster(t)
	reg := newTestRegistry(t, "", "")
	reg.push(t, "my-org/litemaas-sync:0.0.9") // the repository exists, the tag does not
	root := repoCopy(t)
	ref := reg.host + "/my-org/litemaas-sync:0.1.0"
	pinJobImage(t, root, ref)

	var out bytes.Buffer
	err := Deploy(context.Background(), newCluster(t, srv.Config), Options{Root: root, RepoURL: testRepoURL, Yes: true, Timeout: time.Second, Out: &out})
	t.Logf("deploy with a job image that was never pushed:\n%s\nerror: %v", out.String(), err)
	var pe *report.ProblemsError
	require.ErrorAs(t, err, &pe)
	o := squeeze(out.String())
	assert.Contains(t, o, squeeze("job image pull (Jobs litemaas-secrets, litemaas-sync) FAIL "+ref+" does not exist (MANIFEST_UNKNOWN: Unknown manifest): publish it with `make image image-push IMAGE="+ref+"`"))
	assert.Contains(t, o, "then pin the digest it prints in gitops/overlays/example/kustomization.yaml")
	assert.NotContains(t, o, "Applying")

	// Another repository, never pushed: the same answer.
	pinJobImage(t, root, reg.host+"/nobody/litemaas-sync:0.1.0")
	rows := jobImageRows(t, root)
	require.Len(t, rows, 1)
	assert.Equal(t, report.StatusFail, rows[0].Status)
	assert.Contains(t, rows[0].Detail, "does not exist (NAME_UNKNOWN")
}

func TestPreflightJobImagePresentPasses(t *testing.T) {
	setupCluster(t)
	reg := newTestRegistry(t, "", "")
	digest := reg.push(t, "my-org/litemaas-sync:0.1.0")
	for name, ref := range map[string]string{
		"by tag":    reg.host + "/my-org/litemaas-sync:0.1.0",
		"by digest": reg.host + "/my-org/litemaas-sync@" + digest,
	} {
		t.Run(name, func(t *testing.T) {
			root := repoCopy(t)
			pinJobImage(t, root, ref)
			rows := jobImageRows(t, root)
			t.Logf("%+v", rows)
			require.Len(t, rows, 1, "both hook Jobs run one image")
			assert.Equal(t, report.Row{Component: "job image", Check: "pull (Jobs litemaas-secrets, litemaas-sync)", Status: report.StatusOK, Detail: ref + " is " + digest + " (public)"}, rows[0])
		})
	}
}

// TestPreflightTreeImageUnreachableWarns: the tree's own image, out of the tests' reach, is a warning:
// a cluster behind a mirror or proxy may pull what this machine cannot look up.
func TestPreflightTreeImageUnreachableWarns(t *testing.T) {
	setupCluster(t)
	rows := jobImageRows(t, repoCopy(t))
	require.Len(t, rows, 1)
	assert.Equal(t, report.StatusWarn, rows[0].Status)
	assert.Contains(t, rows[0].Detail, "cannot check ghcr.io/litemaas-gitops/litemaas-sync:0.1.0 from here")
}

func TestPreflightJobImageNeedsCredentials(t *testing.T) {
	setupCluster(t)
	ctx := context.Background()
	reg := newTestRegistry(t, "puller", "s3cret")
	digest := reg.push(t, "my-org/litemaas-sync:0.1.0")
	root := repoCopy(t)
	ref := reg.host + "/my-org/litemaas-sync:0.1.0"
	pinJobImage(t, root, ref)

	rows := jobImageRows(t, root)
	t.Logf("private image, no pull secret readable:\n%+v", rows)
	require.Len(t, rows, 1)
	assert.Equal(t, report.StatusFail, rows[0].Status)
	for _, want := range []string{
		ref + ": the registry asks for credentials (anonymous: UNAUTHORIZED: authentication required",
		"the cluster's global pull secret openshift-config/pull-secret: not found",
		"Either the image is not published yet: publish it with `make image image-push IMAGE=" + ref + "`",
		"Or it is private: make it public in " + reg.host,
		"create Secret litemaas-job-image-pull in namespace litemaas",
		"add the component ../../components/job-image-pull-secret to gitops/overlays/example",
	} {
		assert.Contains(t, rows[0].Detail, want)
	}
	assert.NotContains(t, rows[0].Detail, "s3cret")

	// The cluster's global pull secret, without an entry for the registry, then with one.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: globalPullSecretNamespace}}
	if _, err := srv.Clientset().CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: globalPullSecretName, Namespace: globalPullSecretNamespace},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"quay.io":{"auth":"eDp5"}}}`)},
	}
	_, err := srv.Clientset().CoreV1().Secrets(globalPullSecretNamespace).Create(ctx, secret, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = srv.Clientset().CoreV1().Secrets(globalPullSecretNamespace).Delete(context.Background(), globalPullSecretName, metav1.DeleteOptions{})
	})
	rows = jobImageRows(t, root)
	require.Len(t, rows, 1)
	assert.Equal(t, report.StatusFail, rows[0].Status)
	assert.Contains(t, rows[0].Detail, "the cluster's global pull secret openshift-config/pull-secret: has no entry for "+reg.host)

	secret.Data[corev1.DockerConfigJsonKey] = reg.dockerConfig()
	_, err = srv.Clientset().CoreV1().Secrets(globalPullSecretNamespace).Update(ctx, secret, metav1.UpdateOptions{})
	require.NoError(t, err)
	rows = jobImageRows(t, root)
	require.Len(t, rows, 1)
	assert.Equal(t, report.Row{Component: "job image", Check: "pull (Jobs litemaas-secrets, litemaas-sync)", Status: report.StatusOK,
		Detail: ref + " is " + digest + " (private; pulled with the cluster's global pull secret openshift-config/pull-secret)"}, rows[0])
}

// TestJobImagePullSecretComponent: the overlay knob names the Secret in the pod templates of the Jobs
// and the drift CronJob that run the job image (never on a ServiceAccount, where OpenShift appends its own
// dockercfg Secret), and the preflight pulls with that Secret.
func TestJobImagePullSecretComponent(t *testing.T) {
	setupCluster(t)
	root := repoCopy(t)
	overlay := filepath.Join(root, "gitops/overlays/example")
	k, err := os.ReadFile(filepath.Join(overlay, "kustomization.yaml"))
	require.NoError(t, err)
	k = bytes.Replace(k, []byte("components:\n  - settings\n"), []byte("components:\n  - settings\n  - ../../components/job-image-pull-secret\n"), 1)
	require.NoError(t, os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), k, 0o644))

	objs, err := manifests.Render(overlay)
	require.NoError(t, err)
	withSecret := map[string]bool{}
	for _, o := range objs {
		var path []string
		switch o.GetKind() {
		case "ServiceAccount":
			assert.NotContains(t, o.Object, "imagePullSecrets", "ServiceAccount/%s", o.GetName())
			continue
		case "Job":
			path = []string{"spec", "template", "spec"}
		case "CronJob":
			path = []string{"spec", "jobTemplate", "spec", "template", "spec"}
		default:
			continue
		}
		spec, _, _ := unstructured.NestedMap(o.Object, path...)
		var ps corev1.PodSpec
		require.NoError(t, jsonRoundTrip(spec, &ps))
		if len(ps.ImagePullSecrets) > 0 {
			assert.Equal(t, []corev1.LocalObjectReference{{Name: jobImagePullSecret}}, ps.ImagePullSecrets, o.GetName())
			withSecret[o.GetKind()+"/"+o.GetName()] = true
		}
	}
	assert.Equal(t, map[string]bool{"Job/litemaas-secrets": true, "Job/litemaas-sync": true, "CronJob/litemaas-sync-drift": true}, withSecret,
		"exactly the pods that run the job image")
	images := hookImages(objs)
	require.Len(t, images, 1)
	assert.Equal(t, []string{jobImagePullSecret}, images[0].pullSecrets)

	// With that Secret in the Jobs' namespace (a namespace of this test's own), the private image passes.
	reg := newTestRegistry(t, "puller", "s3cret")
	digest := reg.push(t, "my-org/litemaas-sync:0.1.0")
	ns := srv.CreateNamespace(t, "pullsecret")
	_, err = srv.Clientset().CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: jobImagePullSecret},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: reg.dockerConfig()},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	h := &hookImage{ref: reg.host + "/my-org/litemaas-sync:0.1.0", jobs: images[0].jobs, namespace: ns, pullSecrets: images[0].pullSecrets}
	r := checkJobImage(context.Background(), newCluster(t, srv.Config), h, tree.DefaultOverlay)
	assert.Equal(t, report.StatusOK, r.Status, r.Detail)
	assert.Equal(t, h.ref+" is "+digest+" (private; pulled with Secret "+ns+"/"+jobImagePullSecret+")", r.Detail)
}

func jsonRoundTrip(in map[string]any, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// TestInitOverlaySetsJobImage: --init-overlay asks for the job image (or takes --job-image), pins it in
// the new overlay, lists it in images/images.yaml, and checks it.
func TestInitOverlaySetsJobImage(t *testing.T) {
	setupCluster(t)
	reg := newTestRegistry(t, "", "")
	digest := reg.push(t, "my-org/litemaas-sync:0.1.0")
	byDigest := reg.host + "/my-org/litemaas-sync@" + digest

	tests := []struct {
		name, flag, answer string
		want               string // the overlay's entry
		wantRef, wantCheck string
	}{
		{"asked, by digest", "", byDigest + "\n", "newName: " + reg.host + "/my-org/litemaas-sync\n    digest: " + digest, byDigest, "OK"},
		{"flag, by tag", reg.host + "/my-org/litemaas-sync:0.1.0", "", "newName: " + reg.host + "/my-org/litemaas-sync\n    newTag: 0.1.0", reg.host + "/my-org/litemaas-sync:0.1.0", "OK"},
		{"asked, empty answer keeps the template's", "", "\n", "newTag: 0.1.0", "ghcr.io/litemaas-gitops/litemaas-sync:0.1.0", "WARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := repoCopy(t)
			require.NoError(t, os.CopyFS(filepath.Join(root, "images"), os.DirFS(filepath.Join(repoRoot(t), "images"))))
			var out bytes.Buffer
			err := Deploy(context.Background(), newCluster(t, srv.Config), Options{
				Root: root, RepoURL: testRepoURL, InitOverlay: "mycluster", JobImage: tt.flag,
				In: strings.NewReader(tt.answer), Out: &out,
			})
			t.Logf("deploy --init-overlay mycluster:\n%s", out.String())
			require.NoError(t, err)
			if tt.flag == "" {
				assert.Contains(t, out.String(), "Job image for the hook Jobs litemaas-secrets and litemaas-sync")
			}
			k, err := os.ReadFile(filepath.Join(root, "gitops/overlays/mycluster/kustomization.yaml"))
			require.NoError(t, err)
			assert.Contains(t, string(k), "  - name: ghcr.io/litemaas-gitops/litemaas-sync\n    "+tt.want+"\n")
			assert.Contains(t, string(k), "# The image versions this cluster runs.", "comments kept")
			assert.Contains(t, squeeze(out.String()), "job image pull (Jobs litemaas-secrets, litemaas-sync) "+tt.wantCheck)

			objs, err := manifests.Render(filepath.Join(root, "gitops/overlays/mycluster"))
			require.NoError(t, err)
			imgs := hookImages(objs)
			require.Len(t, imgs, 1)
			assert.Equal(t, tt.wantRef, imgs[0].ref)
			listed, err := os.ReadFile(filepath.Join(root, "images/images.yaml"))
			require.NoError(t, err)
			assert.Contains(t, string(listed), "- name: "+imgs[0].ref+"\n", "images/images.yaml lists the image the overlay runs")
		})
	}
}

// TestInitOverlayWithoutClusterChecksTheJobImage: --init-overlay --domain needs no cluster; the job
// image is still looked up, without the cluster's pull secrets.
func TestInitOverlayWithoutClusterChecksTheJobImage(t *testing.T) {
	reg := newTestRegistry(t, "puller", "s3cret")
	reg.push(t, "my-org/litemaas-sync:0.1.0")
	root := repoCopy(t)
	ref := reg.host + "/my-org/litemaas-sync:0.1.0"
	var out bytes.Buffer
	o := Options{Root: root, InitOverlay: "offline", Domain: "apps.offline.example.com", JobImage: ref, Out: &out}
	require.NoError(t, runInitOverlay(context.Background(), nil, o, &deployment{domain: o.Domain}, nil))
	t.Logf("deploy --init-overlay offline --domain ... --job-image %s:\n%s", ref, out.String())
	o2 := squeeze(out.String())
	assert.Contains(t, o2, "job image pull (Jobs litemaas-secrets, litemaas-sync) FAIL "+ref+": the registry asks for credentials (anonymous: UNAUTHORIZED: authentication required; the cluster's pull secrets: not read (no cluster connection))")
	assert.Contains(t, o2, "Fix these first:")
	k, err := os.ReadFile(filepath.Join(root, "gitops/overlays/offline/kustomization.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(k), "newName: "+reg.host+"/my-org/litemaas-sync\n    newTag: 0.1.0\n")
}
