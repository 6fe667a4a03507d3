// Not built: pins the modules whose CRDs of copies of the data the end-to-end tests install,
// read from the Go module cache (snapshot.storage.k8s.io/v1 from the CSI external-snapshotter's
// client module, velero.io/v1 from Velero's).
module domicile.dev/hack/tools/copies

go 1.26.0

require (
	github.com/kubernetes-csi/external-snapshotter/client/v8 v8.7.0
	github.com/vmware-tanzu/velero v1.18.3
)
