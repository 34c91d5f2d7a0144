# litemaas-gitops: `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       ?= bin
IMAGE     ?= ghcr.io/litemaas-gitops/litemaas-sync:0.1.0
# Test timeout per package: the real Argo CD scenarios (test/argocd) take about 20 minutes on 2 cores.
TEST_TIMEOUT ?= 30m
export CGO_ENABLED ?= 0

.PHONY: help
help: ## Show this help (in colour on a terminal only)
	@if [ -t 1 ]; then on=$$'\033[36m' off=$$'\033[0m'; else on= off=; fi; \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "; printf "Targets:\n"} /^[a-zA-Z0-9_-]+:.*## / {printf "  %s%-12s%s %s\n", on, $$1, off, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build litemaas-sync, litemaas-ops and litellm-double into ./bin (static)
	$(GO) build -trimpath -buildvcs=auto -ldflags "-s -w" -o $(BIN)/litemaas-sync ./cmd/litemaas-sync
	$(GO) build -trimpath -buildvcs=auto -ldflags "-s -w" -o $(BIN)/litellm-double ./cmd/litellm-double
	$(GO) build -trimpath -buildvcs=auto -ldflags "-s -w" -o $(BIN)/litemaas-ops ./cmd/litemaas-ops

# The two commands a user runs before pushing, from the built binaries (go run would turn their exit
# status 2 into 1).
.PHONY: check validate
check: ops-binary ## Before a push, offline: validate the catalogs, render, run the policy checks (OVERLAY=dir: that overlay only)
	$(BIN)/litemaas-ops check$(if $(filter command line environment,$(origin OVERLAY)), --overlay $(OVERLAY))

.PHONY: ops-binary
ops-binary:
	@$(GO) build -trimpath -buildvcs=auto -ldflags "-s -w" -o $(BIN)/litemaas-ops ./cmd/litemaas-ops

CATALOG ?= gitops/base/models.yaml
validate: ## Validate a models catalog offline (CATALOG=file, default gitops/base/models.yaml; exit 2 when invalid)
	@$(GO) build -trimpath -buildvcs=auto -ldflags "-s -w" -o $(BIN)/litemaas-sync ./cmd/litemaas-sync
	$(BIN)/litemaas-sync validate $(CATALOG)

.PHONY: fmt
fmt: ## Format the Go code
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet, and fail when gofmt would change anything
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

.PHONY: kapi
kapi: ## Build (or reuse) the kube-apiserver and etcd the tests start
	@hack/kapi/build.sh >/dev/null

.PHONY: argocd
argocd: ## Build (or reuse) Argo CD, kube-controller-manager and kustomize for the Argo CD scenarios
	@hack/argocd/build.sh >/dev/null

.PHONY: promtool
promtool: ## Build (or reuse) Prometheus's promtool, which checks and unit-tests the alerts
	@hack/promtool/build.sh >/dev/null

.PHONY: actionlint
actionlint: ## Build (or reuse) actionlint, which lints the GitHub workflows
	@hack/actionlint/build.sh >/dev/null

# Skips expected on CI; under CI=true any other skip fails `make test` (hack/testreport).
SKIPS_ALLOWED ?= hack/testreport/skips-allowed.txt

.PHONY: test
test: vet kapi argocd promtool actionlint ## Run every test: unit, PostgreSQL, kube-apiserver, manifests, end to end, Argo CD; list every skip (CI=true: fail on one not allowed)
	@mkdir -p _output
	$(GO) build -o _output/testreport ./hack/testreport
	@# test/argocd first: the longest package (about 13 minutes) is built and started before the others,
	@# which run beside it.
	KAPI_BIN=$$(hack/kapi/build.sh | tail -n 1) ARGOCD_BIN=$$(hack/argocd/build.sh | tail -n 1) \
	PROMTOOL_BIN=$$(hack/promtool/build.sh | tail -n 1) ACTIONLINT_BIN=$$(hack/actionlint/build.sh | tail -n 1) \
	$(GO) test -json -count=1 -timeout $(TEST_TIMEOUT) ./test/argocd/ ./... | _output/testreport -allow $(SKIPS_ALLOWED)

# The packages the job's behaviour lives in, under the race detector (it needs cgo and a C compiler).
RACE_PKGS ?= ./internal/job/... ./internal/reconcile/... ./internal/store/... ./internal/litellm/... \
	./internal/catalog/... ./internal/config/... ./internal/readiness/... ./internal/modelsync/... \
	./internal/fault/... ./internal/redact/... ./internal/kube/... ./internal/rollout/... ./internal/cli/...

.PHONY: race
race: ## The job's core packages under the race detector
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 10m $(RACE_PKGS)

.PHONY: bench
bench: kapi argocd ## Run the benchmarks (job vs the runbook's procedure; commit to PostSync under Argo CD)
	KAPI_BIN=$$(hack/kapi/build.sh | tail -n 1) ARGOCD_BIN=$$(hack/argocd/build.sh | tail -n 1) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./test/bench/... ./test/argocd/...

.PHONY: bench-job
bench-job: kapi ## The job's benchmarks once each (test/bench): each fails when its target is missed; CI runs them
	KAPI_BIN=$$(hack/kapi/build.sh | tail -n 1) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 15m ./test/bench/...

.PHONY: fuzz
fuzz: ## Fuzz the catalog parser for a minute
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./internal/catalog/

.PHONY: manifests
manifests: ## Render every overlay and the cluster part into _output/manifests
	$(GO) run ./internal/manifests/cmd/render -out _output/manifests

.PHONY: demo
demo: build kapi ## Run the job locally against a throwaway stack, twice, then clean up
	KAPI_BIN=$$(hack/kapi/build.sh | tail -n 1) $(GO) run ./hack/demo -binary $(BIN)/litemaas-sync

OVERLAY ?= gitops/overlays/example
ARGS    ?=

.PHONY: deploy verify undeploy restore
deploy: ops-binary ## Deploy LiteMaaS with Argo CD to your kubeconfig's cluster (OVERLAY=..., ARGS="--yes --repo-url ...")
	$(BIN)/litemaas-ops deploy --overlay $(OVERLAY) $(ARGS)

verify: ops-binary ## Check pods, published models, backups and routes (ARGS=--insecure for a self-signed router cert)
	$(BIN)/litemaas-ops verify $(ARGS)

undeploy: ops-binary ## Remove the Application and namespace litemaas (ARGS=--cluster: also the cluster-admin part)
	$(BIN)/litemaas-ops undeploy --overlay $(OVERLAY) $(ARGS)

restore: ops-binary ## Restore a backup: FROM=<dir> TO_URL=postgresql://USER@HOST:5432/postgres [ARGS=--force]
	@if [ -z "$(FROM)" ] || [ -z "$(TO_URL)" ]; then echo "usage: make restore FROM=<backup dir> TO_URL=postgresql://USER@HOST:5432/postgres [ARGS=--force]"; exit 2; fi
	$(BIN)/litemaas-ops restore --from "$(FROM)" --to-url "$(TO_URL)" $(ARGS)

.PHONY: pin-images
pin-images: ops-binary ## Resolve every image tag (images/images.yaml, the overlays' images:) to its digest and write it
	$(BIN)/litemaas-ops pin-images

.PHONY: image image-push
image: ## Build the job image for linux/amd64 and linux/arm64 into the OCI layout _output/image and its SBOM _output/image.spdx.json (no container engine needed)
	$(GO) run ./hack/image build --out _output/image --image $(IMAGE) $(if $(SOURCE),--source $(SOURCE))

image-push: ## Push the image `make image` built: IMAGE=<registry>/<repo>:<tag>; prints the digest and the overlay's images: entry
	@if [ "$(origin IMAGE)" = "file" ]; then echo "usage: make image-push IMAGE=<registry>/<repository>:<tag> (e.g. ghcr.io/<you>/litemaas-sync:0.1.0)"; exit 2; fi
	$(GO) run ./hack/image push --layout _output/image --image $(IMAGE)

.PHONY: clean
clean: ## Remove build output
	rm -rf $(BIN) _output
