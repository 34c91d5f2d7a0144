#!/usr/bin/env bash
# Builds Prometheus's promtool from this module (go.mod pins the Prometheus module; Renovate's gomod
# manager keeps it current) into OUT (default: $PROMTOOL_CACHE or
# ~/.cache/litemaas-gitops/promtool/<module version>), skipping the build when the binary already reports
# the pinned release. Prints the directory on its last line; pass it to the tests as PROMTOOL_BIN.
# The alerts test (internal/manifests) runs `promtool check rules` and `promtool test rules` on the
# rendered PrometheusRule: the rules are judged by Prometheus's own code without the project importing it.
# To move to another release: go get -tool github.com/prometheus/prometheus/cmd/promtool@<v0.3MM.P> here.
set -euo pipefail
cd "$(dirname "$0")"
export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0
M=$(go list -m -f '{{.Version}}' github.com/prometheus/prometheus)
# The module's v0.3MM.P is Prometheus release 3.MM.P (its VERSION file; checked below when building).
N=${M#v0.}; MINOR=${N%%.*}
RELEASE=$((MINOR / 100)).$((MINOR % 100)).${N#*.}
OUT=${1:-${PROMTOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/litemaas-gitops/promtool}/$M}
mkdir -p "$OUT"
# Several test packages may call this at once: one builds, the others wait and then reuse.
exec 9>"$OUT/.build.lock"
flock 9
# The first line reads "promtool, version 3.16.0 (branch: ..., revision: ...)".
if [ -x "$OUT/promtool" ] && [[ "$("$OUT/promtool" --version 2>&1 | head -n 1)" == "promtool, version $RELEASE "* ]]; then
  echo "$OUT"; exit 0
fi
DIR=$(go mod download -json "github.com/prometheus/prometheus@$M" | awk -F'"' '$2=="Dir"{print $4}')
[ "$(cat "$DIR/VERSION")" = "$RELEASE" ] || { echo "github.com/prometheus/prometheus $M is release $(cat "$DIR/VERSION"), not $RELEASE" >&2; exit 1; }
V=github.com/prometheus/common/version
echo "building promtool $RELEASE (module $M) into $OUT (the first time: a few minutes)" >&2
# remove_all_sd: Prometheus's own build tag that leaves out every service discovery plugin (the cloud
# SDKs, client-go): the tests use `check rules` and `test rules`, which need none, and the build takes a
# fraction of the time.
go build -trimpath -tags remove_all_sd -ldflags "-s -w -X $V.Version=$RELEASE -X $V.Revision=$M -X $V.Branch=HEAD -X $V.BuildUser=litemaas-gitops -X $V.BuildDate=19700101-00:00:00" \
  -o "$OUT/promtool.tmp" github.com/prometheus/prometheus/cmd/promtool
mv "$OUT/promtool.tmp" "$OUT/promtool"
echo "$OUT"
