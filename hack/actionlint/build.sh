#!/usr/bin/env bash
# Builds actionlint from this module (go.mod pins github.com/rhysd/actionlint; Renovate's gomod manager
# keeps it current) into OUT (default: $ACTIONLINT_CACHE or ~/.cache/litemaas-gitops/actionlint/<version>),
# skipping the build when the binary already reports the pinned version. Prints the directory on its last
# line; pass it to the tests as ACTIONLINT_BIN (test/workflows lints .github/workflows with it).
# To move to another release: go get -tool github.com/rhysd/actionlint/cmd/actionlint@<version> here.
set -euo pipefail
cd "$(dirname "$0")"
export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0
V=$(go list -m -f '{{.Version}}' github.com/rhysd/actionlint)
OUT=${1:-${ACTIONLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/litemaas-gitops/actionlint}/$V}
mkdir -p "$OUT"
# Several test packages may call this at once: one builds, the others wait and then reuse.
exec 9>"$OUT/.build.lock"
flock 9
# `actionlint -version` prints the version on its first line.
if [ -x "$OUT/actionlint" ] && [ "$("$OUT/actionlint" -version 2>&1 | head -n 1)" = "$V" ]; then
  echo "$OUT"; exit 0
fi
echo "building actionlint $V into $OUT (a minute or two the first time)" >&2
# Built inside this module, actionlint cannot read its own version from the build info: set it.
go build -trimpath -ldflags "-s -w -X github.com/rhysd/actionlint.version=$V" \
  -o "$OUT/actionlint.tmp" github.com/rhysd/actionlint/cmd/actionlint
mv "$OUT/actionlint.tmp" "$OUT/actionlint"
echo "$OUT"
