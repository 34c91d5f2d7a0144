#!/usr/bin/env bash
# Copies the upstream CRDs that gitops/test/crds holds from their Go modules (the module proxy is the
# only source needed): Argo CD's Application and AppProject CRDs at the version hack/argocd/build.sh builds, and
# OpenShift's Route CRD from github.com/openshift/api. OAuthClient and Group have no upstream CRD
# (openshift-apiserver serves them), so their files there are written by hand.
# Usage: hack/argocd/update-crds.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ARGOCD=$(sed -n 's/^ARGOCD=//p' hack/argocd/build.sh)
OPENSHIFT_API=v0.0.0-20251015095338-264e80a2b6e7
TOOLCHAIN=$(sed -n 's/^TOOLCHAIN=//p' hack/argocd/build.sh)
export GOWORK=off GOFLAGS=-mod=mod
dir() { (cd / && GOTOOLCHAIN=$TOOLCHAIN go mod download -json "$1" | awk -F'"' '$2=="Dir"{print $4}'); }
A=$(dir "github.com/argoproj/argo-cd/v3@$ARGOCD")
O=$(dir "github.com/openshift/api@$OPENSHIFT_API")
copy() { # src dst origin
  { printf '# Upstream, unchanged below this comment: %s\n' "$3"; cat "$1"; } > "$2"
}
copy "$A/manifests/crds/application-crd.yaml" gitops/test/crds/applications.argoproj.io.yaml \
  "github.com/argoproj/argo-cd/v3@$ARGOCD manifests/crds/application-crd.yaml"
copy "$A/manifests/crds/appproject-crd.yaml" gitops/test/crds/appprojects.argoproj.io.yaml \
  "github.com/argoproj/argo-cd/v3@$ARGOCD manifests/crds/appproject-crd.yaml"
copy "$O/route/v1/zz_generated.crd-manifests/routes.crd.yaml" gitops/test/crds/routes.route.openshift.io.yaml \
  "github.com/openshift/api@$OPENSHIFT_API route/v1/zz_generated.crd-manifests/routes.crd.yaml"
echo "updated gitops/test/crds from Argo CD $ARGOCD and openshift/api $OPENSHIFT_API"
