package objects

import (
	"fmt"
	"slices"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// Problems collects findings.
type Problems []string

func (p *Problems) Addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// Ref names an object as Kind/name, as the problems do.
func Ref(o *unstructured.Unstructured) string { return o.GetKind() + "/" + o.GetName() }

// MapAt returns the map at path, or nil.
func MapAt(obj map[string]any, path ...string) map[string]any {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, path...)
	if !ok {
		return nil
	}
	m, _ := v.(map[string]any)
	return m
}

// ListAt returns the list at path, or nil.
func ListAt(obj map[string]any, path ...string) []any {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, path...)
	if !ok {
		return nil
	}
	l, _ := v.([]any)
	return l
}

// StringAt returns the string at path, or "".
func StringAt(obj map[string]any, path ...string) string {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, path...)
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

// Has reports whether obj has a field at path.
func Has(obj map[string]any, path ...string) bool {
	_, ok, _ := unstructured.NestedFieldNoCopy(obj, path...)
	return ok
}

// IsTrue reports whether the field is the boolean true; IsFalse whether it is explicitly false.
func IsTrue(obj map[string]any, path ...string) bool {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, path...)
	b, isBool := v.(bool)
	return ok && isBool && b
}

// IsFalse reports whether the field is explicitly the boolean false.
func IsFalse(obj map[string]any, path ...string) bool {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, path...)
	b, isBool := v.(bool)
	return ok && isBool && !b
}

// Maps returns the maps of a list, skipping any other element.
func Maps(l []any) []map[string]any {
	out := make([]map[string]any, 0, len(l))
	for _, v := range l {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// PodTemplate is a pod spec found in a workload, with the metadata and labels of its template.
type PodTemplate struct {
	Owner    string // Kind/name of the object holding it
	Kind     string
	Metadata map[string]any
	Labels   map[string]any
	Spec     map[string]any
}

// PodTemplates returns the pod specs of every workload kind that has one.
func PodTemplates(objs []*unstructured.Unstructured) []PodTemplate {
	var out []PodTemplate
	for _, o := range objs {
		var tmpl map[string]any
		switch o.GetKind() {
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController":
			tmpl = MapAt(o.Object, "spec", "template")
		case "CronJob":
			tmpl = MapAt(o.Object, "spec", "jobTemplate", "spec", "template")
		case "Pod":
			tmpl = o.Object
		default:
			continue
		}
		if tmpl == nil {
			out = append(out, PodTemplate{Owner: Ref(o), Kind: o.GetKind(), Spec: map[string]any{}})
			continue
		}
		out = append(out, PodTemplate{Owner: Ref(o), Kind: o.GetKind(), Metadata: MapAt(tmpl, "metadata"),
			Labels: MapAt(tmpl, "metadata", "labels"), Spec: MapAt(tmpl, "spec")})
	}
	return out
}

// Container is one container of a pod spec; init tells init containers apart.
type Container struct {
	Name string
	Init bool
	Spec map[string]any
}

// ContainersOf returns the init, regular and ephemeral containers of a pod spec.
func ContainersOf(spec map[string]any) []Container {
	var out []Container
	for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
		for _, c := range Maps(ListAt(spec, field)) {
			out = append(out, Container{Name: StringAt(c, "name"), Init: field != "containers", Spec: c})
		}
	}
	return out
}

// ContainerNamed returns the regular container of a pod spec by name, or nil.
func ContainerNamed(spec map[string]any, name string) map[string]any {
	for _, c := range Maps(ListAt(spec, "containers")) {
		if StringAt(c, "name") == name {
			return c
		}
	}
	return nil
}

// EnvOf maps a container's env names to their entries.
func EnvOf(c map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, e := range Maps(ListAt(c, "env")) {
		out[StringAt(e, "name")] = e
	}
	return out
}

// EnvValue returns the literal value of an env var of the named container of a workload.
func EnvValue(o *unstructured.Unstructured, containerName, env string) (string, bool) {
	if o == nil {
		return "", false
	}
	c := ContainerNamed(MapAt(o.Object, "spec", "template", "spec"), containerName)
	e, ok := EnvOf(c)[env]
	if !ok || !Has(e, "value") {
		return "", false
	}
	return StringAt(e, "value"), true
}

// WalkStrings calls fn for every string (keys excluded) in v, with a dotted path.
func WalkStrings(v any, path string, fn func(path, s string)) {
	switch t := v.(type) {
	case string:
		fn(path, t)
	case map[string]any:
		for k, e := range t {
			WalkStrings(e, path+"."+k, fn)
		}
	case []any:
		for i, e := range t {
			WalkStrings(e, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

// WorkloadKinds are the kinds that run pods and carry a component label.
var WorkloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}

// Strs returns the strings of a list, skipping any other element.
func Strs(l []any) []string {
	out := make([]string, 0, len(l))
	for _, v := range l {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// SameSet reports whether a and b hold the same strings, in any order.
func SameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// SortedKeys returns the keys of m in order.
func SortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SelectorOf parses a label selector; an absent or empty one is an error, as it would select every pod.
func SelectorOf(m map[string]any) (labels.Selector, error) {
	if m == nil {
		return nil, fmt.Errorf("no label selector")
	}
	data, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	var ls metav1.LabelSelector
	if err := yaml.Unmarshal(data, &ls); err != nil {
		return nil, err
	}
	if len(ls.MatchLabels) == 0 && len(ls.MatchExpressions) == 0 {
		return nil, fmt.Errorf("empty label selector selects every pod")
	}
	return metav1.LabelSelectorAsSelector(&ls)
}

// ServiceAccountOrDefault is the ServiceAccount a pod runs as: sa, or "default" when unset.
func ServiceAccountOrDefault(sa string) string {
	if sa == "" {
		return "default"
	}
	return sa
}

// ImagesOf returns every image of every container of every pod template, sorted and unique.
func ImagesOf(objs []*unstructured.Unstructured) []string {
	set := map[string]bool{}
	for _, pt := range PodTemplates(objs) {
		for _, c := range ContainersOf(pt.Spec) {
			set[StringAt(c.Spec, "image")] = true
		}
	}
	// A CloudNativePG Cluster names the image its operator runs.
	for _, o := range objs {
		if o.GetKind() == "Cluster" && o.GroupVersionKind().Group == "postgresql.cnpg.io" {
			set[StringAt(o.Object, "spec", "imageName")] = true
		}
	}
	out := make([]string, 0, len(set))
	for img := range set {
		out = append(out, img)
	}
	sort.Strings(out)
	return out
}
