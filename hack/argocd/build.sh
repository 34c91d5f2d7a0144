#!/usr/bin/env bash
# Builds what the Argo CD scenarios (test/argocd) run, from the Go module proxy, into OUT (default:
# $ARGOCD_CACHE or ~/.cache/litemaas-gitops/argocd/<versions>), and skips the build when OUT already
# holds it. Prints the directory on its last line; pass it to the tests as ARGOCD_BIN.
#   argocd                   Argo CD (every role: repo-server, application-controller, ...), from its module
#   kube-controller-manager  at the version hack/kapi builds kube-apiserver at (Jobs need its job controller)
#   kustomize                at the version Argo CD pins, the one its repo-server runs
#   git-verify-wrapper.sh    from Argo CD's module: the repo-server calls it on every revision
#   manifests/               Argo CD's CRDs and base config, copied from its module
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
ARGOCD=v3.6.1
KUSTOMIZE=v5.8.3
# Argo CD 3.6 and kustomize 5.8 need Go 1.27; the go command fetches this toolchain from the module
# proxy for these builds only, the project itself stays on its own Go version.
TOOLCHAIN=go1.27.3
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
K=$(cd ../kapi && go list -m -f '{{.Version}}' k8s.io/kubernetes)
OUT=${1:-${ARGOCD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/litemaas-gitops/argocd}/argocd-$ARGOCD-k8s-$K-kustomize-$KUSTOMIZE}
STAMP="argocd $ARGOCD, kube-controller-manager $K, kustomize $KUSTOMIZE"
mkdir -p "$OUT"
# Several test packages may call this at once: one builds, the others wait and then reuse.
exec 9>"$OUT/.build.lock"
flock 9
if [ "$(cat "$OUT/.built" 2>/dev/null)" = "$STAMP" ] && [ -x "$OUT/argocd" ] && [ -x "$OUT/kustomize" ] &&
   [ "$("$OUT/kube-controller-manager" --version 2>/dev/null)" = "Kubernetes $K" ]; then
  echo "$OUT"; exit 0
fi
rm -f "$OUT/.built"

# It reports e.g. "argocd: v3.6.1+unknown" (no git commit in a module build).
if [ ! -x "$OUT/argocd" ] || [[ "$("$OUT/argocd" version --client --short 2>/dev/null)" != "argocd: $ARGOCD+"* ]]; then
  echo "building Argo CD $ARGOCD into $OUT (7 to 9 minutes on 2 cores the first time)" >&2
  MOD=$(cd / && GOTOOLCHAIN=$TOOLCHAIN go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD" |
    awk -F'"' '$2=="Dir"{print $4}')
  SRC="$OUT/.src"
  rm -rf "$SRC"; mkdir -p "$SRC"
  # The module's go.mod points gitops-engine at ./gitops-engine, its own module and so absent from the
  # zip: drop that replace and the published gitops-engine of the same version resolves instead.
  (cd "$MOD" && tar --exclude=./docs -cf - .) | tar -C "$SRC" -xf -
  chmod -R u+w "$SRC"
  P=github.com/argoproj/argo-cd/v3/common
  (cd "$SRC" && GOTOOLCHAIN=$TOOLCHAIN go mod edit -dropreplace github.com/argoproj/argo-cd/gitops-engine/v3 &&
    GOTOOLCHAIN=$TOOLCHAIN go build -trimpath -o "$OUT/argocd.tmp" \
      -ldflags "-s -w -X $P.version=${ARGOCD#v} -X $P.gitTag=$ARGOCD -X $P.gitTreeState=clean -X $P.buildDate=1970-01-01T00:00:00Z" ./cmd)
  rm -rf "$OUT/manifests"; mkdir -p "$OUT/manifests/crds" "$OUT/manifests/base"
  cp "$SRC"/manifests/crds/*.yaml "$OUT/manifests/crds/"
  cp -r "$SRC/manifests/base/config" "$OUT/manifests/base/"
  cp "$SRC/hack/git-verify-wrapper.sh" "$OUT/git-verify-wrapper.sh"
  chmod 0755 "$OUT/git-verify-wrapper.sh"
  rm -rf "$SRC"
  mv "$OUT/argocd.tmp" "$OUT/argocd"
fi

if [ ! -x "$OUT/kustomize" ] || [ "$("$OUT/kustomize" version 2>/dev/null)" != "$KUSTOMIZE" ]; then
  echo "building kustomize $KUSTOMIZE into $OUT" >&2
  # kustomize/kustomize.go's version comes from the module's build info; hack/argocd/kustomize pins
  # the kube-openapi its kyaml needs (the pseudo-version kyaml asks for is not on the proxy).
  (cd kustomize && GOTOOLCHAIN=$TOOLCHAIN go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kustomize/api/provenance.version=$KUSTOMIZE" \
    -o "$OUT/kustomize.tmp" sigs.k8s.io/kustomize/kustomize/v5)
  mv "$OUT/kustomize.tmp" "$OUT/kustomize"
fi

if [ "$("$OUT/kube-controller-manager" --version 2>/dev/null)" != "Kubernetes $K" ]; then
  echo "building kube-controller-manager $K into $OUT (about 5 minutes the first time)" >&2
  # Built from a copy of hack/kapi's module, so that it has exactly the kube-apiserver's version and
  # dependencies; the copy takes whatever go.sum lines the extra packages need.
  TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
  cp ../kapi/go.mod ../kapi/go.sum "$TMP/"
  MINOR=$(echo "$K" | cut -d. -f2)
  V=k8s.io/component-base/version; C=k8s.io/client-go/pkg/version
  LD="-s -w -X $V.gitVersion=$K -X $V.gitMajor=1 -X $V.gitMinor=$MINOR -X $V.gitTreeState=clean -X $V.buildDate=1970-01-01T00:00:00Z"
  LD="$LD -X $C.gitVersion=$K -X $C.gitMajor=1 -X $C.gitMinor=$MINOR"
  (cd "$TMP" && go build -trimpath -ldflags "$LD" -o "$OUT/kube-controller-manager.tmp" k8s.io/kubernetes/cmd/kube-controller-manager)
  mv "$OUT/kube-controller-manager.tmp" "$OUT/kube-controller-manager"
fi
cd "$HERE"
echo "$STAMP" > "$OUT/.built"
echo "$OUT"
