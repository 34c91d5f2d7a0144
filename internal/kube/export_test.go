package kube

// SetServiceAccountNamespaceFile points the pod-namespace lookup at path for a test and returns the
// function that restores it.
func SetServiceAccountNamespaceFile(path string) (restore func()) {
	old := serviceAccountNamespaceFile
	serviceAccountNamespaceFile = path
	return func() { serviceAccountNamespaceFile = old }
}
