//! Prevention: the chart's ValidatingAdmissionPolicies, installed by hack/e2e.sh with every action
//! on Deny, refuse in a jurisdiction namespace what would let data leave it, keep managed objects
//! to the operator and Kubernetes' controllers, and fence the operator's own account. Every
//! refusal is tried as the person or program it guards against.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    ClusterObject, JURISDICTION_LABEL, TestNamespace, assert_refused, kubectl, kubectl_ok,
    local_rdc, poll, unique,
};

const NAMESPACE_LABEL: &str = "domicile.dev/jurisdiction";
const EXEMPT: &str = "domicile.dev/admission=exempt";
/// The namespace hack/e2e.sh installs the chart's identity in.
const OPERATOR_NAMESPACE: &str = "domicile-system";

fn operator_account() -> String {
    std::env::var("DOMICILE_OPERATOR_ACCOUNT")
        .expect("DOMICILE_OPERATOR_ACCOUNT names the chart's ServiceAccount (hack/e2e.sh sets it)")
}

/// A namespace of `code`, labelled as a user would.
fn jurisdiction_namespace(test: &str, code: &str) -> TestNamespace {
    let ns = TestNamespace::new(test);
    kubectl_ok(
        &[
            "label",
            "namespace",
            &ns.name,
            &format!("{NAMESPACE_LABEL}={code}"),
        ],
        None,
    );
    ns
}

fn pod(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["containers"] = json!([{"name": "app", "image": "registry.example/app:1"}]);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

fn requiring(terms: &[&[&str]]) -> Value {
    let terms: Vec<Value> = terms
        .iter()
        .map(|values| {
            json!({"matchExpressions": [
                {"key": JURISDICTION_LABEL, "operator": "In", "values": values}
            ]})
        })
        .collect();
    json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": terms
    }}}})
}

/// Creates `manifest` in `ns` and returns kubectl's outcome.
fn create(ns: &TestNamespace, manifest: &Value) -> crate::support::Kubectl {
    ns.kubectl(&["create", "-f", "-"], Some(&manifest.to_string()))
}

#[test]
fn pods_in_a_jurisdiction_namespace_must_require_the_jurisdiction() {
    let ns = jurisdiction_namespace("admission_pods", "CN");

    let out = create(&ns, &pod("anywhere", json!({})));
    assert_refused(
        &out,
        "domicile-pods",
        &[
            "pod anywhere could run outside CN",
            &format!("{JURISDICTION_LABEL}=CN"),
            "requiredDuringSchedulingIgnoredDuringExecution",
            "operator: In, values: [CN]",
            "spec.nodeSelector",
        ],
    );
    eprintln!("refused: {}", out.stderr.trim());

    // Admitted, and the scheduler keeps it in CN.
    let out = create(&ns, &pod("in-cn", requiring(&[&["CN"]])));
    assert!(out.success, "{}", out.stderr);
    let node = poll("pod in-cn to be scheduled", Duration::from_secs(60), || {
        let pod = ns.get_json("pod", "in-cn")?;
        pod["spec"]["nodeName"].as_str().map(str::to_owned)
    });
    let labels = crate::support::node_labels(&node);
    assert_eq!(labels[JURISDICTION_LABEL], "CN", "{node}");

    let out = create(&ns, &pod("cn-or-us", requiring(&[&["CN", "US"]])));
    assert_refused(
        &out,
        "domicile-pods",
        &["pod cn-or-us could run outside CN"],
    );
    let out = create(&ns, &pod("two-terms", requiring(&[&["CN"], &["US"]])));
    assert_refused(
        &out,
        "domicile-pods",
        &["pod two-terms could run outside CN"],
    );

    let out = create(
        &ns,
        &pod(
            "selected",
            json!({"nodeSelector": {JURISDICTION_LABEL: "CN"}}),
        ),
    );
    assert!(out.success, "{}", out.stderr);

    // Ways around the scheduler and around the claims are closed too.
    let out = create(
        &ns,
        &pod(
            "pinned",
            json!({"nodeSelector": {JURISDICTION_LABEL: "CN"}, "nodeName": "us-east-1"}),
        ),
    );
    assert_refused(&out, "domicile-pods", &["spec.nodeName: us-east-1"]);
    let out = create(
        &ns,
        &pod(
            "nfs",
            json!({"nodeSelector": {JURISDICTION_LABEL: "CN"}, "volumes": [
                {"name": "share", "nfs": {"server": "192.0.2.10", "path": "/exports"}}
            ]}),
        ),
    );
    assert_refused(&out, "domicile-pods", &["pod nfs mounts share"]);
}

#[test]
fn a_subdivision_namespace_needs_the_subdivision_too() {
    let ns = jurisdiction_namespace("admission_subdivision", "CN-SH");
    let out = create(&ns, &pod("country-only", requiring(&[&["CN"]])));
    assert_refused(
        &out,
        "domicile-pods",
        &["domicile.node-restriction.kubernetes.io/subdivision=CN-SH"],
    );
    let mut both = requiring(&[&["CN"]]);
    both["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchExpressions"]
        .as_array_mut()
        .expect("expressions")
        .push(json!({"key": "domicile.node-restriction.kubernetes.io/subdivision",
                     "operator": "In", "values": ["CN-SH"]}));
    let out = create(&ns, &pod("shanghai", both));
    assert!(out.success, "{}", out.stderr);
}

#[test]
fn a_deployments_pods_without_the_jurisdiction_are_never_created() {
    let ns = jurisdiction_namespace("admission_deployment", "CN");
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ingest"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "ingest"}},
            "template": {
                "metadata": {"labels": {"app": "ingest"}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}
            }
        }
    });
    ns.kubectl_ok(&["apply", "-f", "-"], Some(&deployment.to_string()));
    let message = poll(
        "the ReplicaSet to report the refusal",
        Duration::from_secs(60),
        || {
            let list: Value = serde_json::from_str(&ns.kubectl_ok(
                &["get", "replicasets", "-l", "app=ingest", "-o", "json"],
                None,
            ))
            .ok()?;
            let conditions = list["items"][0]["status"]["conditions"].as_array()?.clone();
            conditions
                .iter()
                .find(|c| c["type"] == "ReplicaFailure" && c["status"] == "True")
                .and_then(|c| c["message"].as_str().map(str::to_owned))
        },
    );
    assert!(message.contains("domicile-pods"), "{message}");
    assert!(message.contains("could run outside CN"), "{message}");
    eprintln!("ReplicaFailure: {message}");
    let pods = ns.kubectl_ok(&["get", "pods", "-l", "app=ingest", "-o", "name"], None);
    assert!(pods.trim().is_empty(), "pods were created: {pods}");
}

/// The declared classes the claims policy reads, as the operator keeps them.
fn declared_classes() -> Value {
    let out = kubectl_ok(
        &[
            "get",
            "configmap",
            "domicile-storage-classes",
            "-n",
            "domicile-system",
            "-o",
            "json",
        ],
        None,
    );
    let map: Value = serde_json::from_str(&out).expect("kubectl prints JSON");
    map["data"].clone()
}

#[test]
fn claims_must_name_a_class_that_declares_the_jurisdiction() {
    let ns = jurisdiction_namespace("admission_claims", "CN");
    let declared = unique("e2e-claims-cn");
    let undeclared = unique("e2e-claims-plain");
    let _declared = crate::drift::class(&declared, Some("CN"));
    let _undeclared = crate::drift::class(&undeclared, None);
    poll(
        "the operator to list the declared class",
        Duration::from_secs(30),
        || (declared_classes()[&declared] == "CN").then_some(()),
    );
    assert!(declared_classes().get(&undeclared).is_none());

    let claim = |name: &str, class: &str| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
               "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}})
    };
    let out = create(&ns, &claim("plain", &undeclared));
    assert_refused(
        &out,
        "domicile-claims",
        &[
            &format!("StorageClass {undeclared}, which does not declare CN"),
            &format!("{JURISDICTION_LABEL}=CN"),
            &declared,
        ],
    );
    eprintln!("refused: {}", out.stderr.trim());
    let out = create(&ns, &claim("kept", &declared));
    assert!(out.success, "{}", out.stderr);

    // A class whose label goes is no longer declared, and the operator says so to the policy.
    kubectl_ok(
        &[
            "label",
            "storageclass",
            &declared,
            &format!("{JURISDICTION_LABEL}-"),
        ],
        None,
    );
    poll(
        "the operator to take the class out",
        Duration::from_secs(30),
        || declared_classes().get(&declared).is_none().then_some(()),
    );
    let out = create(&ns, &claim("late", &declared));
    assert_refused(&out, "domicile-claims", &["does not declare CN"]);
}

/// Runs `kubectl edit` with an editor that raises the replicas, as a person would.
fn kubectl_edit(ns: &TestNamespace, what: &str) -> crate::support::Kubectl {
    let editor = std::env::temp_dir().join(format!("domicile-e2e-editor-{}", std::process::id()));
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i -e 's/^  replicas: 1$/  replicas: 5/' \"$1\"\n",
    )
    .expect("the editor is written");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("the editor is executable");
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned());
    let out = std::process::Command::new(kubectl)
        .args(["-n", &ns.name, "edit", what])
        .env("KUBE_EDITOR", &editor)
        .output()
        .expect("kubectl runs");
    let _ = std::fs::remove_file(editor);
    out.into()
}

#[test]
fn managed_objects_are_the_operators_alone_and_the_namespace_is_guarded() {
    let ns = TestNamespace::new("admission_managed");
    ns.create_and_wait_ready(&local_rdc("ledger", "CN", 1));

    // The operator labelled the namespace, and the status says the guard is in force.
    let namespace: Value = serde_json::from_str(&kubectl_ok(
        &["get", "namespace", &ns.name, "-o", "json"],
        None,
    ))
    .expect("kubectl prints JSON");
    assert_eq!(namespace["metadata"]["labels"][NAMESPACE_LABEL], "CN");
    let status = poll("AdmissionGuarded=True", Duration::from_secs(30), || {
        let status = ns.get_json("rdc", "ledger")?["status"].clone();
        let guarded = status["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "AdmissionGuarded" && c["status"] == "True");
        guarded.then_some(status)
    });
    assert_eq!(status["guard"]["namespaceJurisdiction"], "CN");
    let policies: Vec<(String, String)> = status["guard"]["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["actions"].to_string(),
            )
        })
        .collect();
    for guard in ["pods", "claims", "managed", "operator"] {
        assert!(
            policies.contains(&(format!("domicile-{guard}"), r#"["Deny"]"#.to_owned())),
            "{policies:?}"
        );
    }

    // The audit judges the guard by itself, beside the residency verdict.
    let binary = std::env::var("DOMICILE_BIN")
        .expect("DOMICILE_BIN names the domicile binary (hack/e2e.sh sets it)");
    let out = std::process::Command::new(&binary)
        .args(["audit", "-n", &ns.name, "-o", "json"])
        .output()
        .expect("domicile audit runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let guard = &reports[0]["guard"];
    assert_eq!(guard["guarded"], true, "{guard}");
    assert_eq!(guard["reason"], "Enforced");
    assert_eq!(guard["namespaceJurisdiction"], "CN");
    let out = std::process::Command::new(&binary)
        .args(["audit", "-n", &ns.name])
        .output()
        .expect("domicile audit runs");
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{table}");
    assert!(
        table.lines().next().is_some_and(|h| h.ends_with("GUARD")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|r| r.ends_with("Enforced")),
        "{table}"
    );

    let out = kubectl_edit(&ns, "statefulset/ledger");
    assert_refused(
        &out,
        "domicile-managed",
        &[
            "managed by domicile: edit the RegionalDataCenter instead",
            "StatefulSet ledger of RegionalDataCenter ledger",
            "may not update it",
        ],
    );
    eprintln!("kubectl edit: {}", out.stderr.trim());
    let replicas = ns
        .get_json("statefulset", "ledger")
        .expect("the StatefulSet")["spec"]["replicas"]
        .clone();
    assert_eq!(replicas, 1);

    let out = ns.kubectl(&["delete", "service", "ledger"], None);
    assert_refused(&out, "domicile-managed", &["may not delete it"]);
    let volume =
        ns.get_json("rdc", "ledger").expect("the RDC")["status"]["placements"][0]["volume"]
            .as_str()
            .expect("a bound volume")
            .to_owned();
    let out = kubectl(
        &[
            "label",
            "pv",
            &volume,
            "domicile.dev/regional-data-center-",
            "app.kubernetes.io/managed-by-",
        ],
        None,
    );
    assert_refused(&out, "domicile-managed", &["PersistentVolume"]);
    // Nor can a tenant forge an object the operator would take for its own: by its labels,
    let claim = |name: &str, labels: Value| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": labels},
            "spec": {"storageClassName": "domicile-local-cn", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}})
    };
    let forged = claim(
        "ledger-forged",
        json!({"domicile.dev/regional-data-center": "ledger"}),
    );
    let out = create(&ns, &forged);
    assert_refused(&out, "domicile-managed", &["may not create it"]);
    // or by the name a replica's claim will have, made ahead of a scale-up.
    let ahead = claim("data-ledger-7", json!({}));
    let out = create(&ns, &ahead);
    assert_refused(
        &out,
        "domicile-claims",
        &["only the StatefulSet controller makes claims named data-NAME-N"],
    );
}

/// `kubectl create --as` the operator's ServiceAccount.
fn create_as_operator(namespace: Option<&str>, manifest: &Value) -> crate::support::Kubectl {
    let account = format!("--as={}", operator_account());
    let mut args = vec!["create", "-f", "-", account.as_str()];
    if let Some(namespace) = namespace {
        args.extend(["-n", namespace]);
    }
    kubectl(&args, Some(&manifest.to_string()))
}

fn local_volume(name: &str, source: Value) -> Value {
    let mut spec = json!({
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "storageClassName": "e2e-none",
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["cn-beijing-1"]}
        ]}]}}
    });
    for (key, value) in source.as_object().expect("a source") {
        spec[key] = value.clone();
    }
    json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec})
}

#[test]
fn the_operators_own_account_cannot_reach_a_host() {
    let ns = TestNamespace::new("admission_operator");
    let outside = unique("e2e-escape");
    let out = create_as_operator(
        None,
        &local_volume(&outside, json!({"local": {"path": "/etc"}})),
    );
    assert_refused(
        &out,
        "domicile-operator",
        &[
            "may create only local volumes pre-bound to a data claim",
            "not /etc",
        ],
    );
    eprintln!("PV outside the root: {}", out.stderr.trim());
    let out = create_as_operator(
        None,
        &local_volume(
            &outside,
            json!({"hostPath": {"path": "/var/lib/domicile/x"}}),
        ),
    );
    assert_refused(&out, "domicile-operator", &["not a volume of another kind"]);
    // At the path derived from its claim it may (the dry run keeps the cluster as it was); under
    // the root but in another data centre's folder it may not.
    let account = format!("--as={}", operator_account());
    let claim = json!({"claimRef": {"namespace": "e2e", "name": "data-inside-0"}});
    let mut inside = local_volume(
        &outside,
        json!({"local": {"path": "/var/lib/domicile/e2e/inside/0"}}),
    );
    inside["spec"]["claimRef"] = claim["claimRef"].clone();
    kubectl_ok(
        &["create", "--dry-run=server", "-f", "-", &account],
        Some(&inside.to_string()),
    );
    inside["spec"]["local"]["path"] = json!("/var/lib/domicile/e2e/other/0");
    let out = create_as_operator(None, &inside);
    assert_refused(
        &out,
        "domicile-operator",
        &["(/var/lib/domicile/e2e/inside/.../0), not /var/lib/domicile/e2e/other/0"],
    );

    let host_pod = pod(
        "host",
        json!({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
    );
    let out = create_as_operator(Some(&ns.name), &host_pod);
    assert!(!out.success);
    assert!(
        out.stderr.contains("cannot create resource \"pods\""),
        "{}",
        out.stderr
    );
    // Even with the right to create pods, granted here for the test, the policy refuses it.
    ns.kubectl_ok(
        &["create", "role", "pods", "--verb=create", "--resource=pods"],
        None,
    );
    ns.kubectl_ok(
        &[
            "create",
            "rolebinding",
            "pods",
            "--role=pods",
            &format!("--user={}", operator_account()),
        ],
        None,
    );
    let out = poll(
        "the granted right to count",
        Duration::from_secs(30),
        || {
            let out = create_as_operator(Some(&ns.name), &host_pod);
            (!out.stderr.contains("cannot create resource")).then_some(out)
        },
    );
    assert_refused(&out, "domicile-operator", &["hostPath"]);
    eprintln!("pod with hostPath: {}", out.stderr.trim());

    let statefulset = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "host"},
        "spec": {"serviceName": "host", "selector": {"matchLabels": {"app": "host"}},
                 "template": {"metadata": {"labels": {"app": "host"}},
                              "spec": {"hostNetwork": true,
                                       "containers": [{"name": "app", "image": "registry.example/app:1"}]}}}
    });
    let out = create_as_operator(Some(&ns.name), &statefulset);
    assert_refused(&out, "domicile-operator", &["host's namespaces"]);

    // Of a namespace it may set the jurisdiction label, and nothing else.
    let out = kubectl(
        &[
            "label",
            "namespace",
            &ns.name,
            "pod-security.kubernetes.io/enforce=privileged",
            &account,
        ],
        None,
    );
    assert_refused(
        &out,
        "domicile-operator",
        &["may only add a missing domicile.dev/jurisdiction label"],
    );
    let label_as_operator = |change: &str| {
        kubectl(
            &[
                "label",
                "namespace",
                &ns.name,
                change,
                "--overwrite",
                &account,
            ],
            None,
        )
    };
    let out = label_as_operator(&format!("{NAMESPACE_LABEL}=CN"));
    assert!(out.success, "{}", out.stderr);
    // Once there, the label is out of its reach: neither changed nor taken away.
    for change in [
        format!("{NAMESPACE_LABEL}=DE"),
        format!("{NAMESPACE_LABEL}-"),
    ] {
        let out = label_as_operator(&change);
        assert_refused(&out, "domicile-operator", &["may only add a missing"]);
    }
}

#[test]
fn the_operators_own_account_writes_only_what_it_would_make() {
    // Each verb of its ClusterRole, tried with a server-side dry run: admission judges it, and the
    // cluster stays as it was.
    let ns = TestNamespace::new("admission_operator_verbs");
    let account = format!("--as={}", operator_account());
    let dry_run = |namespace: Option<&str>, manifest: &Value| {
        let mut args = vec!["create", "--dry-run=server", "-f", "-", account.as_str()];
        if let Some(namespace) = namespace {
            args.extend(["-n", namespace]);
        }
        kubectl(&args, Some(&manifest.to_string()))
    };
    // A StatefulSet no RegionalDataCenter controls, whose pods would get a token.
    let statefulset = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "own"},
        "spec": {"serviceName": "own", "selector": {"matchLabels": {"app": "own"}},
                 "template": {"metadata": {"labels": {"app": "own"}},
                              "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}}
    });
    let out = dry_run(Some(&ns.name), &statefulset);
    assert_refused(
        &out,
        "domicile-operator",
        &["only StatefulSets controlled by the RegionalDataCenter of the same name"],
    );
    // A class that is not one of its own, or of another provisioner.
    let class = |name: &str, provisioner: &str| {
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": name}, "provisioner": provisioner})
    };
    let out = dry_run(None, &class(&unique("e2e-fast"), "rancher.io/local-path"));
    assert_refused(
        &out,
        "domicile-operator",
        &["only StorageClasses named domicile-*"],
    );
    let out = dry_run(None, &class(&unique("domicile-e2e"), "example.com/abroad"));
    assert_refused(&out, "domicile-operator", &["of example.com/abroad"]);
    // A Service that reaches outside the cluster.
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "out"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 8080}]}});
    let out = dry_run(Some(&ns.name), &service);
    assert_refused(&out, "domicile-operator", &["only ClusterIP Services"]);
    // A lease held for an hour would keep every other replica out.
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": unique("e2e-lease")},
        "spec": {"holderIdentity": "x", "leaseDurationSeconds": 3600}});
    let out = dry_run(Some(OPERATOR_NAMESPACE), &lease);
    assert_refused(&out, "domicile-operator", &["60 seconds at most"]);
    // And it deletes only what it made: a NetworkPolicy of the admin's (in a namespace of no
    // jurisdiction) stays.
    let theirs = unique("e2e-theirs");
    ns.kubectl_ok(
        &["create", "-f", "-"],
        Some(
            &json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": theirs}, "spec": {"podSelector": {}}})
            .to_string(),
        ),
    );
    let out = ns.kubectl(
        &[
            "delete",
            "networkpolicy",
            &theirs,
            "--dry-run=server",
            &account,
        ],
        None,
    );
    assert_refused(&out, "domicile-operator", &["deletes only what it made"]);
}

#[test]
fn with_warn_the_pod_is_admitted_and_kubectl_warns() {
    // The chart's pods policy rendered with [Warn], under a release of its own and narrowed to
    // this namespace so that the other tests are untouched; the Deny release skips the namespace,
    // which is exempt from it.
    let ns = jurisdiction_namespace("admission_warn", "CN");
    kubectl_ok(&["label", "namespace", &ns.name, EXEMPT], None);
    let rendered = crate::chart::helm_template(
        &unique("warn"),
        "domicile-system",
        &[
            "--show-only",
            "templates/admission-policies.yaml",
            "--set",
            "admission.pods.validationActions={Warn}",
            "--set",
            "admission.exemptLabel=e2e.domicile.dev/warn-exempt",
            "--set",
            "admission.claims.enabled=false,admission.snapshots.enabled=false,\
             admission.backups.enabled=false,admission.managed.enabled=false,admission.operator.enabled=false,\
             admission.network.enabled=false,admission.connect.enabled=false,\
             admission.datacenters.enabled=false",
        ],
    );
    let mut objects = Vec::new();
    for mut object in rendered {
        // Not one of the policies the operator reports on, and for this namespace only.
        object["metadata"]["labels"]
            .as_object_mut()
            .expect("labels")
            .remove("domicile.dev/guard");
        if object["kind"] == "ValidatingAdmissionPolicy" {
            object["spec"]["matchConstraints"]["namespaceSelector"]["matchLabels"] =
                json!({"kubernetes.io/metadata.name": ns.name});
        }
        assert_eq!(
            object["spec"]["validationActions"]
                .as_array()
                .map_or(1, Vec::len),
            1
        );
        let kind = match object["kind"].as_str() {
            Some("ValidatingAdmissionPolicy") => "validatingadmissionpolicy",
            _ => "validatingadmissionpolicybinding",
        };
        objects.push(ClusterObject::create(kind, &object));
    }
    assert_eq!(objects.len(), 2, "a policy and its binding");

    let out = poll("the Warn policy to answer", Duration::from_secs(30), || {
        let name = unique("warned");
        let out = create(&ns, &pod(&name, json!({})));
        assert!(out.success, "{}", out.stderr);
        out.stderr.contains("Warning:").then_some(out)
    });
    assert!(
        out.stderr.contains("could run outside CN"),
        "{}",
        out.stderr
    );
    eprintln!("admitted with: {}", out.stderr.trim());
}

#[test]
fn a_namespace_of_another_jurisdiction_or_two_jurisdictions_are_reported() {
    let ns = jurisdiction_namespace("admission_mismatch", "DE");
    ns.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&local_rdc("berlin", "CN", 1).to_string()),
    );
    let condition = ns.wait_condition(
        "berlin",
        "AdmissionGuarded",
        "NamespaceJurisdictionMismatch",
    );
    assert_eq!(condition["status"], "False");
    let message = condition["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("labelled domicile.dev/jurisdiction=DE"),
        "{message}"
    );
    poll("a Warning Event", crate::support::EVENT_WITHIN, || {
        (!ns.events_of("berlin", "NamespaceJurisdictionMismatch")
            .is_empty())
        .then_some(())
    });
    // And the policies do what the condition foretold: its claims (made first) and pods are refused.
    let refused = ns.wait_condition("berlin", "WorkloadAvailable", "PodsRefused");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("belongs to jurisdiction DE"),
        "{refused}"
    );

    let shared = TestNamespace::new("admission_conflict");
    shared.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&local_rdc("beijing", "CN", 1).to_string()),
    );
    shared.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&local_rdc("frankfurt", "DE", 1).to_string()),
    );
    for rdc in ["beijing", "frankfurt"] {
        let condition = shared.wait_condition(rdc, "AdmissionGuarded", "JurisdictionConflict");
        let message = condition["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("CN (beijing) and DE (frankfurt)"),
            "{message}"
        );
    }
}
