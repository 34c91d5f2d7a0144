// Package parity holds the parity table (gitops/parity.yaml, shown in gitops/README.md "Parity with
// upstream LiteMaaS") against the rendered overlays, and the policy checks of the settings upstream's deployment makes and ours must keep: the
// backup volume at BACKUP_STORAGE_PATH, the portal's rate limits, REDIS_HOST exactly with Redis, an
// explicit DISABLE_SCHEMA_UPDATE. manifests.Checker runs them on every app overlay.
package parity

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	yaml3 "gopkg.in/yaml.v3"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/traffic"
	"github.com/litemaas-gitops/litemaas-gitops/internal/netpol"
)

const (
	parityFile    = "gitops/parity.yaml"
	parityReadme  = "gitops/README.md"
	parityHeading = "## Parity with upstream LiteMaaS"
	upstreamList  = "internal/manifests/parity/testdata/upstream-settings.txt"
)

// parityWorkloads are the Deployments the table covers; each main container has the Deployment's name.
var parityWorkloads = []string{"backend", "frontend", "litellm"}

// Row is one row of the table.
type Row struct {
	line     int    // in parityFile
	workload string // backend, frontend, litellm
	init     bool   // the row is about the init containers
	volume   bool   // setting is a mount path, not an env var
	setting  string
	upstream string
	ours     []parityAlt
	why      string
}

// where names the row's place in parityFile for a message.
func (r Row) where() string { return fmt.Sprintf("%s line %d", parityFile, r.line) }

// key identifies a row the way upstream-settings.txt names it.
func (r Row) key() string { return settingKey(r.workload, r.init, r.volume, r.setting) }

func settingKey(workload string, init, volume bool, setting string) string {
	k := workload
	if init {
		k += " (init)"
	}
	if volume {
		k += " volume"
	}
	return k + " " + setting
}

// parityAlt is one alternative of the "ours" column: a value, or unset, for overlays with a component
// (or for every other overlay when component is empty).
type parityAlt struct {
	value     string // empty with unset
	unset     bool
	component string
}

// parityFileRow is a row as parityFile spells it.
type parityFileRow struct {
	Workload string `yaml:"workload"`
	Init     bool   `yaml:"init"`
	Env      string `yaml:"env"`
	Volume   string `yaml:"volume"`
	Upstream string `yaml:"upstream"`
	Ours     []struct {
		Value *string `yaml:"value"`
		Unset bool    `yaml:"unset"`
		With  string  `yaml:"with"`
	} `yaml:"ours"`
	Why string `yaml:"why"`
}

var componentRE = regexp.MustCompile(`^[a-z0-9-]+$`)

// parseParityFile reads the rows of parityFile's text; an unknown field or a malformed row is an error
// naming its line.
func parseParityFile(data []byte) ([]Row, error) {
	var doc struct {
		Rows []parityFileRow `yaml:"rows"`
	}
	dec := yaml3.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	// The same text as nodes, for the line of each row.
	var nodes struct {
		Rows []yaml3.Node `yaml:"rows"`
	}
	if err := yaml3.Unmarshal(data, &nodes); err != nil {
		return nil, err
	}
	var rows []Row
	var errs []string
	for i, fr := range doc.Rows {
		r := Row{line: nodes.Rows[i].Line, workload: fr.Workload, init: fr.Init, upstream: fr.Upstream, why: fr.Why}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Sprintf("line %d: ", r.line)+fmt.Sprintf(format, args...))
		}
		if !slices.Contains(parityWorkloads, fr.Workload) {
			bad("workload %q, want one of %v", fr.Workload, parityWorkloads)
			continue
		}
		switch {
		case (fr.Env == "") == (fr.Volume == ""):
			bad("%s: set exactly one of env and volume", fr.Workload)
			continue
		case fr.Volume != "":
			r.volume, r.setting = true, fr.Volume
		default:
			r.setting = fr.Env
		}
		for _, a := range fr.Ours {
			if (a.Value == nil) == !a.Unset {
				bad("%s: each alternative of ours is a value or unset: true", r.key())
				continue
			}
			if a.With != "" && !componentRE.MatchString(a.With) {
				bad("%s: with %q is not a component name", r.key(), a.With)
			}
			alt := parityAlt{unset: a.Unset, component: a.With}
			if a.Value != nil {
				alt.value = *a.Value
			}
			r.ours = append(r.ours, alt)
		}
		if len(r.ours) == 0 || r.ours[len(r.ours)-1].component != "" {
			bad("%s: the last alternative of ours must apply to every other overlay (no with)", r.key())
		}
		if r.upstream == "" || r.why == "" {
			bad("%s: upstream and why must be filled in (why: \"same\" when it is)", r.key())
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 && len(errs) == 0 {
		errs = append(errs, "no rows")
	}
	if len(errs) > 0 {
		return rows, errors.New(strings.Join(errs, "\n"))
	}
	return rows, nil
}

// parityMarkdown renders the rows as the Markdown table of gitops/README.md's parity section.
func parityMarkdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| workload | setting | upstream | ours | why |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		w := r.workload
		if r.init {
			w += " (init)"
		}
		setting := "`" + r.setting + "`"
		if r.volume {
			setting = "volume " + setting
		}
		var ours []string
		for _, a := range r.ours {
			s := "*unset*"
			if !a.unset {
				s = "`" + a.value + "`"
			}
			if a.component != "" {
				s += " with " + a.component
			}
			ours = append(ours, s)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", w, setting, r.upstream, strings.Join(ours, "; "), r.why)
	}
	return b.String()
}

// readmeParityTable returns the Markdown table under parityHeading in text, and its byte range.
func readmeParityTable(text string) (table string, start, end int, err error) {
	h := strings.Index(text, "\n"+parityHeading+"\n")
	if h < 0 {
		return "", 0, 0, fmt.Errorf("no section %q", parityHeading)
	}
	start = strings.Index(text[h:], "\n|")
	if start < 0 {
		return "", 0, 0, fmt.Errorf("no table under %q", parityHeading)
	}
	start += h + 1
	end = start
	for end < len(text) && text[end] == '|' {
		nl := strings.IndexByte(text[end:], '\n')
		if nl < 0 {
			end = len(text)
			break
		}
		end += nl + 1
	}
	return text[start:end], start, end, nil
}

// expected is what a row says the overlay with these components and settings renders, in the form
// renderedSetting returns.
func (r Row) expected(components map[string]bool, settings map[string]string) (string, error) {
	alt := r.ours[len(r.ours)-1]
	for _, a := range r.ours {
		if a.component == "" || components[a.component] {
			alt = a
			break
		}
	}
	if alt.unset {
		return "unset", nil
	}
	v := alt.value
	if v == "emptyDir" {
		return v, nil
	}
	for _, prefix := range []string{"secret ", "pvc ", "configMap "} {
		if strings.HasPrefix(v, prefix) {
			return v, nil
		}
	}
	var missing []string
	v = regexp.MustCompile(`<([A-Za-z0-9]+)>`).ReplaceAllStringFunc(v, func(m string) string {
		k := strings.Trim(m, "<>")
		s, ok := settings[k]
		if !ok {
			missing = append(missing, k)
		}
		return s
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("the overlay's cluster-settings has no %s", strings.Join(missing, ", "))
	}
	return "value " + v, nil
}

// renderedSetting returns what the overlay renders for a setting: "value V", "secret NAME/KEY",
// "pvc NAME SIZE", "configMap NAME" (a generated name without its hash), "emptyDir", "valueFrom" for any other
// source, or "unset".
func renderedSetting(objs []*unstructured.Unstructured, workload string, init, volume bool, setting string) string {
	d := objects.Find(objs, "Deployment", workload)
	if d == nil {
		return "unset"
	}
	spec := objects.MapAt(d.Object, "spec", "template", "spec")
	for _, c := range objects.ContainersOf(spec) {
		if c.Init != init || (!init && c.Name != workload) {
			continue
		}
		if !volume {
			if e, ok := objects.EnvOf(c.Spec)[setting]; ok {
				return envForm(e)
			}
			continue
		}
		for _, m := range objects.Maps(objects.ListAt(c.Spec, "volumeMounts")) {
			if objects.StringAt(m, "mountPath") == setting {
				return volumeForm(objs, spec, objects.StringAt(m, "name"))
			}
		}
	}
	return "unset"
}

func envForm(e map[string]any) string {
	if sk := objects.MapAt(e, "valueFrom", "secretKeyRef"); sk != nil {
		return "secret " + objects.StringAt(sk, "name") + "/" + objects.StringAt(sk, "key")
	}
	if objects.Has(e, "valueFrom") {
		return "valueFrom"
	}
	return "value " + objects.StringAt(e, "value")
}

// hashSuffix is the "-<10 characters>" kustomize appends to generated names.
var hashSuffix = regexp.MustCompile(`-[a-z0-9]{10}$`)

func volumeForm(objs []*unstructured.Unstructured, spec map[string]any, name string) string {
	for _, v := range objects.Maps(objects.ListAt(spec, "volumes")) {
		if objects.StringAt(v, "name") != name {
			continue
		}
		if claim := objects.StringAt(v, "persistentVolumeClaim", "claimName"); claim != "" {
			size := "(no such PVC rendered)"
			if pvc := objects.Find(objs, "PersistentVolumeClaim", claim); pvc != nil {
				size = objects.StringAt(pvc.Object, "spec", "resources", "requests", "storage")
			}
			return "pvc " + claim + " " + size
		}
		if cm := objects.StringAt(v, "configMap", "name"); cm != "" {
			if o := objects.Find(objs, "ConfigMap", cm); o != nil && hashSuffix.MatchString(cm) {
				cm = hashSuffix.ReplaceAllString(cm, "")
			}
			return "configMap " + cm
		}
		if objects.Has(v, "emptyDir") {
			return "emptyDir"
		}
		return "volume " + name + " of another kind"
	}
	return "volume " + name + " (not declared)"
}

// checkParity holds one rendered overlay against the table: every row says what it renders, and every
// env var and mount of the covered workloads has a row.
func Check(rows []Row, objs []*unstructured.Unstructured, components map[string]bool, settings map[string]string) []string {
	var p objects.Problems
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.key()] {
			p.Addf("%s: %s has a second row", r.where(), r.key())
		}
		seen[r.key()] = true
		want, err := r.expected(components, settings)
		if err != nil {
			p.Addf("%s: %s: %v", r.where(), r.key(), err)
			continue
		}
		if got := renderedSetting(objs, r.workload, r.init, r.volume, r.setting); got != want {
			p.Addf("%s: renders %q, the parity table (%s) says %q", r.key(), got, r.where(), want)
		}
	}
	for _, w := range parityWorkloads {
		d := objects.Find(objs, "Deployment", w)
		if d == nil {
			p.Addf("Deployment/%s is missing", w)
			continue
		}
		for _, c := range objects.ContainersOf(objects.MapAt(d.Object, "spec", "template", "spec")) {
			if !c.Init && c.Name != w {
				// The backend guard has no upstream counterpart; CheckBackendGuard holds it.
				if w == "backend" && c.Name == traffic.GuardContainer {
					continue
				}
				p.Addf("Deployment/%s: container %s is not covered by the parity table", w, c.Name)
				continue
			}
			for name := range objects.EnvOf(c.Spec) {
				if k := settingKey(w, c.Init, false, name); !seen[k] {
					p.Addf("%s is rendered but has no row in the parity table %s", k, parityFile)
				}
			}
			for _, m := range objects.Maps(objects.ListAt(c.Spec, "volumeMounts")) {
				if k := settingKey(w, c.Init, true, objects.StringAt(m, "mountPath")); !seen[k] {
					p.Addf("%s is rendered but has no row in the parity table %s", k, parityFile)
				}
			}
		}
	}
	return p
}

// CheckUpstreamCovered: every setting of upstream's deployment has a row.
func CheckUpstreamCovered(rows []Row, upstream []string) []string {
	var p objects.Problems
	for _, u := range upstream {
		if !slices.ContainsFunc(rows, func(r Row) bool { return r.key() == u }) {
			p.Addf("upstream sets %s, which has no row in the parity table %s", u, parityFile)
		}
	}
	return p
}

// ReadRows reads and parses the parity table of the tree at root.
func ReadRows(root string) ([]Row, error) {
	data, err := os.ReadFile(filepath.Join(root, parityFile))
	if err != nil {
		return nil, fmt.Errorf("the parity table: %w", err)
	}
	rows, err := parseParityFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", parityFile, err)
	}
	return rows, nil
}

// --- the features upstream's settings enable ------------------------------------------------------

// CheckBackupVolume: BACKUP_STORAGE_PATH is a literal path with a writable PVC mounted exactly there,
// which Argo CD never prunes.
func CheckBackupVolume(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	backend := objects.Find(objs, "Deployment", "backend")
	path, ok := objects.EnvValue(backend, "backend", "BACKUP_STORAGE_PATH")
	if !ok || !strings.HasPrefix(path, "/") {
		p.Addf("Deployment/backend: BACKUP_STORAGE_PATH %q is not an absolute path (the backend's default ./data/backups is not writable under restricted-v2)", path)
		return p
	}
	got := renderedSetting(objs, "backend", false, true, path)
	claim, ok := strings.CutPrefix(got, "pvc ")
	if got == "unset" {
		p.Addf("Deployment/backend: nothing is mounted at BACKUP_STORAGE_PATH %s; want a PersistentVolumeClaim there", path)
		return p
	} else if !ok {
		p.Addf("Deployment/backend: BACKUP_STORAGE_PATH %s is %s, want a PersistentVolumeClaim", path, got)
		return p
	}
	claim, _, _ = strings.Cut(claim, " ")
	for _, m := range objects.Maps(objects.ListAt(objects.ContainerNamed(objects.MapAt(backend.Object, "spec", "template", "spec"), "backend"), "volumeMounts")) {
		if objects.StringAt(m, "mountPath") == path && (objects.IsTrue(m, "readOnly") || objects.StringAt(m, "subPath") != "") {
			p.Addf("Deployment/backend: the mount at %s must be the whole volume, writable", path)
		}
	}
	pvc := objects.Find(objs, "PersistentVolumeClaim", claim)
	if pvc == nil {
		p.Addf("PersistentVolumeClaim/%s is mounted at BACKUP_STORAGE_PATH but not rendered", claim)
		return p
	}
	if q, err := resource.ParseQuantity(objects.StringAt(pvc.Object, "spec", "resources", "requests", "storage")); err != nil || q.Cmp(resource.MustParse("5Gi")) < 0 {
		p.Addf("PersistentVolumeClaim/%s: storage %q, want at least 5Gi (upstream's size)", claim, objects.StringAt(pvc.Object, "spec", "resources", "requests", "storage"))
	}
	if modes := objects.ListAt(pvc.Object, "spec", "accessModes"); !slices.Contains(modes, any("ReadWriteOnce")) && !slices.Contains(modes, any("ReadWriteMany")) {
		p.Addf("PersistentVolumeClaim/%s: accessModes %v, want ReadWriteOnce", claim, modes)
	}
	if opts := pvc.GetAnnotations()["argocd.argoproj.io/sync-options"]; !strings.Contains(opts, "Prune=false") || !strings.Contains(opts, "Delete=false") {
		p.Addf("PersistentVolumeClaim/%s: sync-options %q, want Delete=false,Prune=false (the portal's backups outlive the Application)", claim, opts)
	}
	return p
}

// rateWindowRE is what the backend's limiter accepts as a window: milliseconds, or a number with a unit.
var rateWindowRE = regexp.MustCompile(`^[1-9][0-9]*(ms|s|m|h|d)?$`)

// CheckRateLimits: the portal's rate limit is set, and to the overlay's cluster-settings.
func CheckRateLimits(objs []*unstructured.Unstructured, settings map[string]string) []string {
	var p objects.Problems
	backend := objects.Find(objs, "Deployment", "backend")
	limit, ok := objects.EnvValue(backend, "backend", "RATE_LIMIT_MAX")
	if n, err := strconv.Atoi(limit); !ok || err != nil || n < 1 {
		p.Addf("Deployment/backend: RATE_LIMIT_MAX %q is not a positive number", limit)
	}
	window, ok := objects.EnvValue(backend, "backend", "RATE_LIMIT_TIME_WINDOW")
	if !ok || !rateWindowRE.MatchString(window) {
		p.Addf("Deployment/backend: RATE_LIMIT_TIME_WINDOW %q is not a window such as 5m", window)
	}
	if want := settings["rateLimitMax"]; want != limit {
		p.Addf("Deployment/backend: RATE_LIMIT_MAX %q, the overlay's cluster-settings rateLimitMax %q", limit, want)
	}
	if want := settings["rateLimitTimeWindow"]; want != window {
		p.Addf("Deployment/backend: RATE_LIMIT_TIME_WINDOW %q, the overlay's cluster-settings rateLimitTimeWindow %q", window, want)
	}
	return p
}

// CheckRedisWiring: the backend gets REDIS_HOST and REDIS_PORT exactly when a Redis is deployed, they
// name its Service, and a NetworkPolicy in front of Redis admits the backend's pods.
func CheckRedisWiring(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	backend := objects.Find(objs, "Deployment", "backend")
	host, hasHost := objects.EnvValue(backend, "backend", "REDIS_HOST")
	port, hasPort := objects.EnvValue(backend, "backend", "REDIS_PORT")
	redis := objects.Find(objs, "Deployment", "redis")
	if redis == nil {
		if hasHost || hasPort {
			p.Addf("Deployment/backend: REDIS_HOST/REDIS_PORT set (%q, %q) but no Redis is deployed", host, port)
		}
		return p
	}
	if !hasHost || !hasPort {
		p.Addf("Deployment/backend: Redis is deployed but REDIS_HOST/REDIS_PORT are not set: the backend cannot flush LiteLLM's cache after model changes")
		return p
	}
	svc := objects.Find(objs, "Service", host)
	if svc == nil {
		p.Addf("Deployment/backend: REDIS_HOST %q is no rendered Service", host)
		return p
	}
	if !slices.ContainsFunc(objects.Maps(objects.ListAt(svc.Object, "spec", "ports")), func(m map[string]any) bool { return fmt.Sprint(m["port"]) == port }) {
		p.Addf("Deployment/backend: REDIS_PORT %q is no port of Service/%s", port, host)
	}
	litellmHost, _ := objects.EnvValue(objects.Find(objs, "Deployment", "litellm"), "litellm", "REDIS_HOST")
	if litellmHost != host {
		p.Addf("Deployment/backend REDIS_HOST %q differs from LiteLLM's %q: the flush would miss LiteLLM's cache", host, litellmHost)
	}
	// The NetworkPolicies together (they add up) must admit the backend's pods to Redis.
	if why := admitsBackendToRedis(objs, backend, redis, svc, port); why != "" {
		p.Addf("%s: the backend's cache flush is blocked", why)
	}
	return p
}

// admitsBackendToRedis evaluates the overlay's NetworkPolicies (internal/netpol, the Kubernetes ingress
// semantics) for a connection from the backend's pods to Redis's pods on the port behind the Service
// port; it returns why not, or "".
func admitsBackendToRedis(objs []*unstructured.Unstructured, backend, redis, svc *unstructured.Unstructured, port string) string {
	var policies []networkingv1.NetworkPolicy
	for _, o := range objs {
		if o.GetKind() != "NetworkPolicy" {
			continue
		}
		var np networkingv1.NetworkPolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &np); err != nil {
			return fmt.Sprintf("NetworkPolicy/%s: %v", o.GetName(), err)
		}
		if np.Namespace == "" {
			np.Namespace = backend.GetNamespace()
		}
		policies = append(policies, np)
	}
	pod := func(d *unstructured.Unstructured) netpol.Pod {
		labels := map[string]string{}
		for k, v := range objects.MapAt(d.Object, "spec", "template", "metadata", "labels") {
			labels[k], _ = v.(string)
		}
		return netpol.Pod{Namespace: d.GetNamespace(), NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": d.GetNamespace()}, Labels: labels}
	}
	// The Service port's target: a number, or the name of a Redis container port.
	target := 0
	for _, sp := range objects.Maps(objects.ListAt(svc.Object, "spec", "ports")) {
		if fmt.Sprint(sp["port"]) != port {
			continue
		}
		switch tp := sp["targetPort"].(type) {
		case int64:
			target = int(tp)
		case string:
			for _, c := range objects.Maps(objects.ListAt(redis.Object, "spec", "template", "spec", "containers")) {
				for _, cp := range objects.Maps(objects.ListAt(c, "ports")) {
					if cp["name"] == tp {
						n, _ := cp["containerPort"].(int64)
						target = int(n)
					}
				}
			}
		default:
			target, _ = strconv.Atoi(port)
		}
	}
	if target == 0 {
		return fmt.Sprintf("Service/%s: port %s has no target port on the Redis pods", svc.GetName(), port)
	}
	v, err := netpol.Ingress(policies, pod(backend), pod(redis), netpol.Port{Number: int32(target)})
	switch {
	case err != nil:
		return "NetworkPolicies: " + err.Error()
	case !v.Allowed:
		return fmt.Sprintf("the NetworkPolicies admit no backend pod to Redis on %d", target)
	}
	return ""
}

// CheckSchemaUpdate: LiteLLM's DISABLE_SCHEMA_UPDATE is set, and to false (LiteLLM creates its tables).
func CheckSchemaUpdate(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	if v, ok := objects.EnvValue(objects.Find(objs, "Deployment", "litellm"), "litellm", "DISABLE_SCHEMA_UPDATE"); !ok || v != "false" {
		p.Addf("Deployment/litellm: DISABLE_SCHEMA_UPDATE %q (set: %v), want \"false\" set explicitly: with true a fresh install gets no LiteLLM tables", v, ok)
	}
	return p
}
