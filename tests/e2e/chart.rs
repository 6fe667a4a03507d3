//! The Helm chart as a cluster sees it: a pod that meets the restricted Pod Security Standard, and
//! a ServiceAccount that may do exactly what the README says (hack/e2e.sh runs the operator with
//! that ServiceAccount's token, so every other scenario also proves the rules are enough).

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::{TestNamespace, kubectl, kubectl_ok};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/domicile");

/// helm with `args`, against the cluster in KUBECONFIG.
fn helm(args: &[&str]) -> std::process::Output {
    let helm = std::env::var("HELM").expect("HELM names the helm binary (hack/e2e.sh sets it)");
    std::process::Command::new(helm)
        .args(args)
        .output()
        .expect("helm runs")
}

/// `helm template` of the chart as `release` in `namespace`, with `extra` arguments, as objects.
pub(crate) fn helm_template(release: &str, namespace: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "template",
        release,
        CHART,
        "--namespace",
        namespace,
        "--kube-version",
        "1.36.3",
    ];
    args.extend_from_slice(extra);
    let out = helm(&args);
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|doc| Value::deserialize(doc).ok())
        .filter(|doc| !doc.is_null())
        .collect()
}

#[test]
fn helm_install_with_a_bad_value_is_refused_by_the_schema() {
    let ns = TestNamespace::new("bad-values");
    for (value, named) in [
        ("replicas=-1", "'/replicas'"),
        (
            "admission.pods.validationActions={Block}",
            "'/admission/pods/validationActions/0': value must be one of 'Deny', 'Warn', 'Audit'",
        ),
        (
            "admission.claims.validationActions={Deny,Warn}",
            "'/admission/claims/validationActions/1'",
        ),
        (
            "labelKeys.jurisdiction=not a key",
            "'/labelKeys/jurisdiction'",
        ),
        (
            "metrics.servce.enabled=true",
            "additional properties 'servce' not allowed",
        ),
    ] {
        let out = helm(&[
            "install",
            "refused",
            CHART,
            "--namespace",
            &ns.name,
            "--set",
            value,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "helm install accepted {value}");
        assert!(
            stderr.contains("values don't meet the specifications of the schema")
                && stderr.contains(named),
            "helm install --set {value} was refused without naming {named}: {stderr}"
        );
    }
    // Refused before anything reached the cluster: no release, no object of one.
    let releases = helm(&["list", "--namespace", &ns.name, "--all", "--short"]);
    assert!(releases.status.success());
    assert_eq!(String::from_utf8_lossy(&releases.stdout).trim(), "");
    let left = kubectl_ok(
        &[
            "get",
            "deployments,serviceaccounts,clusterroles,validatingadmissionpolicies",
            "--all-namespaces",
            "-l",
            "app.kubernetes.io/instance=refused",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(left.trim(), "");
}

#[test]
fn chart_pod_meets_the_restricted_pod_security_standard() {
    let ns = TestNamespace::new("restricted");
    kubectl_ok(
        &[
            "label",
            "namespace",
            &ns.name,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest",
        ],
        None,
    );
    let objects = helm_template("domicile", &ns.name, &[]);
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("the chart has a Deployment");
    // The pod names the chart's ServiceAccount, which must exist for the pod to be admitted.
    let account = objects
        .iter()
        .find(|o| o["kind"] == "ServiceAccount")
        .expect("the chart has a ServiceAccount");
    ns.kubectl_ok(&["create", "-f", "-"], Some(&account.to_string()));
    let pod = |spec: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator-pod-check"}, "spec": spec});
    // Pod Security admission judges pods, not Deployments: try the Deployment's own pod.
    let spec = deployment["spec"]["template"]["spec"].clone();
    let out = ns.kubectl(
        &["create", "--dry-run=server", "-f", "-"],
        Some(&pod(spec.clone()).to_string()),
    );
    assert!(
        out.success,
        "the restricted profile refuses the operator's pod:\n{}",
        out.stderr
    );

    // The check is live: the same pod with privilege escalation allowed is refused.
    let mut escalating = spec;
    escalating["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true);
    let out = ns.kubectl(
        &["create", "--dry-run=server", "-f", "-"],
        Some(&pod(escalating).to_string()),
    );
    assert!(
        !out.success,
        "the namespace does not enforce the restricted profile"
    );
    assert!(out.stderr.contains("restricted"), "{}", out.stderr);
}

/// The `resource verb` pairs between the README's rbac markers.
fn documented_rules() -> BTreeSet<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("<!-- rbac -->")
        .expect("README.md has <!-- rbac -->");
    let end = readme
        .find("<!-- /rbac -->")
        .expect("README.md has <!-- /rbac -->");
    let mut rules = BTreeSet::new();
    for line in readme[start..end].lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let resource = cells[1].trim_matches('`').to_owned();
        for verb in cells[2].split(',') {
            rules.insert((resource.clone(), verb.trim().to_owned()));
        }
    }
    rules
}

/// What `kubectl auth can-i --list` grants the operator's ServiceAccount, as `resource verb` pairs.
fn granted_rules() -> BTreeSet<(String, String)> {
    let account = std::env::var("DOMICILE_OPERATOR_ACCOUNT")
        .expect("DOMICILE_OPERATOR_ACCOUNT names the chart's ServiceAccount (hack/e2e.sh sets it)");
    // In the operator's own namespace, so that its Role for the Lease counts too.
    let namespace = account
        .split(':')
        .nth(2)
        .expect("system:serviceaccount:NAMESPACE:NAME");
    let out = kubectl_ok(
        &[
            "auth",
            "can-i",
            "--list",
            "-n",
            namespace,
            &format!("--as={account}"),
        ],
        None,
    );
    let mut rules = BTreeSet::new();
    for line in out.lines().skip(1) {
        let Some(open) = line.find('[') else { continue };
        let verbs = line[line.rfind('[').unwrap_or(open) + 1..]
            .trim_end_matches(']')
            .to_owned();
        let resource = line[..open].trim().to_owned();
        if resource.is_empty() {
            continue; // non-resource URLs such as /api, granted to every identity
        }
        for verb in verbs.split_whitespace() {
            rules.insert((resource.clone(), verb.to_owned()));
        }
    }
    rules
}

#[test]
fn operator_account_may_do_exactly_what_the_readme_documents() {
    let granted = granted_rules();
    let documented = documented_rules();
    let undocumented: Vec<_> = granted.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "the ServiceAccount may do what README.md does not say: {undocumented:?}"
    );
    let missing: Vec<_> = documented.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "README.md documents rules the chart does not grant: {missing:?}"
    );
    // And it is least privilege: no secrets, no wildcard.
    assert!(
        !granted
            .iter()
            .any(|(r, v)| r.contains("secrets") || r == "*" || v == "*"),
        "{granted:?}"
    );
    let out = kubectl(
        &[
            "auth",
            "can-i",
            "get",
            "secrets",
            "-A",
            &format!(
                "--as={}",
                std::env::var("DOMICILE_OPERATOR_ACCOUNT").unwrap_or_default()
            ),
        ],
        None,
    );
    assert_eq!(out.stdout.trim(), "no");
}
