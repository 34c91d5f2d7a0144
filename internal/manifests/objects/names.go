package objects

// The recommended labels every object carries, the Argo CD hook annotations, and the names of the
// job's objects the rules look for.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelComponent = "app.kubernetes.io/component"
	LabelVersion   = "app.kubernetes.io/version"

	HookAnnotation         = "argocd.argoproj.io/hook"
	HookDeleteAnnotation   = "argocd.argoproj.io/hook-delete-policy"
	SyncJobName            = "litemaas-sync"
	SyncStatusConfigMap    = "litemaas-sync-status"
	ModelsConfigMapPrefix  = "litemaas-models-"
	ModelsConfigMapDataKey = "models.yaml"
)

// Placeholder is the apps domain the bases carry until an overlay's replacements overwrite it.
const Placeholder = "CLUSTER_APPS_DOMAIN"
