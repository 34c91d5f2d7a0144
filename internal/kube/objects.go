package kube

import (
	"maps"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// The kinds the job reads and writes through Typed, declared here rather than taken from
// k8s.io/api: importing k8s.io/api/core/v1 for three of its structs links all of its ~200 types and
// their generated code, 3 MiB of the job's binary and memory at every start. The field names and JSON
// names are k8s.io/api's, so the objects are read and written exactly as the API server serves them
// (runtime.DefaultUnstructuredConverter maps []byte to base64 as encoding/json does). A kind the job
// updates (Secret, ConfigMap) has every field of its API type, so that an Update writes back all it
// read; internal/kube's tests check each one against k8s.io/api.

// SecretType is a Secret's type.
type SecretType string

// The Secret types and well-known keys the job uses (k8s.io/api/core/v1's constants).
const (
	SecretTypeOpaque              SecretType = "Opaque"
	SecretTypeServiceAccountToken SecretType = "kubernetes.io/service-account-token"
	SecretTypeBasicAuth           SecretType = "kubernetes.io/basic-auth"

	// ServiceAccountNameKey annotates a token Secret with its ServiceAccount's name.
	ServiceAccountNameKey = "kubernetes.io/service-account.name"
	// ServiceAccountTokenKey is the key of the token in a token Secret.
	ServiceAccountTokenKey = "token"
	// BasicAuthUsernameKey and BasicAuthPasswordKey are the keys of a basic-auth Secret.
	BasicAuthUsernameKey = "username"
	BasicAuthPasswordKey = "password"

	// EventTypeNormal and EventTypeWarning are an Event's types.
	EventTypeNormal  = "Normal"
	EventTypeWarning = "Warning"
)

// Secret is a core/v1 Secret, every field.
type Secret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Immutable         *bool             `json:"immutable,omitempty"`
	Data              map[string][]byte `json:"data,omitempty"`
	StringData        map[string]string `json:"stringData,omitempty"`
	Type              SecretType        `json:"type,omitempty"`
}

// ConfigMap is a core/v1 ConfigMap, every field.
type ConfigMap struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Immutable         *bool             `json:"immutable,omitempty"`
	Data              map[string]string `json:"data,omitempty"`
	BinaryData        map[string][]byte `json:"binaryData,omitempty"`
}

// ServiceAccount is a core/v1 ServiceAccount, every field.
type ServiceAccount struct {
	metav1.TypeMeta              `json:",inline"`
	metav1.ObjectMeta            `json:"metadata,omitempty"`
	Secrets                      []ObjectReference      `json:"secrets,omitempty"`
	ImagePullSecrets             []LocalObjectReference `json:"imagePullSecrets,omitempty"`
	AutomountServiceAccountToken *bool                  `json:"automountServiceAccountToken,omitempty"`
}

// ObjectReference is core/v1's ObjectReference.
type ObjectReference struct {
	Kind            string    `json:"kind,omitempty"`
	Namespace       string    `json:"namespace,omitempty"`
	Name            string    `json:"name,omitempty"`
	UID             types.UID `json:"uid,omitempty"`
	APIVersion      string    `json:"apiVersion,omitempty"`
	ResourceVersion string    `json:"resourceVersion,omitempty"`
	FieldPath       string    `json:"fieldPath,omitempty"`
}

// LocalObjectReference is core/v1's LocalObjectReference.
type LocalObjectReference struct {
	Name string `json:"name,omitempty"`
}

// Event is an events.k8s.io/v1 Event with the fields the job writes; the job only creates Events,
// never updates one.
type Event struct {
	metav1.TypeMeta     `json:",inline"`
	metav1.ObjectMeta   `json:"metadata,omitempty"`
	EventTime           metav1.MicroTime `json:"eventTime"`
	ReportingController string           `json:"reportingController,omitempty"`
	ReportingInstance   string           `json:"reportingInstance,omitempty"`
	Action              string           `json:"action,omitempty"`
	Reason              string           `json:"reason,omitempty"`
	Regarding           ObjectReference  `json:"regarding,omitempty"`
	Note                string           `json:"note,omitempty"`
	Type                string           `json:"type,omitempty"`
}

// DeepCopy returns a copy of s that shares no memory with it.
func (s *Secret) DeepCopy() *Secret {
	if s == nil {
		return nil
	}
	out := &Secret{TypeMeta: s.TypeMeta, Type: s.Type, StringData: maps.Clone(s.StringData)}
	s.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if s.Immutable != nil {
		out.Immutable = ptr.To(*s.Immutable)
	}
	if s.Data != nil {
		out.Data = make(map[string][]byte, len(s.Data))
		for k, v := range s.Data {
			out.Data[k] = slices.Clone(v)
		}
	}
	return out
}
