// Package verify is `litemaas-ops verify`: it checks a running installation (pods, the models the job
// published against the catalog, backups, the images the hook Jobs ran, Routes, advisories) and, with
// --chat, sends one completion per served model through LiteLLM's Route.
package verify

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

// DefaultCatalog is the models catalog Argo CD deploys.
const DefaultCatalog = "gitops/base/models.yaml"

// backupCronJob is the CronJob of gitops/components/backup.
const backupCronJob = "postgres-backup"

// NewCommand is `litemaas-ops verify`; the connection logs to stderr.
func NewCommand(stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name: "verify", Args: "[--namespace litemaas] [--catalog gitops/base/models.yaml] [--skip-routes] [--insecure] [--chat]",
		Summary: "check pods, published models, backups and routes",
		New: func(fs *flag.FlagSet) cli.Runner {
			c := &Command{Connection: cluster.Connection{Log: stderr}}
			fs.StringVar(&c.Namespace, "namespace", tree.DefaultNamespace, "namespace LiteMaaS runs in")
			fs.StringVar(&c.Catalog, "catalog", DefaultCatalog, "models catalog to compare the published models with")
			fs.BoolVar(&c.SkipRoutes, "skip-routes", false, "do not send requests to the Routes (e.g. from outside the cluster's network)")
			fs.BoolVar(&c.Insecure, "insecure", false, "do not verify the Routes' TLS certificates (self-signed router certificate)")
			fs.BoolVar(&c.Chat, "chat", false, "also send one chat completion per served catalog model through the LiteLLM route, with a temporary virtual key")
			c.Connection.Bind(fs)
			return c
		},
	}
}

// Command is `litemaas-ops verify`.
type Command struct {
	Options
	cluster.Connection
}

// Run verifies the running installation.
func (c *Command) Run(ctx context.Context, out io.Writer) error {
	cl, err := c.Connect()
	if err != nil {
		return err
	}
	o := c.Options
	if r, err := tree.WorkRoot(); err == nil {
		o.Catalog = tree.InRepo(r, o.Catalog)
	}
	o.Out = out
	return Verify(ctx, cl, o)
}

// Options configures Verify.
type Options struct {
	Namespace string
	// Catalog is the models catalog the job's published models are compared with.
	Catalog    string
	SkipRoutes bool
	// Insecure skips TLS verification of the Route checks (self-signed router certificate).
	Insecure bool
	// HTTPClient makes the Route requests; nil builds one from Insecure.
	HTTPClient *http.Client
	// Chat sends one completion per served catalog model through LiteLLM's route (see ChatCheck).
	Chat bool
	Out  io.Writer
}

// publishedModel is one entry of models.json in the job's status ConfigMap (the job's contract).
type publishedModel struct {
	ID                 string `json:"id"`
	Catalog            string `json:"catalog"`
	LiteLLMDeployments int    `json:"litellmDeployments"`
	DeploymentID       string `json:"deploymentId"`
	Database           string `json:"database"`
}

// Verify checks a running installation and prints one table row per check. It returns a *ProblemsError
// when any check failed.
func Verify(ctx context.Context, c *cluster.Cluster, o Options) error {
	if o.Namespace == "" {
		o.Namespace = tree.DefaultNamespace
	}
	if o.Catalog == "" {
		o.Catalog = DefaultCatalog
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	var rows []report.Row
	if _, err := c.Kube.CoreV1().Namespaces().Get(ctx, o.Namespace, metav1.GetOptions{}); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading namespace %s: %w", o.Namespace, err)
		}
		rows = append(rows, report.Row{Component: "namespace", Check: o.Namespace, Status: report.StatusFail, Detail: "not found: LiteMaaS is not deployed here (make deploy)"})
	} else {
		pods, err := checkPods(ctx, c, o.Namespace)
		if err != nil {
			return err
		}
		rows = append(rows, pods...)
		models, err := checkModels(ctx, c, o.Namespace, o.Catalog)
		if err != nil {
			return err
		}
		rows = append(rows, models...)
		backups, err := checkBackups(ctx, c, o.Namespace)
		if err != nil {
			return err
		}
		rows = append(rows, backups...)
		ran, err := checkJobImagesRan(ctx, c, o.Namespace)
		if err != nil {
			return err
		}
		rows = append(rows, ran...)
		if !o.SkipRoutes {
			client := o.HTTPClient
			if client == nil {
				client = RouteClient(o.Insecure)
			}
			routes, err := checkRoutes(ctx, c, o.Namespace, client)
			if err != nil {
				return err
			}
			rows = append(rows, routes...)
			advisory, err := checkAdvisory(ctx, c, o.Namespace, client)
			if err != nil {
				return err
			}
			rows = append(rows, advisory...)
			rows = append(rows, checkLiteLLMAdvisories(ctx, c, o.Namespace, client)...)
			if o.Chat {
				chat, err := chatRows(ctx, c, o.Namespace, o.Catalog, client)
				if err != nil {
					return err
				}
				rows = append(rows, chat...)
			}
		} else if o.Chat {
			rows = append(rows, report.Row{Component: "chat", Check: "completions", Status: report.StatusSkip, Detail: "--chat goes through the LiteLLM route, which --skip-routes leaves out"})
		}
	}
	report.PrintChecks(o.Out, rows)
	fails, warns, skips := report.CountStatus(rows, report.StatusFail), report.CountStatus(rows, report.StatusWarn), report.CountStatus(rows, report.StatusSkip)
	ran := len(rows) - skips
	fmt.Fprintln(o.Out)
	if fails > 0 {
		fmt.Fprintf(o.Out, "verify: %d of %d checks failed, %d warnings, %d skipped\n", fails, ran, warns, skips)
		return &report.ProblemsError{What: "verify", Count: fails}
	}
	fmt.Fprintf(o.Out, "verify: all %d checks passed (%d warnings, %d skipped)\n", ran, warns, skips)
	return nil
}

// checkPods: every component has pods, all of them Ready.
func checkPods(ctx context.Context, c *cluster.Cluster, ns string) ([]report.Row, error) {
	list, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: tree.LabelPartOf + "=" + tree.PartOf})
	if err != nil {
		return nil, fmt.Errorf("listing the pods in %s: %w", ns, err)
	}
	byName := map[string][]corev1.Pod{}
	for _, p := range list.Items {
		// Terminating pods (a rollout in progress) and finished ones (evicted) have been replaced.
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		byName[p.Labels[tree.LabelName]] = append(byName[p.Labels[tree.LabelName]], p)
	}
	names := append([]string(nil), tree.Components...)
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	var rows []report.Row
	for _, name := range names {
		pods := byName[name]
		if len(pods) == 0 {
			rows = append(rows, report.Row{Component: name, Check: "pods ready", Status: report.StatusFail, Detail: fmt.Sprintf("no running pod labelled %s=%s: oc get deployment,statefulset -n %s", tree.LabelName, name, ns)})
			continue
		}
		sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
		var ready int
		var names, problems []string
		for _, p := range pods {
			names = append(names, p.Name)
			if podReady(&p) {
				ready++
			} else {
				problems = append(problems, p.Name+": "+podProblem(&p))
			}
		}
		if ready == len(pods) {
			rows = append(rows, report.Row{Component: name, Check: "pods ready", Status: report.StatusOK, Detail: fmt.Sprintf("%d/%d (%s)", ready, len(pods), strings.Join(names, ", "))})
		} else {
			rows = append(rows, report.Row{Component: name, Check: "pods ready", Status: report.StatusFail, Detail: fmt.Sprintf("%d/%d ready; %s", ready, len(pods), strings.Join(problems, "; "))})
		}
	}
	return rows, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podProblem says in a few words why a pod is not ready, most specific first.
func podProblem(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return "not scheduled: " + firstNonEmpty(c.Message, c.Reason)
		}
	}
	for _, cs := range p.Status.InitContainerStatuses {
		if cs.State.Waiting != nil && cs.State.Waiting.Reason != "PodInitializing" {
			return fmt.Sprintf("init container %s %s%s", cs.Name, cs.State.Waiting.Reason, restarts(cs.RestartCount))
		}
		if cs.State.Running != nil {
			return fmt.Sprintf("init container %s still running", cs.Name)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			msg := cs.State.Waiting.Reason
			if m := cs.State.Waiting.Message; m != "" && len(m) < 160 {
				msg += " (" + m + ")"
			}
			return fmt.Sprintf("container %s %s%s", cs.Name, msg, restarts(cs.RestartCount))
		case cs.State.Terminated != nil:
			return fmt.Sprintf("container %s terminated (%s, exit %d)%s", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode, restarts(cs.RestartCount))
		case !cs.Ready:
			return fmt.Sprintf("container %s running but not ready (readiness probe failing)%s", cs.Name, restarts(cs.RestartCount))
		}
	}
	return fmt.Sprintf("not ready (phase %s)", firstNonEmpty(string(p.Status.Phase), "unknown"))
}

func restarts(n int32) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d restarts", n)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// checkModels compares the models the litemaas-sync job published with the catalog: every served model
// has exactly one LiteLLM deployment and an available database row; every other one neither.
func checkModels(ctx context.Context, c *cluster.Cluster, ns, catalogPath string) ([]report.Row, error) {
	cat, err := catalog.Load(catalogPath)
	if err != nil {
		return []report.Row{{Component: "models", Check: "catalog", Status: report.StatusFail, Detail: fmt.Sprintf("cannot read %s: %v", catalogPath, err)}}, nil
	}
	cm, err := c.Kube.CoreV1().ConfigMaps(ns).Get(ctx, tree.StatusConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return []report.Row{{Component: "litemaas-sync", Check: "status", Status: report.StatusFail, Detail: fmt.Sprintf("ConfigMap %s not found: the PostSync job has not completed a run yet (oc logs -n %s job/litemaas-sync)", tree.StatusConfigMap, ns)}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", ns, tree.StatusConfigMap, err)
	}
	var rows []report.Row
	detail := fmt.Sprintf("%s at %s: %s", report.OrDash(cm.Data["result"]), report.OrDash(cm.Data["finishedAt"]), report.OrDash(cm.Data["summary"]))
	if cm.Data["result"] == "succeeded" {
		rows = append(rows, report.Row{Component: "litemaas-sync", Check: "last run", Status: report.StatusOK, Detail: detail})
	} else {
		rows = append(rows, report.Row{Component: "litemaas-sync", Check: "last run", Status: report.StatusFail, Detail: detail + fmt.Sprintf(" (oc logs -n %s job/litemaas-sync)", ns)})
	}
	var published []publishedModel
	if err := json.Unmarshal([]byte(cm.Data["models.json"]), &published); err != nil {
		return append(rows, report.Row{Component: "models", Check: "published", Status: report.StatusFail, Detail: fmt.Sprintf("models.json in ConfigMap %s is not a JSON list of models: %v", tree.StatusConfigMap, err)}), nil
	}
	byID := map[string]publishedModel{}
	for _, p := range published {
		byID[p.ID] = p
	}
	for _, m := range cat.Models {
		p, ok := byID[m.ID]
		if !ok {
			rows = append(rows, report.Row{Component: "models", Check: m.ID, Status: report.StatusFail, Detail: fmt.Sprintf("in %s but not published by the job: push the catalog and let Argo CD sync", catalogPath)})
			continue
		}
		delete(byID, m.ID)
		wantDeployments, wantDB, served := 0, catalog.Unavailable, "not served"
		if m.Served() {
			wantDeployments, wantDB, served = 1, catalog.Available, "served"
		}
		var problems []string
		if p.Catalog != m.Availability {
			problems = append(problems, fmt.Sprintf("the synced catalog says %s, %s says %s (local changes not pushed or not synced?)", report.OrDash(p.Catalog), catalogPath, m.Availability))
		}
		if p.LiteLLMDeployments != wantDeployments {
			problems = append(problems, fmt.Sprintf("%d LiteLLM deployments, want %d", p.LiteLLMDeployments, wantDeployments))
		}
		if p.Database != wantDB {
			problems = append(problems, fmt.Sprintf("database row %s, want %s", report.OrDash(p.Database), wantDB))
		}
		if len(problems) > 0 {
			rows = append(rows, report.Row{Component: "models", Check: m.ID, Status: report.StatusFail, Detail: strings.Join(problems, "; ")})
			continue
		}
		d := fmt.Sprintf("%s: %d LiteLLM deployment(s), database %s", served, p.LiteLLMDeployments, p.Database)
		if p.DeploymentID != "" {
			d += ", deployment " + p.DeploymentID
		}
		rows = append(rows, report.Row{Component: "models", Check: m.ID, Status: report.StatusOK, Detail: d})
	}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		rows = append(rows, report.Row{Component: "models", Check: id, Status: report.StatusWarn, Detail: fmt.Sprintf("published by the job but not in %s (local catalog differs from the synced one?)", catalogPath)})
	}
	return rows, nil
}

// checkBackups reports the last run of the backup CronJob when the backup component is enabled.
func checkBackups(ctx context.Context, c *cluster.Cluster, ns string) ([]report.Row, error) {
	cj, err := c.Kube.BatchV1().CronJobs(ns).Get(ctx, backupCronJob, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return []report.Row{{Component: "postgres-backup", Check: "CronJob", Status: report.StatusSkip, Detail: "component gitops/components/backup not enabled"}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading CronJob %s/%s: %w", ns, backupCronJob, err)
	}
	jobs, err := c.Kube.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: tree.LabelName + "=" + backupCronJob})
	if err != nil {
		return nil, fmt.Errorf("listing the backup Jobs in %s: %w", ns, err)
	}
	manual := fmt.Sprintf("oc create job --from=cronjob/%s %s-manual -n %s", backupCronJob, backupCronJob, ns)
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		return []report.Row{{Component: "postgres-backup", Check: "last backup", Status: report.StatusWarn, Detail: "the CronJob is suspended: no new backups"}}, nil
	}
	var newest *batchv1.Job
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if newest == nil || j.CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = j
		}
	}
	if newest == nil {
		return []report.Row{{Component: "postgres-backup", Check: "last backup", Status: report.StatusWarn, Detail: fmt.Sprintf("no backup has run yet (schedule %q); take one now: %s", cj.Spec.Schedule, manual)}}, nil
	}
	for _, cond := range newest.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case batchv1.JobFailed:
			return []report.Row{{Component: "postgres-backup", Check: "last backup", Status: report.StatusFail, Detail: fmt.Sprintf("Job %s failed: %s (oc logs -n %s job/%s)", newest.Name, firstNonEmpty(cond.Message, cond.Reason), ns, newest.Name)}}, nil
		case batchv1.JobComplete:
			age := time.Since(cond.LastTransitionTime.Time)
			if age > 50*time.Hour {
				return []report.Row{{Component: "postgres-backup", Check: "last backup", Status: report.StatusWarn, Detail: fmt.Sprintf("the newest backup (Job %s) is %s old: is the schedule %q running?", newest.Name, age.Round(time.Hour), cj.Spec.Schedule)}}, nil
			}
			return []report.Row{{Component: "postgres-backup", Check: "last backup", Status: report.StatusOK, Detail: fmt.Sprintf("Job %s completed %s ago", newest.Name, age.Round(time.Minute))}}, nil
		}
	}
	return []report.Row{{Component: "postgres-backup", Check: "last backup", Status: report.StatusOK, Detail: fmt.Sprintf("Job %s is running", newest.Name)}}, nil
}

// RouteClient makes one request per Route: no redirects followed (an OAuth redirect is an answer), a
// bounded time, TLS verified unless insecure.
func RouteClient(insecure bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with --insecure
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checkRoutes sends one GET to every Route of the namespace; any answer below 500 means the router, the
// Service and a ready pod are connected.
func checkRoutes(ctx context.Context, c *cluster.Cluster, ns string, client *http.Client) ([]report.Row, error) {
	ri, _, err := c.ResourceFor(cluster.RouteGVK, ns)
	if meta.IsNoMatchError(err) {
		return []report.Row{{Component: "routes", Check: "Route API", Status: report.StatusWarn, Detail: "the cluster serves no route.openshift.io (not OpenShift?); skip with --skip-routes"}}, nil
	}
	if err != nil {
		return nil, err
	}
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the Routes in %s: %w", ns, err)
	}
	if len(list.Items) == 0 {
		return []report.Row{{Component: "routes", Check: "Routes", Status: report.StatusFail, Detail: "no Route in " + ns}}, nil
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool { return items[i].GetName() < items[j].GetName() })
	var rows []report.Row
	for i := range items {
		rows = append(rows, probeRoute(ctx, client, &items[i]))
	}
	return rows, nil
}

func probeRoute(ctx context.Context, client *http.Client, r *unstructured.Unstructured) report.Row {
	name := "route " + r.GetName()
	url := cluster.RouteURL(r)
	if url == "" {
		return report.Row{Component: "routes", Check: name, Status: report.StatusFail, Detail: "no host (spec.host empty and not admitted by a router)"}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return report.Row{Component: "routes", Check: name, Status: report.StatusFail, Detail: fmt.Sprintf("%s: %v", url, err)}
	}
	resp, err := client.Do(req)
	if err != nil {
		detail := fmt.Sprintf("%s: %v", url, err)
		if strings.Contains(err.Error(), "certificate") {
			detail += " (self-signed router certificate? trust its CA, or pass --insecure)"
		}
		return report.Row{Component: "routes", Check: name, Status: report.StatusFail, Detail: detail}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return report.Row{Component: "routes", Check: name, Status: report.StatusFail, Detail: fmt.Sprintf("%s -> %s (the router reaches no ready pod, or the application fails)", url, resp.Status)}
	}
	return report.Row{Component: "routes", Check: name, Status: report.StatusOK, Detail: fmt.Sprintf("%s -> %s", url, resp.Status)}
}
