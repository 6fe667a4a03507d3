//! On a real node (hack/e2e-real.sh): a kubelet with containerd, the operator installed by
//! `helm install` from its locally built image and running in pods there, and data workloads whose
//! bytes are looked for on this machine's disk, where the audit says they are.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{JURISDICTION_LABEL, TestNamespace, kubectl, kubectl_ok, poll};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: the real-node tests run through hack/e2e-real.sh")
    })
}

fn real_node() -> String {
    env("DOMICILE_REAL_NODE")
}

fn operator_namespace() -> String {
    env("DOMICILE_OPERATOR_NAMESPACE")
}

fn get_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl_ok(&all, None)).expect("kubectl prints JSON")
}

/// The operator's pods, as the chart labels them.
fn operator_pods() -> Vec<Value> {
    get_json(&[
        "get",
        "pods",
        "-n",
        &operator_namespace(),
        "-l",
        "app.kubernetes.io/name=domicile",
    ])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

#[test]
fn the_real_node_is_ready_and_claimed_by_its_kubelet_alone() {
    let name = real_node();
    let node = get_json(&["get", "node", &name]);
    let ready = node["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "{name} is not Ready: {}", node["status"]);
    // Its kubelet talks to containerd; kwok plays only the nodes labelled type=kwok.
    let runtime = node["status"]["nodeInfo"]["containerRuntimeVersion"]
        .as_str()
        .unwrap_or_default();
    assert!(
        runtime.starts_with("containerd://"),
        "{name} runs {runtime:?}"
    );
    assert!(
        node["metadata"]["labels"]["type"].is_null(),
        "{name} carries kwok's label: {}",
        node["metadata"]["labels"]
    );
    assert_eq!(node["metadata"]["labels"][JURISDICTION_LABEL], "CN");
    // The kwok node beside it is still kwok's: kwok reports its status, not a kubelet.
    let kwok = get_json(&["get", "nodes", "-l", "type=kwok"]);
    let kwok_nodes = kwok["items"].as_array().expect("items");
    assert!(!kwok_nodes.is_empty(), "no kwok node beside the real one");
    for fake in kwok_nodes {
        let info = &fake["status"]["nodeInfo"];
        let kubelet = info["kubeletVersion"].as_str().unwrap_or_default();
        let runtime = info["containerRuntimeVersion"].as_str().unwrap_or_default();
        assert!(
            kubelet.starts_with("kwok") && !runtime.starts_with("containerd"),
            "a real kubelet claimed {}: {info}",
            fake["metadata"]["name"]
        );
    }
    println!("real node {name}: Ready, {runtime}");
}

#[test]
fn an_image_from_a_registry_is_never_fetched_from_outside_this_machine() {
    let ns = TestNamespace::new("real-no-pull");
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "remote-image"},
        "spec": {
            "nodeSelector": {"domicile.dev/node": "real"},
            "containers": [{"name": "c", "image": "registry.example/ingest:1.4", "imagePullPolicy": "Always"}]
        }
    });
    ns.kubectl_ok(&["apply", "-f", "-"], Some(&pod.to_string()));
    // containerd's registry traffic goes to a proxy address of this machine where nothing
    // listens: the pull fails there, at once.
    let message = poll("the pull to fail", Duration::from_secs(60), || {
        let events = ns.kubectl_ok(
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=remote-image,reason=Failed",
                "-o",
                "jsonpath={.items[*].message}",
            ],
            None,
        );
        (!events.is_empty()).then_some(events)
    });
    assert!(
        message.contains("127.0.0.1:9"),
        "the pull went elsewhere than the dead proxy: {message}"
    );
    println!("pull of registry.example/ingest:1.4 refused on this machine: {message}");
}

#[test]
fn the_operator_runs_from_its_chart_under_restricted_with_a_leader_among_two() {
    let namespace = operator_namespace();
    let labels = get_json(&["get", "namespace", &namespace])["metadata"]["labels"].clone();
    assert_eq!(
        labels["pod-security.kubernetes.io/enforce"], "restricted",
        "{labels}"
    );
    let pods = poll("two Ready operator pods", Duration::from_secs(120), || {
        let pods = operator_pods();
        (pods.len() == 2 && pods.iter().all(is_ready)).then_some(pods)
    });
    let expected_image = env("DOMICILE_OPERATOR_IMAGE");
    let mut names = Vec::new();
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().expect("name").to_owned();
        assert_eq!(pod["spec"]["nodeName"], real_node(), "{name} is elsewhere");
        assert_eq!(pod["status"]["phase"], "Running", "{name}");
        let container = &pod["status"]["containerStatuses"][0];
        assert_eq!(container["image"], expected_image, "{name}");
        assert!(
            container["imageID"]
                .as_str()
                .is_some_and(|id| id.contains("sha256:")),
            "{name} runs no image of ours: {container}"
        );
        // In-cluster configuration: the ServiceAccount's token, mounted by the kubelet.
        assert_eq!(pod["spec"]["serviceAccountName"], "domicile", "{name}");
        println!(
            "operator pod {name}: Running on {} from {}",
            pod["spec"]["nodeName"], container["imageID"]
        );
        names.push(name);
    }
    let lease = leader();
    assert!(
        names.contains(&lease),
        "the lease is held by {lease:?}, not by one of {names:?}"
    );
    println!("leader: {lease} of {names:?}");
}

/// The operator pod that holds the leader lease.
fn leader() -> String {
    poll("the leader lease", Duration::from_secs(60), || {
        let out = kubectl(
            &[
                "get",
                "lease",
                "domicile-leader",
                "-n",
                &operator_namespace(),
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
            None,
        );
        (out.success && !out.stdout.is_empty()).then_some(out.stdout)
    })
}

/// `kubectl port-forward` to an operator pod's admin port, stopped when dropped.
struct PortForward {
    child: Child,
    port: u16,
}

impl PortForward {
    fn to_admin_port_of(pod: &str) -> Self {
        let program = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned());
        let mut child = Command::new(program)
            .args([
                "port-forward",
                "-n",
                &operator_namespace(),
                &format!("pod/{pod}"),
                ":8080",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kubectl port-forward starts");
        // kubectl says where it listens ("Forwarding from 127.0.0.1:PORT -> 8080"), then a line
        // per connection: its output is read to the end, or kubectl would die writing it.
        let stdout = child.stdout.take().expect("piped");
        let (first, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = first.send(line);
            }
        });
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("kubectl port-forward says where it listens");
        let port = line
            .split_once("127.0.0.1:")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("kubectl port-forward printed {line:?}"));
        Self { child, port }
    }

    fn get(&self, path: &str) -> String {
        let out = Command::new("curl")
            .args([
                "-fsS",
                "--max-time",
                "5",
                &format!("http://127.0.0.1:{}{path}", self.port),
            ])
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "GET {path} through the port-forward: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data centre in CN whose workload writes `marker` into its volume, reads it back, and then
/// waits; in Local mode (`Some(retainOnDelete)`) or Dynamic mode (`None`).
fn writing_rdc(name: &str, marker: &str, local: Option<bool>) -> Value {
    let script = format!(
        "echo {marker} > /data/proof && cat /data/proof && \
         trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"
    );
    let storage = match local {
        Some(retain) => json!({"size": "64Mi", "mode": "Local", "retainOnDelete": retain}),
        None => json!({"size": "64Mi", "mode": "Dynamic"}),
    };
    json!({
        "apiVersion": "domicile.dev/v1alpha1",
        "kind": "RegionalDataCenter",
        "metadata": {"name": name},
        "spec": {
            "jurisdiction": "CN",
            "storage": storage,
            "workload": {
                "image": env("DOMICILE_WORKLOAD_IMAGE"),
                "replicas": 1,
                "command": ["/bin/sh", "-c", script],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}}
            }
        }
    })
}

/// The operator's local volume of `rdc`, once it exists.
fn local_volume(ns: &TestNamespace, rdc: &str) -> Value {
    poll("the local volume", Duration::from_secs(60), || {
        let volumes = get_json(&[
            "get",
            "pv",
            "-l",
            &format!(
                "domicile.dev/regional-data-center={rdc},domicile.dev/namespace={}",
                ns.name
            ),
        ]);
        volumes["items"].as_array()?.first().cloned()
    })
}

/// Kubernetes never creates the directory of a local volume; a node's admin does (README, Local
/// mode on real nodes). The test plays that admin, on this machine, which is the node.
fn prepare_on_the_node(volume: &Value) -> PathBuf {
    let path = PathBuf::from(
        volume["spec"]["local"]["path"]
            .as_str()
            .expect("a local volume has a path"),
    );
    let root = env("DOMICILE_LOCAL_ROOT");
    assert!(
        path.starts_with(&root),
        "{} is outside the local root {root}",
        path.display()
    );
    std::fs::create_dir_all(&path).expect("the node's admin creates the volume's directory");
    path
}

fn placement(ns: &TestNamespace, rdc: &str) -> Value {
    let status = ns.get_json("rdc", rdc).expect("the data centre")["status"].clone();
    assert_eq!(status["residency"], "Compliant", "{status}");
    let placements = status["placements"].as_array().expect("placements");
    assert_eq!(placements.len(), 1, "{status}");
    placements[0].clone()
}

fn read_proof(path: &Path) -> Option<(String, u32)> {
    let file = path.join("proof");
    let text = std::fs::read_to_string(&file).ok()?;
    Some((text.trim().to_owned(), file.metadata().ok()?.uid()))
}

#[test]
fn real_bytes_land_where_the_audit_says_and_outlive_the_data_centre() {
    let ns = TestNamespace::new("real-bytes");
    let marker = format!("domicile-proof-{}", std::process::id());
    // The leader reconciles; the pod standing by counts nothing.
    let metrics = PortForward::to_admin_port_of(&leader());
    let before = metrics.get("/metrics");

    ns.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&writing_rdc("vault", &marker, Some(true)).to_string()),
    );
    let volume = local_volume(&ns, "vault");
    let path = prepare_on_the_node(&volume);
    ns.kubectl_ok(
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=180s",
            "rdc/vault",
        ],
        None,
    );
    let place = placement(&ns, "vault");
    let node = real_node();
    assert_eq!(place["node"], node, "{place}");
    assert_eq!(place["volumeNode"], node, "{place}");
    assert_eq!(place["volume"], volume["metadata"]["name"], "{place}");
    assert_eq!(place["compliant"], true, "{place}");

    // The bytes the pod wrote are on this machine's disk, under the path the volume declares,
    // owned by the workload's user; and the pod reads them back from its volume.
    let (text, owner) = poll(
        "the workload's file on the node",
        Duration::from_secs(60),
        || read_proof(&path),
    );
    assert_eq!(text, marker);
    assert_eq!(owner, 65532, "the file belongs to the workload's user");
    let pod = place["pod"].as_str().expect("a pod").to_owned();
    let inside = ns.kubectl_ok(&["exec", &pod, "--", "cat", "/data/proof"], None);
    assert_eq!(inside.trim(), marker);
    println!(
        "{marker} written by pod {pod} on {node}, found at {}/proof (the volume {} the status names)",
        path.display(),
        volume["metadata"]["name"]
    );

    // The in-cluster operator did this, and says so in its metrics.
    let after = metrics.get("/metrics");
    let reconciles = |text: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("domicile_reconciliations_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        reconciles(&after) > reconciles(&before),
        "the leader counted no reconcile:\n{after}"
    );
    let leader = leader();
    for pod in operator_pods() {
        let name = pod["metadata"]["name"].as_str().expect("name");
        if name != leader {
            let standby = PortForward::to_admin_port_of(name).get("/metrics");
            assert_eq!(reconciles(&standby), 0.0, "{name} stands by:\n{standby}");
        }
    }

    // Deleted with retainOnDelete (the default): the volume object and the bytes stay.
    ns.kubectl_ok(
        &["delete", "rdc", "vault", "--wait=true", "--timeout=120s"],
        None,
    );
    poll("the workload pod to go", Duration::from_secs(120), || {
        (!ns.kubectl(&["get", "pod", &pod], None).success).then_some(())
    });
    let name = volume["metadata"]["name"].as_str().expect("name");
    assert!(
        kubectl(&["get", "pv", name], None).success,
        "the retained volume {name} is gone"
    );
    assert_eq!(
        read_proof(&path).map(|(text, _)| text),
        Some(marker.clone())
    );
    println!(
        "after delete: volume {name} and {}/proof kept",
        path.display()
    );

    // With retainOnDelete: false, the claim and the volume object go; the bytes stay on the node
    // (no provisioner owns a local volume's directory), for its admin to remove.
    let scratch = format!("{marker}-scratch");
    ns.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&writing_rdc("scratch", &scratch, Some(false)).to_string()),
    );
    let volume = local_volume(&ns, "scratch");
    let path = prepare_on_the_node(&volume);
    ns.wait_ready("scratch");
    poll("the scratch file", Duration::from_secs(60), || {
        read_proof(&path)
    });
    ns.kubectl_ok(
        &["delete", "rdc", "scratch", "--wait=true", "--timeout=120s"],
        None,
    );
    let name = volume["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    poll("the volume object to go", Duration::from_secs(120), || {
        (!kubectl(&["get", "pv", &name], None).success).then_some(())
    });
    assert_eq!(read_proof(&path).map(|(text, _)| text), Some(scratch));
    println!(
        "retainOnDelete false: volume {name} deleted, {}/proof left on the node",
        path.display()
    );
}

#[test]
fn dynamic_mode_binds_through_a_real_provisioner_and_is_compliant() {
    let ns = TestNamespace::new("real-dynamic");
    let marker = format!("domicile-dynamic-{}", std::process::id());
    ns.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&writing_rdc("archive", &marker, None).to_string()),
    );
    ns.kubectl_ok(
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=180s",
            "rdc/archive",
        ],
        None,
    );

    // The managed class suits a CSI driver: binding waits for the pod, and it names no topology
    // key of ours, which an external-provisioner would refuse.
    let class = get_json(&["get", "storageclass", "domicile-cn"]);
    assert_eq!(class["provisioner"], "rancher.io/local-path", "{class}");
    assert_eq!(
        class["volumeBindingMode"], "WaitForFirstConsumer",
        "{class}"
    );
    assert!(class["allowedTopologies"].is_null(), "{class}");

    // The claim was bound to a volume the provisioner made, pinned to the node of the pod.
    let claim = ns
        .get_json("pvc", "data-archive-0")
        .expect("the replica's claim");
    assert_eq!(claim["status"]["phase"], "Bound", "{claim}");
    let volume_name = claim["spec"]["volumeName"].as_str().expect("bound");
    let volume = get_json(&["get", "pv", volume_name]);
    assert_eq!(
        volume["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"],
        "rancher.io/local-path",
        "{volume}"
    );
    let node = real_node();
    assert_eq!(
        volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"],
        json!([node]),
        "{volume}"
    );

    // The verdict comes from that volume's own node affinity.
    let place = placement(&ns, "archive");
    assert_eq!(place["node"], node, "{place}");
    assert_eq!(place["volume"], volume_name, "{place}");
    assert_eq!(place["volumeNode"], node, "{place}");
    assert_eq!(place["compliant"], true, "{place}");

    // And the bytes are where that volume says.
    let source = &volume["spec"];
    let path = source["hostPath"]["path"]
        .as_str()
        .or_else(|| source["local"]["path"].as_str())
        .expect("the provisioned volume has a path on the node");
    let (text, _) = poll(
        "the workload's file on the node",
        Duration::from_secs(60),
        || read_proof(Path::new(path)),
    );
    assert_eq!(text, marker);
    println!(
        "Dynamic: claim data-archive-0 Bound to {volume_name} by rancher.io/local-path on {node}, \
         {marker} found at {path}/proof, residency Compliant"
    );
}

/// The two addresses of this machine that hack/real-node.sh puts on the pod bridge for these
/// tests: the first inside the CIDR the fenced data centre allows, the second outside it.
const ALLOWED_ADDRESS: &str = "10.245.250.1";
const OTHER_ADDRESS: &str = "10.245.251.1";

/// A TCP server on this machine that greets each connection with `greeting`; returns its port.
fn greeter(address: &str, greeting: &'static str) -> u16 {
    let listener = TcpListener::bind((address, 0)).expect("a test address of this machine");
    let port = listener.local_addr().expect("bound").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let _ = writeln!(stream, "{greeting}");
        }
    });
    port
}

/// A DNS resolver on this machine that answers every query with NXDOMAIN.
fn resolver(address: &str) {
    let socket = UdpSocket::bind((address, 53)).expect("port 53 of a test address (root)");
    std::thread::spawn(move || {
        let mut packet = [0u8; 512];
        while let Ok((len, peer)) = socket.recv_from(&mut packet) {
            if len < 12 {
                continue;
            }
            let mut answer = packet[..len].to_vec();
            answer[2] |= 0x80; // a response
            answer[3] = 0x80 | 3; // recursion available, NXDOMAIN
            let _ = socket.send_to(&answer, peer);
        }
    });
}

/// Runs `script` in `pod` of namespace `ns`: (exit status success, stdout and stderr).
fn exec(ns: &str, pod: &str, script: &str) -> (bool, String) {
    let out = kubectl(&["exec", "-n", ns, pod, "--", "sh", "-c", script], None);
    (out.success, format!("{}{}", out.stdout, out.stderr))
}

fn pod_ip(ns: &str, pod: &str) -> String {
    get_json(&["get", "pod", "-n", ns, pod])["status"]["podIP"]
        .as_str()
        .expect("a Running pod has an address")
        .to_owned()
}

/// A pod of another tenant, in a namespace with no policy, on the real node.
fn probe_pod(ns: &TestNamespace) -> String {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe"},
        "spec": {
            "nodeSelector": {"domicile.dev/node": "real"},
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe",
                "image": env("DOMICILE_WORKLOAD_IMAGE"),
                "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"],
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    });
    ns.kubectl_ok(&["apply", "-f", "-"], Some(&pod.to_string()));
    ns.kubectl_ok(
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=120s",
            "pod/probe",
        ],
        None,
    );
    "probe".to_owned()
}

#[test]
fn the_fence_holds_on_a_real_network() {
    let allowed_port = greeter(ALLOWED_ADDRESS, "allowed-address-answers");
    let other_port = greeter(OTHER_ADDRESS, "other-address-answers");
    resolver(OTHER_ADDRESS);

    // Two replicas that serve on 8080, fenced, with egress allowed to one /24 of this machine, in
    // a namespace an admin gave to CN: the chart's admission policies guard it.
    let data = TestNamespace::new("real-fence");
    kubectl_ok(
        &[
            "label",
            "namespace",
            &data.name,
            "domicile.dev/jurisdiction=CN",
        ],
        None,
    );
    let serve = "trap 'exit 0' TERM; nc -ll -p 8080 -e /bin/echo served-by-a-replica & wait $!";
    let rdc = json!({
        "apiVersion": "domicile.dev/v1alpha1",
        "kind": "RegionalDataCenter",
        "metadata": {"name": "fenced"},
        "spec": {
            "jurisdiction": "CN",
            "storage": {"size": "16Mi", "mode": "Dynamic"},
            "network": {"allowedEgressCIDRs": ["10.245.250.0/24"]},
            "workload": {
                "image": env("DOMICILE_WORKLOAD_IMAGE"),
                "replicas": 2,
                "port": 8080,
                "command": ["/bin/sh", "-c", serve],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}}
            }
        }
    });
    data.kubectl_ok(&["apply", "-f", "-"], Some(&rdc.to_string()));
    data.kubectl_ok(
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=180s",
            "rdc/fenced",
        ],
        None,
    );
    assert!(
        data.get_json("networkpolicy", "fenced").is_some(),
        "the operator made no NetworkPolicy"
    );
    let other = TestNamespace::new("real-fence-probe");
    let probe = probe_pod(&other);

    // Unfenced, the other tenant reaches every target: the checks below fail because of the
    // fence, not because a target is down.
    let connect = |address: &str, port: u16| format!("nc -w 3 {address} {port} </dev/null");
    let (ok, out) = exec(&other.name, &probe, &connect(OTHER_ADDRESS, other_port));
    assert!(ok && out.contains("other-address-answers"), "{out}");
    let lookup = format!("nslookup domicile.test {OTHER_ADDRESS}");
    let (_, out) = exec(&other.name, &probe, &lookup);
    assert!(
        out.contains("NXDOMAIN"),
        "the resolver does not answer: {out}"
    );
    let replica = pod_ip(&data.name, "fenced-0");
    let (ok, out) = exec(&data.name, "fenced-1", &connect(&replica, 8080));
    assert!(
        ok && out.contains("served-by-a-replica"),
        "a replica cannot reach its sibling: {out}"
    );

    // Egress to this machine outside allowedEgressCIDRs is refused: waited for, since the
    // firewall applies a new policy within seconds, not at once.
    poll(
        "the fence to refuse the address outside allowedEgressCIDRs",
        Duration::from_secs(60),
        || {
            let (ok, out) = exec(&data.name, "fenced-0", &connect(OTHER_ADDRESS, other_port));
            (!ok && !out.contains("other-address-answers")).then_some(())
        },
    );
    // Inside them, allowed.
    let (ok, out) = exec(
        &data.name,
        "fenced-0",
        &connect(ALLOWED_ADDRESS, allowed_port),
    );
    assert!(
        ok && out.contains("allowed-address-answers"),
        "egress inside allowedEgressCIDRs is refused: {out}"
    );
    // A resolver other than the cluster DNS is never asked.
    let (ok, out) = exec(&data.name, "fenced-0", &lookup);
    assert!(
        !ok && !out.contains("NXDOMAIN"),
        "the data pod reached a resolver other than the cluster DNS: {out}"
    );
    // A tenant of the data namespace (the built-in edit role) cannot reopen the fence with a
    // policy of its own, which NetworkPolicies' adding up would let through.
    tenant_attacks(&data, &other);
    // Another namespace's pod cannot connect to a data pod; its sibling still can.
    let (ok, out) = exec(&other.name, &probe, &connect(&replica, 8080));
    assert!(
        !ok && !out.contains("served-by-a-replica"),
        "a pod of another namespace reached the data pod: {out}"
    );
    let (ok, out) = exec(&data.name, "fenced-1", &connect(&replica, 8080));
    assert!(ok && out.contains("served-by-a-replica"), "{out}");
    println!(
        "fence: {OTHER_ADDRESS}:{other_port} refused, {ALLOWED_ADDRESS}:{allowed_port} allowed, \
         DNS to {OTHER_ADDRESS} dropped, {}/{probe} -> {replica}:8080 refused, fenced-1 -> fenced-0 allowed",
        other.name
    );
}

/// What a tenant holding `edit` in the data namespace tries there, each refused by the chart's
/// policies on this real node's cluster; the privileged pod is first shown admitted in the
/// unguarded namespace `open`.
fn tenant_attacks(data: &TestNamespace, open: &TestNamespace) {
    let tenant = crate::support::unique("mallory");
    data.kubectl_ok(
        &[
            "create",
            "rolebinding",
            "tenant-edit",
            "--clusterrole=edit",
            &format!("--user={tenant}"),
        ],
        None,
    );
    let as_tenant = format!("--as={tenant}");
    let create = |ns: &TestNamespace, manifest: &Value, dry_run: bool| {
        let mut args = vec![as_tenant.as_str(), "create", "-f", "-"];
        if dry_run {
            args.push("--dry-run=server");
        }
        ns.kubectl(&args, Some(&manifest.to_string()))
    };
    let refused_by = |out: &crate::support::Kubectl, policy: &str| {
        assert!(!out.success, "admitted: {}", out.stdout);
        assert!(
            out.stderr
                .contains(&format!("ValidatingAdmissionPolicy '{policy}'")),
            "{}",
            out.stderr
        );
        println!("refused: {}", out.stderr.trim());
    };
    poll(
        "the tenant's rights to count",
        Duration::from_secs(30),
        || {
            data.kubectl(
                &[&as_tenant, "auth", "can-i", "create", "networkpolicies"],
                None,
            )
            .success
            .then_some(())
        },
    );
    let allow_all = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all"},
        "spec": {"podSelector": {"matchLabels": {"domicile.dev/regional-data-center": "fenced"}},
                 "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]}
    });
    refused_by(&create(data, &allow_all, false), "domicile-network");
    let pod = |name: &str, spec: Value| {
        let mut spec = spec;
        spec["nodeSelector"] = json!({JURISDICTION_LABEL: "CN"});
        spec["containers"] = json!([{"name": "c", "image": env("DOMICILE_WORKLOAD_IMAGE"),
            "imagePullPolicy": "Never", "command": ["/bin/sh", "-c", "sleep 3600"]}]);
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    };
    let reader = pod(
        "reader",
        json!({"volumes": [{"name": "stolen", "persistentVolumeClaim": {"claimName": "data-fenced-0", "readOnly": true}}]}),
    );
    refused_by(&create(data, &reader, false), "domicile-pods");
    let mut privileged = pod("host-reader", json!({"hostPID": true, "hostNetwork": true}));
    privileged["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let out = open.kubectl(
        &["create", "--dry-run=server", "-f", "-"],
        Some(&privileged.to_string()),
    );
    assert!(
        out.success,
        "unguarded, the privileged pod is admitted: {}",
        out.stderr
    );
    refused_by(&create(data, &privileged, true), "domicile-pods");
}
