#!/usr/bin/env bash
# Builds kube-apiserver and etcd from this module into OUT (default: $KAPI_CACHE or
# ~/.cache/litemaas-gitops/kapi/<k8s version>), skipping the build when both binaries already
# report the pinned versions. Prints the directory holding the binaries on its last line.
set -euo pipefail
cd "$(dirname "$0")"
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
K=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
E=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
OUT=${1:-${KAPI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/litemaas-gitops/kapi}/$K-etcd-$E}
mkdir -p "$OUT"
# Several test packages may call this at once: one builds, the others wait and then reuse.
exec 9>"$OUT/.build.lock"
flock 9
# `grep -q` would exit at the first match and kill etcd with SIGPIPE under pipefail: read it all.
if [ -x "$OUT/kube-apiserver" ] && [ "$("$OUT/kube-apiserver" --version)" = "Kubernetes $K" ] &&
   [ -x "$OUT/etcd" ] && "$OUT/etcd" --version | grep -x "etcd Version: ${E#v}" >/dev/null; then
  echo "$OUT"; exit 0
fi
MINOR=$(echo "$K" | cut -d. -f2)
V=k8s.io/component-base/version; C=k8s.io/client-go/pkg/version
LD="-s -w -X $V.gitVersion=$K -X $V.gitMajor=1 -X $V.gitMinor=$MINOR -X $V.gitTreeState=clean -X $V.buildDate=1970-01-01T00:00:00Z"
LD="$LD -X $C.gitVersion=$K -X $C.gitMajor=1 -X $C.gitMinor=$MINOR"
echo "building kube-apiserver $K and etcd $E into $OUT (about 5 minutes the first time)" >&2
go build -trimpath -ldflags "$LD" -o "$OUT/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3
mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"; mv "$OUT/etcd.tmp" "$OUT/etcd"
echo "$OUT"
