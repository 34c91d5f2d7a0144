package ha

import (
	"os"
	"testing"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
)

// kube is the real kube-apiserver the profile's objects are dry-run and exercised on.
var kube *kapitest.Server

func TestMain(m *testing.M) {
	kube = kapitest.MustStart(m)
	code := m.Run()
	kube.Stop()
	os.Exit(code)
}
