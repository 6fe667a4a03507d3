# domicile: `make run` shows the operator's world on a local cluster; `make test` runs every test.
# Both build what they need (the control plane from Go modules, cached outside the checkout).

CARGO ?= cargo

.PHONY: run test lint unit chart e2e e2e-real images bench crd cluster-up cluster-down

## run: start the local cluster, install the CRD, apply examples/ and show `kubectl get rdc -A`.
run:
	hack/run-local.sh

## test: formatting and lints, unit tests, end-to-end tests against a fresh local cluster, then
## those on a real node (kubelet and containerd; needs root).
test: lint unit chart e2e e2e-real

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --all-features -- -D warnings

unit:
	$(CARGO) test --lib --bins

e2e:
	hack/e2e.sh

## e2e-real: a cluster with a real node, the operator installed from the chart and its image.
e2e-real:
	hack/e2e-real.sh

## images: the operator's, the sandbox's and the test workload's images, as docker-archives.
images:
	hack/images.sh

## bench: the operator at scale on a cluster of its own; prints the figures and writes BENCHMARKS.md
## (about half an hour; not part of `make test`).
bench:
	hack/bench.sh

## crd: regenerate the checked-in CRDs, and the chart's copies, from the Rust types.
crd:
	$(CARGO) run --quiet -- crd regionaldatacenters > crds/domicile.dev_regionaldatacenters.yaml
	$(CARGO) run --quiet -- crd residencyhistories > crds/domicile.dev_residencyhistories.yaml
	cp crds/domicile.dev_regionaldatacenters.yaml crds/domicile.dev_residencyhistories.yaml charts/domicile/files/

cluster-up:
	hack/cluster-up.sh

cluster-down:
	hack/cluster-down.sh

## chart: lint and render the Helm chart with the helm that hack/build-tools.sh builds.
chart:
	hack/chart-check.sh
