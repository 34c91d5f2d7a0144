package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

// The cluster's global pull secret: the kubelet of every node pulls with it, so an image it can pull
// is an image the hook Jobs can pull.
const (
	globalPullSecretNamespace = "openshift-config"
	globalPullSecretName      = "pull-secret"
)

// jobImagePullSecret is the Secret the component job-image-pull-secret names in the job pods'
// imagePullSecrets, for a private job image.
const jobImagePullSecret = "litemaas-job-image-pull"

// registryTransport carries deploy's registry lookups (always wrapped by jobimage.LoopbackHTTPOnly).
var registryTransport http.RoundTripper = remote.DefaultTransport

// registryTimeout bounds the lookup of one image.
const registryTimeout = 30 * time.Second

// hookImage is an image the overlay's Argo CD hook Jobs run, with what the kubelet pulls it with.
type hookImage struct {
	ref         string
	jobs        []string
	namespace   string
	pullSecrets []string // imagePullSecrets of the Jobs' pods and ServiceAccounts
}

// hookImages returns the images of the hook Jobs (Argo CD's argocd.argoproj.io/hook) in objs.
func hookImages(objs []*unstructured.Unstructured) []*hookImage {
	sas := map[string][]string{}
	for _, o := range objs {
		if o.GetKind() == "ServiceAccount" && o.GetAPIVersion() == "v1" {
			var sa corev1.ServiceAccount
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &sa); err == nil {
				for _, s := range sa.ImagePullSecrets {
					sas[o.GetNamespace()+"/"+o.GetName()] = append(sas[o.GetNamespace()+"/"+o.GetName()], s.Name)
				}
			}
		}
	}
	var out []*hookImage
	byRef := map[string]*hookImage{}
	for _, o := range objs {
		if o.GetKind() != "Job" || o.GetAnnotations()["argocd.argoproj.io/hook"] == "" {
			continue
		}
		var spec corev1.PodSpec
		if m, ok, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec"); ok {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &spec); err != nil {
				continue
			}
		}
		sa := spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		secrets := sas[o.GetNamespace()+"/"+sa]
		for _, s := range spec.ImagePullSecrets {
			secrets = append(secrets, s.Name)
		}
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			h := byRef[c.Image]
			if h == nil {
				h = &hookImage{ref: c.Image, namespace: o.GetNamespace()}
				byRef[c.Image] = h
				out = append(out, h)
			}
			if !slices.Contains(h.jobs, o.GetName()) {
				h.jobs = append(h.jobs, o.GetName())
			}
			for _, s := range secrets {
				if !slices.Contains(h.pullSecrets, s) {
					h.pullSecrets = append(h.pullSecrets, s)
				}
			}
		}
	}
	return out
}

// checkJobImages looks up, in its registry, the manifest of every image the overlay's hook Jobs run:
// without it the first sync's PreSync Job cannot start, and the sync fails before any workload exists.
func checkJobImages(ctx context.Context, c *cluster.Cluster, overlayDir, overlayRel string) []report.Row {
	objs, err := manifests.Render(overlayDir)
	if err != nil {
		return []report.Row{{Component: "job image", Check: "renders", Status: report.StatusFail, Detail: fmt.Sprintf("%s does not build: %v", overlayRel, err)}}
	}
	images := hookImages(objs)
	if len(images) == 0 {
		return []report.Row{{Component: "job image", Check: "hook Jobs", Status: report.StatusWarn, Detail: overlayRel + " renders no Argo CD hook Job: is it a LiteMaaS overlay?"}}
	}
	var rows []report.Row
	for _, h := range images {
		rows = append(rows, checkJobImage(ctx, c, h, overlayRel))
	}
	return rows
}

func checkJobImage(ctx context.Context, c *cluster.Cluster, h *hookImage, overlayRel string) report.Row {
	check := "pull (Jobs " + strings.Join(h.jobs, ", ") + ")"
	ctx, cancel := context.WithTimeout(ctx, registryTimeout)
	defer cancel()
	anon := jobimage.RegistryOptions{Transport: registryTransport}
	digest, err := jobimage.Lookup(ctx, h.ref, anon)
	if err == nil {
		return report.Row{Component: "job image", Check: check, Status: report.StatusOK, Detail: fmt.Sprintf("%s is %s (public)", h.ref, digest)}
	}
	var ce *jobimage.CheckError
	if !errors.As(err, &ce) {
		ce = &jobimage.CheckError{Ref: h.ref, Kind: jobimage.Unreachable, Err: err}
	}
	publish := publishHint(h.ref, overlayRel)
	switch ce.Kind {
	case jobimage.NotFound:
		return report.Row{Component: "job image", Check: check, Status: report.StatusFail, Detail: fmt.Sprintf("%s does not exist (%v): %s", h.ref, shortRegistryErr(err), publish)}
	case jobimage.Unreachable:
		return report.Row{Component: "job image", Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf("cannot check %s from here (%v); the cluster may still reach it (a mirror, a proxy)", h.ref, shortRegistryErr(err))}
	}

	// The registry wants credentials: try those the kubelet would use.
	var tried []string
	for _, src := range pullCredentials(ctx, c, h) {
		if src.err != "" {
			tried = append(tried, src.what+": "+src.err)
			continue
		}
		digest, err := jobimage.Lookup(ctx, h.ref, jobimage.RegistryOptions{Keychain: src.keychain, Transport: registryTransport})
		if err == nil {
			return report.Row{Component: "job image", Check: check, Status: report.StatusOK, Detail: fmt.Sprintf("%s is %s (private; pulled with %s)", h.ref, digest, src.what)}
		}
		if errors.As(err, &ce) && ce.Kind == jobimage.NotFound {
			return report.Row{Component: "job image", Check: check, Status: report.StatusFail, Detail: fmt.Sprintf("%s does not exist (%v, with %s): %s", h.ref, shortRegistryErr(err), src.what, publish)}
		}
		tried = append(tried, fmt.Sprintf("%s: %v", src.what, shortRegistryErr(err)))
	}
	reg := registryOf(h.ref)
	detail := fmt.Sprintf("%s: the registry asks for credentials (anonymous: %v", h.ref, shortRegistryErr(err))
	for _, t := range tried {
		detail += "; " + t
	}
	detail += "). Either the image is not published yet: " + publish + ". Or it is private:"
	if reg == "ghcr.io" {
		detail += " a new package on ghcr.io is usually private; make it public (GitHub: the package's Package settings, Change visibility, Public),"
	} else {
		detail += " make it public in " + reg + ","
	}
	detail += fmt.Sprintf(" or give the hook Jobs a pull secret: create Secret %s in namespace %s (oc create secret docker-registry %s -n %s --docker-server=%s --docker-username=... --docker-password=...) and add the component ../../components/job-image-pull-secret to %s (see images/README.md).",
		jobImagePullSecret, h.namespace, jobImagePullSecret, h.namespace, reg, overlayRel)
	return report.Row{Component: "job image", Check: check, Status: report.StatusFail, Detail: detail}
}

// publishHint is the command that publishes the job image under ref.
func publishHint(ref, overlayRel string) string {
	target := ref
	if r, err := name.ParseReference(ref); err == nil {
		if _, isDigest := r.(name.Digest); isDigest {
			target = r.Context().Name() + ":<tag>"
		}
	}
	return fmt.Sprintf("publish it with `make image image-push IMAGE=%s` or from your fork's image workflow (.github/workflows/image.yaml), then pin the digest it prints in %s/kustomization.yaml", target, overlayRel)
}

func registryOf(ref string) string {
	if r, err := name.ParseReference(ref); err == nil {
		return r.Context().RegistryStr()
	}
	return ref
}

// shortRegistryErr keeps the registry's answer and drops the "GET <URL>: " go-containerregistry puts first.
func shortRegistryErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.Index(s[i:], ": "); j >= 0 {
			return s[i+j+2:]
		}
	}
	return s
}

// credentialSource is one set of credentials the kubelet could pull with.
type credentialSource struct {
	what     string
	keychain authn.Keychain
	err      string // why it cannot be used
}

// pullCredentials are the Jobs' own pull secrets (readable once the namespace exists), then the
// cluster's global pull secret.
func pullCredentials(ctx context.Context, c *cluster.Cluster, h *hookImage) []credentialSource {
	if c == nil {
		return []credentialSource{{what: "the cluster's pull secrets", err: "not read (no cluster connection)"}}
	}
	var out []credentialSource
	for _, s := range h.pullSecrets {
		out = append(out, secretCredentials(ctx, c, h.namespace, s, registryOf(h.ref)))
	}
	return append(out, secretCredentials(ctx, c, globalPullSecretNamespace, globalPullSecretName, registryOf(h.ref)))
}

func secretCredentials(ctx context.Context, c *cluster.Cluster, ns, name, registry string) credentialSource {
	src := credentialSource{what: "Secret " + ns + "/" + name}
	if ns == globalPullSecretNamespace && name == globalPullSecretName {
		src.what = "the cluster's global pull secret " + ns + "/" + name
	}
	s, err := c.Kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		src.err = "not found"
		return src
	case apierrors.IsForbidden(err):
		src.err = "not readable with your rights"
		return src
	case err != nil:
		src.err = err.Error()
		return src
	}
	data := s.Data[corev1.DockerConfigJsonKey]
	if len(data) == 0 {
		src.err = "holds no " + corev1.DockerConfigJsonKey
		return src
	}
	if !jobimage.HasEntry(data, registry) {
		src.err = "has no entry for " + registry
		return src
	}
	kc, err := jobimage.DockerConfigKeychain(data)
	if err != nil {
		src.err = err.Error()
		return src
	}
	src.keychain = kc
	return src
}

// templateJobImage is the job image the template overlay runs.
func templateJobImage(root string) string {
	objs, err := manifests.Render(filepath.Join(root, filepath.FromSlash(tree.TemplateOverlay)))
	if err != nil {
		return jobimage.DefaultName
	}
	if imgs := hookImages(objs); len(imgs) > 0 {
		return imgs[0].ref
	}
	return jobimage.DefaultName
}

// OpenShift's monitoring configuration: user workload monitoring (the Prometheus and Thanos Ruler that
// evaluate a namespace's PrometheusRules and scrape its PodMonitors) runs only with
// enableUserWorkload: true in this ConfigMap's config.yaml.
const (
	monitoringNamespace     = "openshift-monitoring"
	monitoringConfigMap     = "cluster-monitoring-config"
	monitoringConfigKey     = "config.yaml"
	enableUserWorkloadPatch = `oc -n openshift-monitoring patch configmap cluster-monitoring-config --type merge -p '{"data":{"config.yaml":"enableUserWorkload: true\n"}}'` +
		` (or create it: oc -n openshift-monitoring create configmap cluster-monitoring-config --from-literal=config.yaml='enableUserWorkload: true'; merge into an existing config.yaml rather than replacing it)`
)

// checkUserWorkloadMonitoring says whether the overlay's alerts and PodMonitors will be evaluated: an
// overlay with a PrometheusRule or PodMonitor (the alerts component, the ha profile) on a cluster with
// user workload monitoring off syncs fine and never alerts. No row for an overlay without them.
func checkUserWorkloadMonitoring(ctx context.Context, c *cluster.Cluster, objs []*unstructured.Unstructured) []report.Row {
	var kinds []string
	for _, o := range objs {
		if k := o.GetKind(); (k == "PrometheusRule" || k == "PodMonitor") && strings.HasPrefix(o.GetAPIVersion(), "monitoring.coreos.com/") {
			kinds = append(kinds, k+"/"+o.GetName())
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	const component, check = "monitoring", "user workload monitoring"
	what := strings.Join(kinds, ", ")
	cm, err := c.Kube.CoreV1().ConfigMaps(monitoringNamespace).Get(ctx, monitoringConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return []report.Row{{Component: component, Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf("off (no ConfigMap %s/%s): %s would never be evaluated, no alert would fire; enable it: %s", monitoringNamespace, monitoringConfigMap, what, enableUserWorkloadPatch)}}
	case err != nil:
		return []report.Row{{Component: component, Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf("cannot read ConfigMap %s/%s (%v): make sure enableUserWorkload: true is set there, or %s is never evaluated", monitoringNamespace, monitoringConfigMap, err, what)}}
	}
	var cfg struct {
		EnableUserWorkload *bool `json:"enableUserWorkload"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data[monitoringConfigKey]), &cfg); err != nil {
		return []report.Row{{Component: component, Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf("ConfigMap %s/%s: %s does not parse (%v): the monitoring operator ignores it, so user workload monitoring is off and %s is never evaluated", monitoringNamespace, monitoringConfigMap, monitoringConfigKey, err, what)}}
	}
	if cfg.EnableUserWorkload == nil || !*cfg.EnableUserWorkload {
		return []report.Row{{Component: component, Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf("off (enableUserWorkload is not true in %s/%s): %s would never be evaluated, no alert would fire; enable it: %s", monitoringNamespace, monitoringConfigMap, what, enableUserWorkloadPatch)}}
	}
	return []report.Row{{Component: component, Check: check, Status: report.StatusOK, Detail: fmt.Sprintf("on: %s evaluated", what)}}
}

// checkOverlayMonitoring renders the overlay and runs checkUserWorkloadMonitoring on it (a render
// failure is checkJobImages' row).
func checkOverlayMonitoring(ctx context.Context, c *cluster.Cluster, overlayDir string) []report.Row {
	objs, err := manifests.Render(overlayDir)
	if err != nil {
		return nil
	}
	return checkUserWorkloadMonitoring(ctx, c, objs)
}
