#!/usr/bin/env bash
# Regenerates go.mod/go.sum of this throwaway module, which builds kube-apiserver and etcd from the Go
# module proxy for the test harness. It is its own module so it never enters the project's module graph.
# Usage: hack/kapi/gen-module.sh [K8S_VERSION] [ETCD_VERSION]
set -euo pipefail
cd "$(dirname "$0")"
K=${1:-v1.37.2}; E=${2:-}
S=v0.${K#v1.}
export GOWORK=off GOFLAGS=-mod=mod
rm -f go.mod go.sum
printf 'module kapitools\n\ngo 1.26.0\n' > go.mod
go mod download -json "k8s.io/kubernetes@$K" >/dev/null 2>&1 || true
KMOD=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K.mod
repl=""
for m in $(awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1}' "$KMOD"); do
  if (cd / && go list -m "$m@$S" >/dev/null 2>&1); then repl+=$(printf '\t%s => %s %s' "$m" "$m" "$S")$'\n'; fi
done
printf '\nrequire k8s.io/kubernetes %s\n\nreplace (\n%s)\n' "$K" "$repl" >> go.mod
go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K"
E=${E:-$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2}' "$KMOD")}
go get -tool "go.etcd.io/etcd/server/v3@$E"
echo "generated go.mod for kube-apiserver $K, etcd $E"
