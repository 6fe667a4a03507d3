//! The jurisdiction namespace against its own tenant: `mallory` holds the built-in `edit`
//! ClusterRole and RegionalDataCenter rights in it, the most common tenant role there is. Each way
//! the data could leave is first tried in an exempt namespace holding the same data centre, where
//! it works, so no test here can pass because the attack was never possible; then in a guarded
//! namespace, where the API server refuses it with a message naming the rule.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    JURISDICTION_LABEL, Kubectl, TestNamespace, assert_refused, kubectl, kubectl_ok, local_rdc,
    poll, unique,
};

const RDC: &str = "vault";

/// A person acting in one namespace, through `kubectl --as`.
struct Tenant {
    user: String,
}

impl Tenant {
    /// `edit` plus every right on RegionalDataCenters, in each of `namespaces`.
    fn with_edit(namespaces: &[&TestNamespace]) -> Self {
        let tenant = Self::with_rdc_rights(namespaces);
        for ns in namespaces {
            ns.kubectl_ok(
                &[
                    "create",
                    "rolebinding",
                    "tenant-edit",
                    "--clusterrole=edit",
                    &format!("--user={}", tenant.user),
                ],
                None,
            );
        }
        tenant
    }

    /// RegionalDataCenter rights only: no right to read Secrets or ConfigMaps.
    fn with_rdc_rights(namespaces: &[&TestNamespace]) -> Self {
        let user = unique("mallory");
        for ns in namespaces {
            ns.kubectl_ok(
                &[
                    "create",
                    "role",
                    "rdc-author",
                    "--verb=get,list,watch,create,update,patch,delete",
                    "--resource=regionaldatacenters.domicile.dev",
                ],
                None,
            );
            ns.kubectl_ok(
                &[
                    "create",
                    "rolebinding",
                    "tenant-rdc",
                    "--role=rdc-author",
                    &format!("--user={user}"),
                ],
                None,
            );
        }
        let tenant = Self { user };
        for ns in namespaces {
            poll(
                "the tenant's rights to count",
                Duration::from_secs(30),
                || {
                    tenant
                        .kubectl(
                            ns,
                            &["auth", "can-i", "create", "regionaldatacenters"],
                            None,
                        )
                        .success
                        .then_some(())
                },
            );
        }
        tenant
    }

    fn kubectl(&self, ns: &TestNamespace, args: &[&str], stdin: Option<&str>) -> Kubectl {
        let user = format!("--as={}", self.user);
        let mut all = vec![user.as_str()];
        all.extend_from_slice(args);
        ns.kubectl(&all, stdin)
    }

    fn create(&self, ns: &TestNamespace, manifest: &Value) -> Kubectl {
        self.kubectl(ns, &["create", "-f", "-"], Some(&manifest.to_string()))
    }
}

/// The same one-replica CN data centre, Ready, in an exempt namespace (`open`, where the attack
/// must work) and in a guarded one.
struct Scene {
    open: TestNamespace,
    guarded: TestNamespace,
}

impl Scene {
    fn new(test: &str) -> Self {
        let scene = Self {
            open: TestNamespace::exempt(&format!("{test}_open")),
            guarded: TestNamespace::new(test),
        };
        for ns in scene.both() {
            ns.create_and_wait_ready(&local_rdc(RDC, "CN", 1));
        }
        scene
            .guarded
            .wait_condition(RDC, "AdmissionGuarded", "Enforced");
        scene
    }

    fn both(&self) -> [&TestNamespace; 2] {
        [&self.open, &self.guarded]
    }

    /// Runs `attack` in both namespaces: it must work in the open one and be refused by `policy`
    /// in the guarded one, with each of `words` in the message.
    fn attack(&self, policy: &str, words: &[&str], attack: impl Fn(&TestNamespace) -> Kubectl) {
        let out = attack(&self.open);
        assert!(
            out.success,
            "the attack does not even work in an unguarded namespace, so this test proves \
             nothing: {}",
            out.stderr
        );
        let out = attack(&self.guarded);
        assert_refused(&out, policy, words);
        eprintln!("refused: {}", out.stderr.trim());
    }

    /// The node the replica and its data are on.
    fn data_node(&self, ns: &TestNamespace) -> String {
        ns.get_json("pod", &format!("{RDC}-0"))
            .expect("the replica")["spec"]["nodeName"]
            .as_str()
            .expect("a scheduled replica")
            .to_owned()
    }
}

/// Waits, 10 s at most, until the data centre names `pod` with the violation `reason`, and a
/// Warning Event of that reason is there.
fn reported(ns: &TestNamespace, pod: &str, reason: &str) {
    let started = std::time::Instant::now();
    let violation = poll(
        &format!("{pod}: {reason} on the status"),
        Duration::from_secs(10),
        || {
            let status = ns.get_json("rdc", RDC)?["status"].clone();
            status["violations"]
                .as_array()?
                .iter()
                .find(|v| v["name"] == pod && v["reason"] == reason)
                .cloned()
        },
    );
    eprintln!(
        "reported after {:?}: {}",
        started.elapsed(),
        violation["message"]
    );
    let ready = ns.get_json("rdc", RDC).expect("the RDC")["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned())
        .expect("Ready");
    assert_eq!(ready["status"], "False", "{ready}");
    poll("its Warning Event", crate::support::EVENT_WITHIN, || {
        (!ns.events_of(RDC, reason).is_empty()).then_some(())
    });
}

fn pod(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["containers"] = json!([{"name": "app", "image": "registry.example/app:1"}]);
    if spec.get("nodeSelector").is_none() {
        spec["nodeSelector"] = json!({JURISDICTION_LABEL: "CN"});
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

#[test]
fn a_tenant_cannot_mount_the_data_claim() {
    let scene = Scene::new("tenant_claim");
    let mallory = Tenant::with_edit(&scene.both());
    let claim = format!("data-{RDC}-0");
    scene.attack(
        "domicile-pods",
        &[
            &format!("mounts claim {claim}, the data of replica {RDC}-0"),
            "only that replica, created by the StatefulSet controller",
        ],
        |ns| {
            let reader = pod(
                "reader",
                json!({
                    "nodeSelector": {JURISDICTION_LABEL: "CN", "kubernetes.io/hostname": scene.data_node(ns)},
                    "volumes": [{"name": "stolen", "persistentVolumeClaim": {"claimName": claim, "readOnly": true}}]
                }),
            );
            mallory.create(ns, &reader)
        },
    );
    // Where admission did not stop it, the audit reports the stranger within seconds.
    reported(&scene.open, "reader", "ForeignMount");
    // Nor a copy of it: a claim cloned from the data claim.
    scene.attack(
        "domicile-claims",
        &["would be a copy of a data claim"],
        |ns| {
            let clone = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "loot"},
                "spec": {"storageClassName": "domicile-local-cn", "accessModes": ["ReadWriteOncePod"],
                         "resources": {"requests": {"storage": "1Gi"}},
                         "dataSource": {"kind": "PersistentVolumeClaim", "name": claim}}});
            mallory.kubectl(
                ns,
                &["create", "--dry-run=server", "-f", "-"],
                Some(&clone.to_string()),
            )
        },
    );
    // Nor through a StatefulSet of the tenant's own, whose pods the controller creates.
    let thief = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "thief"},
        "spec": {"serviceName": "thief", "selector": {"matchLabels": {"app": "thief"}},
                 "template": {"metadata": {"labels": {"app": "thief"}},
                              "spec": pod("x", json!({"volumes": [
                                  {"name": "stolen", "persistentVolumeClaim": {"claimName": claim}}
                              ]}))["spec"]}}
    });
    let out = mallory.create(&scene.guarded, &thief);
    assert!(out.success, "{}", out.stderr);
    let refused = scene
        .guarded
        .wait_failed_create("involvedObject.name=thief");
    assert!(
        refused.contains(&format!("mounts claim {claim}")),
        "{refused}"
    );
    assert!(
        scene.guarded.get_json("pod", "thief-0").is_none(),
        "the thief's pod exists"
    );
}

#[test]
fn a_tenant_cannot_reopen_the_fence_nor_expose_the_data_pods() {
    let scene = Scene::new("tenant_network");
    let mallory = Tenant::with_edit(&scene.both());
    let selector = json!({"matchLabels": {"domicile.dev/regional-data-center": RDC}});
    scene.attack(
        "domicile-network",
        &[
            "only the domicile operator writes NetworkPolicies",
            "may not create NetworkPolicy allow-all",
            "spec.network.allowedIngress",
        ],
        |ns| {
            let allow_all = json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "allow-all"},
                "spec": {"podSelector": selector, "policyTypes": ["Ingress", "Egress"],
                         "ingress": [{}], "egress": [{}]}
            });
            mallory.create(ns, &allow_all)
        },
    );
    for (name, spec, words) in [
        ("lb", json!({"type": "LoadBalancer"}), "type LoadBalancer"),
        ("np", json!({"type": "NodePort"}), "type NodePort"),
        (
            "ext",
            json!({"externalIPs": ["192.0.2.7"]}),
            "externalIPs 192.0.2.7",
        ),
        (
            "cname",
            json!({"type": "ExternalName", "externalName": "db.example"}),
            "type ExternalName",
        ),
    ] {
        scene.attack(
            "domicile-network",
            &[
                &format!("Service {name} would reach outside the cluster"),
                words,
            ],
            |ns| {
                let mut spec = spec.clone();
                if spec["type"] != "ExternalName" {
                    spec["selector"] = selector["matchLabels"].clone();
                    spec["ports"] = json!([{"port": 8080}]);
                }
                let service = json!({"apiVersion": "v1", "kind": "Service",
                                     "metadata": {"name": name}, "spec": spec});
                mallory.kubectl(
                    ns,
                    &["create", "--dry-run=server", "-f", "-"],
                    Some(&service.to_string()),
                )
            },
        );
    }
    // The operator's own fence stays the operator's: neither edited nor deleted.
    let out = mallory.kubectl(&scene.guarded, &["delete", "networkpolicy", RDC], None);
    assert!(!out.success, "the fence was deleted");
    assert!(
        scene.guarded.get_json("networkpolicy", RDC).is_some(),
        "the fence is gone"
    );
}

#[test]
fn no_privileged_pod_nor_a_privileged_debug_container() {
    let scene = Scene::new("tenant_privileged");
    let mallory = Tenant::with_edit(&scene.both());
    scene.attack(
        "domicile-pods",
        &[
            "pod host-reader breaks the baseline Pod Security Standard",
            "hostNetwork: true",
            "hostPID: true",
            "privileged container app",
        ],
        |ns| {
            let mut manifest = pod("host-reader", json!({"hostPID": true, "hostNetwork": true}));
            manifest["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
            mallory.kubectl(
                ns,
                &["create", "--dry-run=server", "-f", "-"],
                Some(&manifest.to_string()),
            )
        },
    );
    for (name, security, finding) in [
        (
            "caps",
            json!({"capabilities": {"add": ["SYS_ADMIN"]}}),
            "added capabilities in container app",
        ),
        (
            "unconfined",
            json!({"seccompProfile": {"type": "Unconfined"}}),
            "an unconfined seccomp",
        ),
    ] {
        scene.attack("domicile-pods", &[finding], |ns| {
            let mut manifest = pod(name, json!({}));
            manifest["spec"]["containers"][0]["securityContext"] = security.clone();
            mallory.kubectl(
                ns,
                &["create", "--dry-run=server", "-f", "-"],
                Some(&manifest.to_string()),
            )
        });
    }
    // kubectl debug adds an ephemeral container to a running replica: as privileged as asked.
    scene.attack("domicile-pods", &["privileged container debugger"], |ns| {
        ns.kubectl(
            &[
                "debug",
                &format!("{RDC}-0"),
                "--image=registry.example/debug:1",
                "--profile=sysadmin",
                "--container=debugger",
            ],
            None,
        )
    });
}

#[test]
fn the_data_centre_label_is_the_controllers_alone() {
    let scene = Scene::new("tenant_label");
    let mallory = Tenant::with_edit(&scene.both());
    scene.attack(
        "domicile-pods",
        &["may not change or remove it on pod vault-0"],
        |ns| {
            mallory.kubectl(
                ns,
                &[
                    "label",
                    "pod",
                    &format!("{RDC}-0"),
                    "domicile.dev/regional-data-center-",
                ],
                None,
            )
        },
    );
    // Where admission let it happen, the replica that left its StatefulSet (and its fence) is
    // reported, still judged by the data it mounts.
    reported(&scene.open, &format!("{RDC}-0"), "ReplicaDetached");
    // A pod of the tenant's own with the label would be let through the fence as a replica.
    scene.attack(
        "domicile-pods",
        &["may not create pod impostor with it"],
        |ns| {
            let mut impostor = pod("impostor", json!({}));
            impostor["metadata"]["labels"] = json!({"domicile.dev/regional-data-center": RDC});
            mallory.kubectl(
                ns,
                &["create", "--dry-run=server", "-f", "-"],
                Some(&impostor.to_string()),
            )
        },
    );
    // Nor through a Deployment, whose pods a trusted controller makes from the tenant's template.
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "impostors"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "impostor"}},
                 "template": {"metadata": {"labels": {"app": "impostor",
                                                      "domicile.dev/regional-data-center": RDC}},
                              "spec": pod("x", json!({}))["spec"]}}
    });
    scene.attack(
        "domicile-managed",
        &["the pods of Deployment impostors would carry the label"],
        |ns| mallory.create(ns, &deployment),
    );
    poll(
        "the impostor to run unguarded",
        Duration::from_secs(60),
        || {
            let pods = scene
                .open
                .kubectl_ok(&["get", "pods", "-l", "app=impostor", "-o", "name"], None);
            (!pods.trim().is_empty()).then_some(())
        },
    );
    let pod = scene
        .guarded
        .get_json("pod", &format!("{RDC}-0"))
        .expect("the replica");
    assert_eq!(
        pod["metadata"]["labels"]["domicile.dev/regional-data-center"],
        RDC
    );
}

#[test]
fn no_session_into_a_replica() {
    let scene = Scene::new("tenant_exec");
    let mallory = Tenant::with_edit(&scene.both());
    let replica = format!("{RDC}-0");
    let proxy = |kind: &str, name: &str| {
        format!(
            "/api/v1/namespaces/{}/{kind}/{name}:8080/proxy/",
            scene.guarded.name
        )
    };
    let (pod_proxy, service_proxy) = (proxy("pods", &replica), proxy("services", RDC));
    for (verb, resource, session) in [
        (
            "exec",
            "pods/exec",
            vec!["exec", replica.as_str(), "--", "cat", "/data/records"],
        ),
        ("attach", "pods/attach", vec!["attach", replica.as_str()]),
        (
            "portforward",
            "pods/portforward",
            vec!["port-forward", replica.as_str(), "18999:8080"],
        ),
        ("proxy", "pods/proxy", vec!["get", "--raw", &pod_proxy]),
        (
            "proxy",
            "services/proxy",
            vec!["get", "--raw", &service_proxy],
        ),
    ] {
        // In the open namespace RBAC lets the tenant in and nothing else stands in the way (kwok
        // runs no containers, so the session itself is not opened there).
        let open = mallory.kubectl(&scene.open, &["auth", "can-i", "create", resource], None);
        assert!(open.success, "{resource}: {}", open.stdout);
        let mut args = vec!["--request-timeout=20s"];
        args.extend(&session);
        let guarded = mallory.kubectl(&scene.guarded, &args, None);
        let into = if resource.starts_with("services") {
            format!("service {RDC}:8080")
        } else if verb == "proxy" {
            format!("pod {replica}:8080")
        } else {
            format!("pod {replica}")
        };
        assert_refused(
            &guarded,
            "domicile-connect",
            &[
                &format!("may not {verb} into {into}"),
                "admission.connect.groups",
            ],
        );
        eprintln!("refused: {}", guarded.stderr.trim());
    }
}

#[test]
fn a_spec_reads_only_what_its_author_may_read_and_the_fence_stays() {
    let open = TestNamespace::exempt("tenant_secret_open");
    let guarded = TestNamespace::new("tenant_secret");
    for ns in [&open, &guarded] {
        ns.kubectl_ok(
            &[
                "create",
                "secret",
                "generic",
                "db-password",
                "--from-literal=password=hunter2",
            ],
            None,
        );
    }
    let mallory = Tenant::with_rdc_rights(&[&open, &guarded]);
    let mut reader = local_rdc("reader", "CN", 1);
    reader["spec"]["workload"]["env"] = json!([{"name": "PASSWORD", "valueFrom": {
        "secretKeyRef": {"name": "db-password", "key": "password"}}}]);
    let dry_run = |ns: &TestNamespace, manifest: &Value| {
        mallory.kubectl(
            ns,
            &["create", "--dry-run=server", "-f", "-"],
            Some(&manifest.to_string()),
        )
    };
    let out = mallory.kubectl(&open, &["get", "secret", "db-password"], None);
    assert!(!out.success, "the tenant may read the Secret itself");
    let out = dry_run(&open, &reader);
    assert!(out.success, "{}", out.stderr);
    assert_refused(
        &dry_run(&guarded, &reader),
        "domicile-datacenters",
        &[
            "reads Secret db-password in spec.workload.env",
            "may not get",
        ],
    );
    // Granted get on that one Secret, the same spec is admitted.
    guarded.kubectl_ok(
        &[
            "create",
            "role",
            "password-reader",
            "--verb=get",
            "--resource=secrets",
            "--resource-name=db-password",
        ],
        None,
    );
    guarded.kubectl_ok(
        &[
            "create",
            "rolebinding",
            "password-reader",
            "--role=password-reader",
            &format!("--user={}", mallory.user),
        ],
        None,
    );
    poll("the granted get to count", Duration::from_secs(30), || {
        dry_run(&guarded, &reader).success.then_some(())
    });

    // The fence goes only where an admin allowed it.
    let mut unfenced = local_rdc("unfenced", "CN", 1);
    unfenced["spec"]["network"] = json!({"fence": false});
    assert!(dry_run(&open, &unfenced).success);
    assert_refused(
        &dry_run(&guarded, &unfenced),
        "domicile-datacenters",
        &[&format!(
            "kubectl label namespace {} domicile.dev/fence=optional",
            guarded.name
        )],
    );
}

#[test]
fn allowed_ingress_names_namespaces_of_the_jurisdiction_only() {
    let ns = TestNamespace::new("tenant_ingress");
    let mallory = Tenant::with_edit(&[&ns]);
    let with_peer = |peer: Value| {
        let mut rdc = local_rdc("gate", "CN", 1);
        rdc["spec"]["network"] = json!({"allowedIngress": [peer]});
        mallory.kubectl(
            &ns,
            &["create", "--dry-run=server", "-f", "-"],
            Some(&rdc.to_string()),
        )
    };
    for everywhere in [
        json!({"namespaceSelector": {}}),
        json!({"namespaceSelector": {"matchLabels": {"team": "ingest"}}}),
        json!({"namespaceSelector": {"matchLabels": {"domicile.dev/jurisdiction": "US"}}}),
    ] {
        let out = with_peer(everywhere.clone());
        assert!(!out.success, "admitted: {everywhere}");
        assert!(
            out.stderr.contains("spec.network.allowedIngress")
                && out
                    .stderr
                    .contains("matchLabels {domicile.dev/jurisdiction: CN}"),
            "{}",
            out.stderr
        );
    }
    let out = with_peer(
        json!({"namespaceSelector": {"matchLabels": {"domicile.dev/jurisdiction": "CN", "team": "ingest"}}}),
    );
    assert!(out.success, "{}", out.stderr);
    let out = with_peer(json!({"podSelector": {"matchLabels": {"app": "ingest"}}}));
    assert!(out.success, "pods of the same namespace: {}", out.stderr);
}

#[test]
fn a_subdivision_in_a_country_namespace_is_not_called_guarded() {
    let ns = TestNamespace::new("tenant_wider");
    kubectl_ok(
        &[
            "label",
            "namespace",
            &ns.name,
            "domicile.dev/jurisdiction=CN",
        ],
        None,
    );
    ns.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&local_rdc("shanghai", "CN-SH", 1).to_string()),
    );
    let condition = ns.wait_condition("shanghai", "AdmissionGuarded", "NamespaceJurisdictionWider");
    assert_eq!(condition["status"], "False");
    // What the condition says is so: a pod for any CN node is admitted there.
    let out = ns.kubectl(
        &["create", "--dry-run=server", "-f", "-"],
        Some(&pod("beijing", json!({})).to_string()),
    );
    assert!(out.success, "{}", out.stderr);
}

/// Run alone by hack/e2e.sh: it edits the chart's pods policy, which every namespace shares.
#[test]
fn serial_an_edited_policy_is_reported_within_seconds() {
    let ns = TestNamespace::new("tenant_edited");
    ns.create_and_wait_ready(&local_rdc(RDC, "CN", 1));
    ns.wait_condition(RDC, "AdmissionGuarded", "Enforced");
    let original = kubectl_ok(
        &[
            "get",
            "validatingadmissionpolicy",
            "domicile-pods",
            "-o",
            "json",
        ],
        None,
    );
    // A careless admin "fixes" a refusal by making the pods policy's placement rule always pass.
    let policy: Value = serde_json::from_str(&original).expect("kubectl prints JSON");
    let index = policy["spec"]["validations"]
        .as_array()
        .expect("validations")
        .iter()
        .position(|v| {
            v["expression"]
                .as_str()
                .is_some_and(|e| e.contains("variables.unmet"))
        })
        .expect("the placement rule");
    let edit = json!([{"op": "replace", "path": format!("/spec/validations/{index}/expression"),
                       "value": "true"}]);
    kubectl_ok(
        &[
            "patch",
            "validatingadmissionpolicy",
            "domicile-pods",
            "--type=json",
            "-p",
            &edit.to_string(),
        ],
        None,
    );
    let restore = Restore(original);
    let started = std::time::Instant::now();
    let condition = ns.wait_condition(RDC, "AdmissionGuarded", "PolicyModified");
    let seen = started.elapsed();
    assert!(
        seen < Duration::from_secs(10),
        "PolicyModified after {seen:?}"
    );
    assert_eq!(condition["status"], "False");
    assert!(
        condition["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ValidatingAdmissionPolicy domicile-pods"),
        "{condition}"
    );
    drop(restore);
    ns.wait_condition(RDC, "AdmissionGuarded", "Enforced");
}

/// Puts the chart's pods policy back as it was, also when the test fails.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        let mut policy: Value = serde_json::from_str(&self.0).expect("JSON");
        if let Some(meta) = policy["metadata"].as_object_mut() {
            for volatile in ["resourceVersion", "generation", "managedFields", "uid"] {
                meta.remove(volatile);
            }
        }
        let out = kubectl(&["replace", "-f", "-"], Some(&policy.to_string()));
        assert!(out.success || std::thread::panicking(), "{}", out.stderr);
    }
}

#[test]
fn a_tenant_cannot_lock_a_shared_namespace() {
    // A namespace the admin did not let the operator label: a tenant's data centre there does
    // not turn it into a jurisdiction namespace that refuses everyone else's pods.
    let shared = TestNamespace::new("tenant_shared");
    kubectl_ok(
        &[
            "label",
            "namespace",
            &shared.name,
            "domicile.dev/labelling-",
        ],
        None,
    );
    let mallory = Tenant::with_edit(&[&shared]);
    let out = mallory.create(&shared, &local_rdc("squatter", "CN", 1));
    assert!(out.success, "{}", out.stderr);
    let condition = shared.wait_condition("squatter", "AdmissionGuarded", "NamespaceNotLabelled");
    assert!(
        condition["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!(
                "kubectl label namespace {} domicile.dev/labelling=allowed",
                shared.name
            ))),
        "{condition}"
    );
    let labels = serde_json::from_str::<Value>(&kubectl_ok(
        &[
            "get",
            "namespace",
            &shared.name,
            "-o",
            "jsonpath={.metadata.labels}",
        ],
        None,
    ))
    .expect("JSON");
    assert!(
        labels.get("domicile.dev/jurisdiction").is_none(),
        "{labels}"
    );
    // Nor could the operator's own account label it, whatever it was told.
    let out = kubectl(
        &[
            "label",
            "namespace",
            &shared.name,
            "domicile.dev/jurisdiction=CN",
            &format!("--as={}", crate::support::env("DOMICILE_OPERATOR_ACCOUNT")),
        ],
        None,
    );
    assert_refused(&out, "domicile-operator", &["namespaces an admin allowed"]);
}

#[test]
fn a_strangers_object_of_a_childs_name_is_never_adopted() {
    // mallory makes a StatefulSet named as the data centre will be, then the data centre: the
    // operator used to apply its declaration into her object (her pod template, her selector,
    // hers to change), which it now leaves alone and reports.
    let ns = TestNamespace::new("tenant_name_taken");
    let mallory = Tenant::with_edit(&[&ns]);
    let hers = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": RDC},
        "spec": {"replicas": 0, "serviceName": RDC, "selector": {"matchLabels": {"app": "hers"}},
                 "template": {"metadata": {"labels": {"app": "hers"}},
                              "spec": pod("x", json!({}))["spec"]}}
    });
    let out = mallory.create(&ns, &hers);
    assert!(out.success, "{}", out.stderr);
    let out = mallory.create(&ns, &local_rdc(RDC, "CN", 1));
    assert!(out.success, "{}", out.stderr);
    let started = std::time::Instant::now();
    let condition = ns.wait_condition(RDC, "Ready", "NameTaken");
    eprintln!(
        "NameTaken after {:?}: {}",
        started.elapsed(),
        condition["message"]
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let message = condition["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "StatefulSet {RDC} already exists in namespace {}",
            ns.name
        )) && message.contains(&format!("kubectl delete statefulset {RDC} -n {}", ns.name)),
        "{message}"
    );
    poll(
        "a NameTaken Warning Event",
        crate::support::EVENT_WITHIN,
        || (!ns.events_of(RDC, "NameTaken").is_empty()).then_some(()),
    );
    // Hers is as she made it: no owner, no label, no field of the operator's.
    let statefulset = ns.get_json("statefulset", RDC).expect("hers");
    assert!(
        statefulset["metadata"]["ownerReferences"].is_null(),
        "{statefulset}"
    );
    assert!(
        statefulset["metadata"]["labels"]
            .get("domicile.dev/regional-data-center")
            .is_none(),
        "{statefulset}"
    );
    assert_eq!(
        statefulset["spec"]["selector"]["matchLabels"]["app"],
        "hers"
    );
    // Once it is gone, the data centre is made.
    mallory.kubectl(&ns, &["delete", "statefulset", RDC, "--wait=true"], None);
    ns.wait_ready(RDC);
}

#[test]
fn a_kept_claim_does_not_go_to_a_statefulset_of_the_data_centres_name() {
    // The data centre deleted with its data kept (the default): its claim stays, bound. A
    // StatefulSet of its name would have its pod take the claim as its own.
    let scene = Scene::new("tenant_kept_claim");
    let mallory = Tenant::with_edit(&scene.both());
    for ns in scene.both() {
        ns.kubectl_ok(&["delete", "rdc", RDC, "--timeout=60s"], None);
        poll("the StatefulSet to go", Duration::from_secs(60), || {
            ns.get_json("statefulset", RDC).is_none().then_some(())
        });
        assert!(
            ns.get_json("pvc", &format!("data-{RDC}-0")).is_some(),
            "the claim is kept"
        );
    }
    let thief = |labels: Value| {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": RDC},
            "spec": {"serviceName": RDC, "selector": {"matchLabels": {"app": "thief"}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": pod("x", json!({"volumes": [
                                      {"name": "data", "persistentVolumeClaim": {"claimName": format!("data-{RDC}-0")}}
                                  ]}))["spec"]}}
        })
    };
    // Unguarded, its pod mounts the kept data.
    let out = mallory.create(&scene.open, &thief(json!({"app": "thief"})));
    assert!(out.success, "{}", out.stderr);
    poll(
        "the thief's pod to mount the data",
        Duration::from_secs(60),
        || scene.open.get_json("pod", &format!("{RDC}-0")).map(|_| ()),
    );
    // Guarded: its pod is refused, and so is a StatefulSet whose pods would pass for replicas.
    let out = mallory.create(&scene.guarded, &thief(json!({"app": "thief"})));
    assert!(out.success, "{}", out.stderr);
    let refused = scene
        .guarded
        .wait_failed_create("involvedObject.kind=StatefulSet");
    assert!(
        refused.contains(&format!("mounts claim data-{RDC}-0")),
        "{refused}"
    );
    assert!(scene.guarded.get_json("pod", &format!("{RDC}-0")).is_none());
    mallory.kubectl(
        &scene.guarded,
        &["delete", "statefulset", RDC, "--wait=true"],
        None,
    );
    let out = mallory.create(
        &scene.guarded,
        &thief(json!({"app": "thief", "domicile.dev/regional-data-center": RDC})),
    );
    assert_refused(
        &out,
        "domicile-managed",
        &["the pods of StatefulSet vault would carry the label"],
    );
}

#[test]
fn a_disruption_budget_that_stops_enforce_is_named() {
    // Enforce evicts a pod abroad through the Eviction API, which disruption budgets hold: a
    // tenant's budget of maxUnavailable 0 keeps it there. Not refusable (a budget is legitimate),
    // so the status and an Event say so.
    // Two nodes of PE, so that the jurisdiction keeps one when the replica's is relabelled.
    let _nodes = [
        crate::support::TestNode::new("e2e-pe", &[(JURISDICTION_LABEL, "PE")]),
        crate::support::TestNode::new("e2e-pe", &[(JURISDICTION_LABEL, "PE")]),
    ];
    let ns = TestNamespace::new("tenant_pdb");
    let mallory = Tenant::with_edit(&[&ns]);
    let mut lima = local_rdc("lima", "PE", 1);
    lima["spec"]["enforcement"] = json!("Enforce");
    ns.create_and_wait_ready(&lima);
    let before = ns.get_json("pod", "lima-0").expect("the replica");
    let budget = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "hold-lima"},
        "spec": {"maxUnavailable": 0,
                 "selector": {"matchLabels": {"domicile.dev/regional-data-center": "lima"}}}
    });
    let out = mallory.create(&ns, &budget);
    assert!(out.success, "{}", out.stderr);
    poll(
        "the budget to count the replica",
        Duration::from_secs(30),
        || {
            let pdb = ns.get_json("pdb", "hold-lima")?;
            (pdb["status"]["expectedPods"] == 1).then_some(())
        },
    );

    let node = before["spec"]["nodeName"].as_str().expect("scheduled");
    kubectl_ok(
        &[
            "label",
            "node",
            node,
            &format!("{JURISDICTION_LABEL}=CL"),
            "--overwrite",
        ],
        None,
    );
    let started = std::time::Instant::now();
    let condition = ns.wait_condition("lima", "Ready", "EvictionBlocked");
    eprintln!(
        "EvictionBlocked after {:?}: {}",
        started.elapsed(),
        condition["message"]
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let message = condition["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Enforce cannot evict pod lima-0") && message.contains("hold-lima"),
        "{message}"
    );
    poll(
        "an EvictionBlocked Warning Event",
        crate::support::EVENT_WITHIN,
        || (!ns.events_of("lima", "EvictionBlocked").is_empty()).then_some(()),
    );
    let still = ns.get_json("pod", "lima-0").expect("the replica");
    assert_eq!(
        still["metadata"]["uid"], before["metadata"]["uid"],
        "it was evicted after all"
    );
}
