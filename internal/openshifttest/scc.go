package openshifttest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/utils/ptr"
)

// The namespace annotations of OpenShift's security allocator (openshift/api security/v1 consts).
const (
	UIDRangeAnnotation           = "openshift.io/sa.scc.uid-range"
	SupplementalGroupsAnnotation = "openshift.io/sa.scc.supplemental-groups"
	MCSAnnotation                = "openshift.io/sa.scc.mcs"
	// SCCAnnotation on a pod names the SecurityContextConstraints that admitted it.
	SCCAnnotation = "openshift.io/scc"
)

// The allocator's defaults (cluster-policy-controller pkg/cmd/cluster-policy-controller/
// openshiftcontrolplane_config.go): UIDs 1000000000-1999999999 in blocks of 10000, MCS range "s0:/2"
// (two categories of c0..c1023), five labels per project.
const (
	uidRangeStart   = 1000000000
	uidBlockSize    = 10000
	uidBlocks       = 100000
	mcsPerProject   = 5
	mcsCategories   = 1024
	mcsCategoriesK  = 2
	sccFieldManager = "cluster-policy-controller-namespace-security-allocation-controller"
)

// SCC plays the two halves of OpenShift's restricted-v2 SecurityContextConstraints that change objects:
//
//  1. The namespace-security-allocation controller of openshift/cluster-policy-controller
//     (pkg/security/controller/namespace_scc_allocation_controller.go, read at commit 050c1ee, 2026-06):
//     each namespace without openshift.io/sa.scc.uid-range gets the next free UID block as that
//     annotation and as openshift.io/sa.scc.supplemental-groups ("<first>/10000"), and an MCS label
//     (openshift.io/sa.scc.mcs) ranked from the block's offset (pkg/security/mcs/label.go, co-lex
//     unrank), applied server-side.
//  2. SCC admission (openshift/apiserver-library-go pkg/securitycontextconstraints, MustRunAsRange for
//     the user, MustRunAs for fsGroup and SELinux): a pod, not its template, gets runAsUser = the first
//     UID of its namespace's range on each container that sets none, the pod's fsGroup from the
//     supplemental-groups range and the namespace's MCS level, and the annotation openshift.io/scc:
//     restricted-v2; a container asking for a user outside the range is refused, as it fits no SCC.
//     Admission is played by the engine a cluster runs: a MutatingAdmissionPolicy and a
//     ValidatingAdmissionPolicy reading namespaceObject's annotations (Policies).
//
// Not played: other SCCs (anyuid, privileged...) and their RBAC, capabilities, and pods in namespaces
// created before the annotations (OpenShift refuses them until annotated; here they pass unchanged).
type SCC struct {
	Client kubernetes.Interface
	Log    Logf

	namespaces listersv1.NamespaceLister
	mu         sync.Mutex
	used       map[int]bool // allocated block indexes
}

// Start installs the admission policies and runs the namespace allocator until ctx ends.
func (s *SCC) Start(ctx context.Context, wg *sync.WaitGroup) error {
	if err := s.installPolicies(ctx); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(s.Client, 0)
	inf := factory.Core().V1().Namespaces()
	s.namespaces = inf.Lister()
	s.used = map[int]bool{}
	c := newController("scc", s.Log, s.sync)
	if _, err := inf.Informer().AddEventHandler(c.handler()); err != nil {
		return err
	}
	return c.run(ctx, wg, 1, []informerFactory{factory}, inf.Informer().HasSynced)
}

// Block returns the annotation value of UID block i: "<first>/<size>".
func Block(i int) string {
	return strconv.Itoa(uidRangeStart+i*uidBlockSize) + "/" + strconv.Itoa(uidBlockSize)
}

// MCSLabel is DefaultMCSAllocation's label for UID block i: the categories of rank i*5 among the
// two-category combinations of c0..c1023, highest first ("s0:c1,c0" for block 0).
func MCSLabel(i int) string {
	offset := uint64(i * mcsPerProject)
	n := uint(mcsCategories)
	var cats []int
	for j := uint(0); j < mcsCategoriesK; j++ {
		cur := binomial(n, mcsCategoriesK-j)
		for cur > offset {
			n--
			cur = binomial(n, mcsCategoriesK-j)
		}
		cats = append(cats, int(n))
		offset -= cur
	}
	sort.Sort(sort.Reverse(sort.IntSlice(cats)))
	parts := make([]string, len(cats))
	for j, c := range cats {
		parts[j] = "c" + strconv.Itoa(c)
	}
	return "s0:" + strings.Join(parts, ",")
}

func binomial(n, k uint) uint64 {
	if n < k {
		return 0
	}
	if k == n {
		return 1
	}
	r := uint64(1)
	for d := uint(1); d <= k; d++ {
		r *= uint64(n)
		r /= uint64(d)
		n--
	}
	return r
}

func (s *SCC) sync(ctx context.Context, name string) error {
	ns, err := s.namespaces.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The repair pass upstream runs at start: blocks already annotated are taken.
	all, err := s.namespaces.List(everything)
	if err != nil {
		return err
	}
	for _, other := range all {
		if v, ok := other.Annotations[UIDRangeAnnotation]; ok {
			if i, ok := blockIndex(v); ok {
				s.used[i] = true
			}
		}
	}
	if _, ok := ns.Annotations[UIDRangeAnnotation]; ok || ns.DeletionTimestamp != nil {
		return nil
	}
	i := 0
	for s.used[i] {
		i++
	}
	if i >= uidBlocks {
		return fmt.Errorf("the UID range is full")
	}
	ann := map[string]string{UIDRangeAnnotation: Block(i), SupplementalGroupsAnnotation: Block(i)}
	if v, ok := ns.Annotations[MCSAnnotation]; ok {
		ann[MCSAnnotation] = v
	} else {
		ann[MCSAnnotation] = MCSLabel(i)
	}
	patch := applycorev1.Namespace(name).WithResourceVersion(ns.ResourceVersion).WithAnnotations(ann)
	if _, err := s.Client.CoreV1().Namespaces().Apply(ctx, patch, metav1.ApplyOptions{FieldManager: sccFieldManager}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("annotating namespace %s: %w", name, err)
	}
	s.used[i] = true
	s.Log.printf("scc: namespace %s: uid-range %s, mcs %s", name, Block(i), ann[MCSAnnotation])
	return nil
}

func blockIndex(v string) (int, bool) {
	first, _, ok := strings.Cut(v, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(first)
	if err != nil || n < uidRangeStart || (n-uidRangeStart)%uidBlockSize != 0 {
		return 0, false
	}
	return (n - uidRangeStart) / uidBlockSize, true
}

// sccPolicyName names the admission policies and their bindings.
const sccPolicyName = "openshift-scc-restricted-v2"

// The CEL shared by the policies: the first number of an "<first>/<size>" annotation.
const (
	celHasRange   = `has(namespaceObject.metadata.annotations) && '` + UIDRangeAnnotation + `' in namespaceObject.metadata.annotations`
	celUID        = `int(namespaceObject.metadata.annotations['` + UIDRangeAnnotation + `'].split('/')[0])`
	celUIDSize    = `int(namespaceObject.metadata.annotations['` + UIDRangeAnnotation + `'].split('/')[1])`
	celGroupFirst = `int(('` + SupplementalGroupsAnnotation + `' in namespaceObject.metadata.annotations ? namespaceObject.metadata.annotations['` + SupplementalGroupsAnnotation + `'] : namespaceObject.metadata.annotations['` + UIDRangeAnnotation + `']).split('/')[0])`
	celMCS        = `namespaceObject.metadata.annotations['` + MCSAnnotation + `']`
)

// Policies returns SCC admission as admission policies: the mutation of pods created in an annotated
// namespace and the refusal of a user outside its range.
func Policies() []any {
	match := &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
		RuleWithOperations: admissionv1.RuleWithOperations{
			Operations: []admissionv1.OperationType{admissionv1.Create},
			Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
		},
	}}}
	// namespaceObject is not available to matchConditions: the expressions test the annotation.
	// Each container without a user gets the range's first UID; the pod gets fsGroup and the SELinux
	// level unless it sets them (then the validation below judges them).
	mutation := `!(` + celHasRange + `) ? Object{} : Object{
  metadata: Object.metadata{annotations: {"` + SCCAnnotation + `": "restricted-v2"}},
  spec: Object.spec{
    securityContext: Object.spec.securityContext{
      fsGroup: has(object.spec.securityContext) && has(object.spec.securityContext.fsGroup) ? object.spec.securityContext.fsGroup : ` + celGroupFirst + `,
      seLinuxOptions: Object.spec.securityContext.seLinuxOptions{
        level: has(object.spec.securityContext) && has(object.spec.securityContext.seLinuxOptions) && has(object.spec.securityContext.seLinuxOptions.level) ? object.spec.securityContext.seLinuxOptions.level : ` + celMCS + `
      }
    },
    containers: object.spec.containers.map(c, Object.spec.containers{
      name: c.name,
      securityContext: Object.spec.containers.securityContext{
        runAsUser: has(c.securityContext) && has(c.securityContext.runAsUser) ? c.securityContext.runAsUser :
          (has(object.spec.securityContext) && has(object.spec.securityContext.runAsUser) ? object.spec.securityContext.runAsUser : ` + celUID + `)
      }
    }),
    initContainers: (has(object.spec.initContainers) ? object.spec.initContainers : []).map(c, Object.spec.initContainers{
      name: c.name,
      securityContext: Object.spec.initContainers.securityContext{
        runAsUser: has(c.securityContext) && has(c.securityContext.runAsUser) ? c.securityContext.runAsUser :
          (has(object.spec.securityContext) && has(object.spec.securityContext.runAsUser) ? object.spec.securityContext.runAsUser : ` + celUID + `)
      }
    })
  }
}`
	mutating := &admissionv1.MutatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: sccPolicyName},
		Spec: admissionv1.MutatingAdmissionPolicySpec{
			MatchConstraints: match,
			FailurePolicy:    ptr.To(admissionv1.Fail),
			Mutations: []admissionv1.Mutation{{
				PatchType:          admissionv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionv1.ApplyConfiguration{Expression: mutation},
			}},
			ReinvocationPolicy: admissionv1.NeverReinvocationPolicy,
		},
	}
	mutatingBinding := &admissionv1.MutatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: sccPolicyName},
		Spec:       admissionv1.MutatingAdmissionPolicyBindingSpec{PolicyName: sccPolicyName},
	}
	inRange := func(v string) string {
		return `(` + v + ` >= ` + celUID + ` && ` + v + ` < ` + celUID + ` + ` + celUIDSize + `)`
	}
	validating := &admissionv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: sccPolicyName},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: match,
			FailurePolicy:    ptr.To(admissionv1.Fail),
			Validations: []admissionv1.Validation{{
				Expression: `!(` + celHasRange + `) || object.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.runAsUser) || ` + inRange("c.securityContext.runAsUser") + `) &&
  (!has(object.spec.initContainers) || object.spec.initContainers.all(c, !has(c.securityContext) || !has(c.securityContext.runAsUser) || ` + inRange("c.securityContext.runAsUser") + `))`,
				MessageExpression: `'unable to validate against any security context constraint: provider restricted-v2: .containers[*].securityContext.runAsUser: Invalid value: must be in the ranges: [' + string(` + celUID + `) + ', ' + string(` + celUID + ` + ` + celUIDSize + ` - 1) + ']'`,
				Reason:            ptr.To(metav1.StatusReasonForbidden),
			}},
		},
	}
	validatingBinding := &admissionv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: sccPolicyName},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        sccPolicyName,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		},
	}
	return []any{mutating, mutatingBinding, validating, validatingBinding}
}

func (s *SCC) installPolicies(ctx context.Context) error {
	ar := s.Client.AdmissionregistrationV1()
	for _, p := range Policies() {
		var err error
		switch o := p.(type) {
		case *admissionv1.MutatingAdmissionPolicy:
			_, err = ar.MutatingAdmissionPolicies().Create(ctx, o, metav1.CreateOptions{})
		case *admissionv1.MutatingAdmissionPolicyBinding:
			_, err = ar.MutatingAdmissionPolicyBindings().Create(ctx, o, metav1.CreateOptions{})
		case *admissionv1.ValidatingAdmissionPolicy:
			_, err = ar.ValidatingAdmissionPolicies().Create(ctx, o, metav1.CreateOptions{})
		case *admissionv1.ValidatingAdmissionPolicyBinding:
			_, err = ar.ValidatingAdmissionPolicyBindings().Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("scc: installing the admission policies: %w", err)
		}
	}
	return nil
}
