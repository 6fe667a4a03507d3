// Not built: pins the modules whose policy report CRDs the end-to-end tests install, read from
// the Go module cache (wgpolicyk8s.io/v1alpha2 from Kyverno's module, openreports.io/v1alpha1
// from the OpenReports API module).
module domicile.dev/hack/tools/reports

go 1.26.0

require (
	github.com/kyverno/kyverno v1.19.1
	github.com/openreports/reports-api v0.2.1
)
