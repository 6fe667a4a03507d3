//! What every end-to-end test needs: kubectl against the cluster in KUBECONFIG, the CRD installed
//! once, a fresh namespace per test, and a dump of that namespace when a test fails.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The result of one kubectl call.
pub struct Kubectl {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Kubectl {
    fn from(output: Output) -> Self {
        Self {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

fn kubectl_program() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned())
}

/// Runs kubectl with `args`, feeding `stdin` if given.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Kubectl {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG is not set: end-to-end tests run against a real cluster; start one with \
         hack/cluster-up.sh and export KUBECONFIG=\"$(hack/cluster-kubeconfig.sh)\", or run `make test`"
    );
    let mut child = Command::new(kubectl_program())
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", kubectl_program()));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())
            .expect("kubectl reads its stdin");
    }
    child
        .wait_with_output()
        .expect("kubectl runs to the end")
        .into()
}

/// Runs kubectl and fails the test, with kubectl's own words, if it fails.
pub fn kubectl_ok(args: &[&str], stdin: Option<&str>) -> String {
    let out = kubectl(args, stdin);
    assert!(
        out.success,
        "kubectl {} failed:\n{}{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// How long an Event of the operator may take to appear: it holds its Events while statuses are
/// being written (by the other tests too), 30 s at most after they were queued.
pub const EVENT_WITHIN: Duration = Duration::from_secs(60);

/// Polls `check` every 250 ms until it returns `Ok`, or fails the test after `timeout` with the
/// last `Err`, which says what was seen instead.
pub fn poll_seen<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; last seen: {seen}"
            ),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Polls `check` every 250 ms until it returns `Some`, or fails the test after `timeout`.
pub fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

static CRD: Once = Once::new();

/// Installs the checked-in CRD, exactly as a user would, and waits until it is served.
pub fn install_crd() {
    CRD.call_once(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crds/domicile.dev_regionaldatacenters.yaml"
        );
        kubectl_ok(
            &["apply", "--server-side", "--force-conflicts", "-f", path],
            None,
        );
        kubectl_ok(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/regionaldatacenters.domicile.dev",
            ],
            None,
        );
        // Discovery and the published OpenAPI follow the Established condition by a moment.
        poll(
            "the rdc resource to be discoverable",
            Duration::from_secs(30),
            || {
                kubectl(&["get", "rdc", "-A", "-o", "name"], None)
                    .success
                    .then_some(())
            },
        );
    });
}

static NEXT_NAMESPACE: AtomicU32 = AtomicU32::new(0);

/// A namespace of one test, deleted when the test ends. When the test fails, what it holds
/// is printed first, so the failure can be understood from the output alone.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    pub fn new(test: &str) -> Self {
        Self::named(format!(
            "e2e-{}-{}-{}",
            test.replace('_', "-").chars().take(40).collect::<String>(),
            std::process::id(),
            NEXT_NAMESPACE.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// A namespace the chart's admission policies skip (`domicile.dev/admission=exempt`), for
    /// scenarios the policies would refuse before the operator could see them.
    pub fn exempt(test: &str) -> Self {
        let ns = Self::new(test);
        kubectl_ok(
            &[
                "label",
                "namespace",
                &ns.name,
                "domicile.dev/admission=exempt",
            ],
            None,
        );
        ns
    }

    /// A namespace called exactly `name` (which must start with `e2e-`, so the quiet test
    /// waits for it to go).
    pub fn named(name: String) -> Self {
        assert!(name.starts_with("e2e-"), "{name}");
        install_crd();
        // As an admin lets the operator label it with its data centres' jurisdiction.
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": name, "labels": {"domicile.dev/labelling": "allowed"}}});
        kubectl_ok(&["create", "-f", "-"], Some(&namespace.to_string()));
        Self { name }
    }

    /// kubectl in this namespace.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Kubectl {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        kubectl(&all, stdin)
    }

    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        kubectl_ok(&all, stdin)
    }

    /// Names of the RegionalDataCenters in this namespace.
    pub fn rdc_names(&self) -> Vec<String> {
        self.kubectl_ok(&["get", "rdc", "-o", "name"], None)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
        kubectl(&["delete", "namespace", &self.name, "--wait=false"], None);
    }
}

impl TestNamespace {
    /// What a failed test leaves to understand it: every object as YAML in a file (under
    /// `DOMICILE_E2E_DUMP_DIR`, which hack/e2e.sh sets to the cluster's log folder), and on
    /// stderr a few lines a shortened log still shows: each resource's conditions, the pods
    /// and claims, the last Events.
    fn dump(&self) {
        let yaml = self.kubectl(
            &["get", "rdc,statefulsets,pods,pvc,events", "-o", "yaml"],
            None,
        );
        let dir = std::env::var_os("DOMICILE_E2E_DUMP_DIR")
            .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
        let file = dir.join(format!("{}.yaml", self.name));
        let written = std::fs::write(&file, format!("{}{}", yaml.stdout, yaml.stderr));
        let conditions = self.kubectl(
            &[
                "get",
                "rdc",
                "-o",
                r#"jsonpath={range .items[*]}{.metadata.name}:{range .status.conditions[*]} {.type}={.status}/{.reason} ({.message});{end}{"\n"}{end}"#,
            ],
            None,
        );
        let placed = self.kubectl(&["get", "pods,pvc", "-o", "wide"], None);
        let events = self.kubectl(
            &[
                "get",
                "events",
                "--sort-by=.metadata.creationTimestamp",
                "-o",
                r#"jsonpath={range .items[*]}{.metadata.creationTimestamp} {.type} {.reason} {.involvedObject.kind}/{.involvedObject.name}: {.message}{"\n"}{end}"#,
            ],
            None,
        );
        let last_events: Vec<&str> = events.stdout.lines().rev().take(15).collect();
        eprintln!(
            "---- namespace {} (every object: {}) ----\n{}{}{}{}---- its last events ----\n{}",
            self.name,
            match written {
                Ok(()) => file.display().to_string(),
                Err(err) => format!("not written to {}: {err}", file.display()),
            },
            conditions.stdout,
            conditions.stderr,
            placed.stdout,
            placed.stderr,
            last_events.into_iter().rev().collect::<Vec<_>>().join("\n"),
        );
    }
}

/// A valid RegionalDataCenter; tests change one thing in it at a time.
pub fn valid_rdc(name: &str) -> Value {
    json!({
        "apiVersion": "domicile.dev/v1alpha1",
        "kind": "RegionalDataCenter",
        "metadata": {"name": name},
        "spec": {
            "jurisdiction": "CN",
            "storage": {"size": "50Gi", "mode": "Local"},
            "workload": {"image": "registry.example/ingest:1.4", "replicas": 3, "port": 8080},
            "network": {"allowedEgressCIDRs": ["10.20.0.0/16"]}
        }
    })
}

/// Sets the value at a JSON pointer such as `/spec/storage/size`, creating objects on the way.
pub fn set(manifest: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer with a parent");
    let mut target = manifest;
    for part in parent.split('/').skip(1) {
        target = target
            .as_object_mut()
            .expect("an object on the way")
            .entry(part)
            .or_insert_with(|| json!({}));
    }
    target
        .as_object_mut()
        .expect("an object to set the key in")
        .insert(key.to_owned(), value);
}

/// Removes the value at a JSON pointer.
pub fn remove(manifest: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer with a parent");
    if let Some(object) = manifest.pointer_mut(parent).and_then(Value::as_object_mut) {
        object.remove(key);
    }
}

impl TestNamespace {
    /// The object `kind/name` in this namespace as JSON, if it exists.
    pub fn get_json(&self, kind: &str, name: &str) -> Option<Value> {
        let out = self.kubectl(&["get", kind, name, "-o", "json"], None);
        if !out.success {
            assert!(
                out.stderr.contains("NotFound"),
                "kubectl get {kind} {name}: {}",
                out.stderr
            );
            return None;
        }
        Some(serde_json::from_str(&out.stdout).expect("kubectl prints JSON"))
    }

    /// Objects of `kind` in this namespace carrying the labels of RegionalDataCenter `rdc`.
    pub fn list_of(&self, kind: &str, rdc: &str) -> Vec<Value> {
        let selector = format!("domicile.dev/regional-data-center={rdc}");
        let list: Value = serde_json::from_str(
            &self.kubectl_ok(&["get", kind, "-l", &selector, "-o", "json"], None),
        )
        .expect("kubectl prints JSON");
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the Ready condition of RegionalDataCenter `name` is True, with `kubectl wait`.
    pub fn wait_ready(&self, name: &str) {
        self.kubectl_ok(
            &[
                "wait",
                "--for=condition=Ready",
                "--timeout=120s",
                &format!("rdc/{name}"),
            ],
            None,
        );
    }

    /// Creates `manifest` and waits until its Ready condition is True.
    pub fn create_and_wait_ready(&self, manifest: &Value) {
        let name = manifest["metadata"]["name"]
            .as_str()
            .expect("a name")
            .to_owned();
        self.kubectl_ok(&["apply", "-f", "-"], Some(&manifest.to_string()));
        self.wait_ready(&name);
    }
}

impl TestNamespace {
    /// Waits until `rdc`'s condition `type_` has `reason`, and returns the condition.
    pub fn wait_condition(&self, rdc: &str, type_: &str, reason: &str) -> Value {
        poll(
            &format!("{rdc}: {type_} with reason {reason}"),
            Duration::from_secs(60),
            || {
                let rdc = self.get_json("rdc", rdc)?;
                rdc["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == type_ && c["reason"] == reason)
                    .cloned()
            },
        )
    }

    /// Waits until a controller reports that it cannot create a pod for the objects the field
    /// selector `involved` names (e.g. `involvedObject.kind=StatefulSet`), and returns what the
    /// API server told it.
    pub fn wait_failed_create(&self, involved: &str) -> String {
        let selector = format!("{involved},reason=FailedCreate");
        poll(
            &format!("a FailedCreate Event of {involved}"),
            Duration::from_secs(60),
            || {
                let events = self.kubectl_ok(
                    &[
                        "get",
                        "events",
                        "--field-selector",
                        &selector,
                        "-o",
                        "jsonpath={.items[*].message}",
                    ],
                    None,
                );
                (!events.is_empty()).then_some(events)
            },
        )
    }
}

/// A status's violations as (reason, kind, name).
pub fn violations(status: &Value) -> Vec<(String, String, String)> {
    status["violations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| {
            let text = |key: &str| v[key].as_str().unwrap_or_default().to_owned();
            (text("reason"), text("kind"), text("name"))
        })
        .collect()
}

/// Asserts that the API server refused what `out` tried, by the admission policy `policy`, with
/// each of `words` in its message.
pub fn assert_refused(out: &Kubectl, policy: &str, words: &[&str]) {
    assert!(
        !out.success,
        "admitted, but should be refused:\n{}",
        out.stdout
    );
    let expected = format!("ValidatingAdmissionPolicy '{policy}'");
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    for word in words {
        assert!(out.stderr.contains(word), "no {word:?} in: {}", out.stderr);
    }
}

/// The labels of a node.
pub fn node_labels(node: &str) -> Value {
    let out = kubectl_ok(
        &["get", "node", node, "-o", "jsonpath={.metadata.labels}"],
        None,
    );
    serde_json::from_str(&out).expect("kubectl prints JSON")
}

/// kubectl's flag to act as the garbage collector, one of the Kubernetes controllers the
/// managed-objects admission policy lets change what the operator manages (a person it refuses).
pub const AS_TRUSTED_CONTROLLER: &str =
    "--as=system:serviceaccount:kube-system:generic-garbage-collector";

pub const JURISDICTION_LABEL: &str = "domicile.node-restriction.kubernetes.io/jurisdiction";
pub const SUBDIVISION_LABEL: &str = "domicile.node-restriction.kubernetes.io/subdivision";

/// A Local-mode RegionalDataCenter for `jurisdiction` with `replicas` replicas.
pub fn local_rdc(name: &str, jurisdiction: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "domicile.dev/v1alpha1",
        "kind": "RegionalDataCenter",
        "metadata": {"name": name},
        "spec": {
            "jurisdiction": jurisdiction,
            "storage": {"size": "1Gi", "mode": "Local"},
            "workload": {"image": "registry.example/ingest:1.4", "replicas": replicas, "port": 8080}
        }
    })
}

/// A fake node of the test's own, played by kwok, removed when the test ends.
pub struct TestNode {
    pub name: String,
}

impl TestNode {
    /// Creates a node with `labels` and waits until it is Ready.
    pub fn new(prefix: &str, labels: &[(&str, &str)]) -> Self {
        let name = unique(prefix);
        let mut all = serde_json::Map::new();
        all.insert("type".to_owned(), json!("kwok"));
        all.insert("kubernetes.io/hostname".to_owned(), json!(name));
        for (key, value) in labels {
            all.insert((*key).to_owned(), json!(value));
        }
        let node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": all, "annotations": {"kwok.x-k8s.io/node": "fake"}},
        });
        kubectl_ok(&["create", "-f", "-"], Some(&node.to_string()));
        kubectl_ok(
            &[
                "wait",
                "--for=condition=Ready",
                "--timeout=60s",
                &format!("node/{name}"),
            ],
            None,
        );
        poll(
            "the new node to lose its not-ready taint",
            Duration::from_secs(60),
            || {
                let taints = kubectl_ok(
                    &["get", "node", &name, "-o", "jsonpath={.spec.taints}"],
                    None,
                );
                taints.is_empty().then_some(())
            },
        );
        Self { name }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        kubectl(&["delete", "node", &self.name, "--wait=false"], None);
    }
}

/// A cluster-scoped object a test made (a StorageClass, a PersistentVolume), deleted at its end.
pub struct ClusterObject {
    pub kind: &'static str,
    pub name: String,
}

impl ClusterObject {
    pub fn create(kind: &'static str, manifest: &Value) -> Self {
        kubectl_ok(&["create", "-f", "-"], Some(&manifest.to_string()));
        let name = manifest["metadata"]["name"]
            .as_str()
            .expect("a name")
            .to_owned();
        Self { kind, name }
    }
}

impl Drop for ClusterObject {
    fn drop(&mut self) {
        kubectl(&["delete", self.kind, &self.name, "--wait=false"], None);
    }
}

/// A name unique to this test run, for cluster-scoped objects.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT_NAMESPACE.fetch_add(1, Ordering::Relaxed)
    )
}

/// The HTTP status `url` answers with, or None when nothing answers.
pub fn http_status(url: &str) -> Option<u16> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "2",
            url,
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .parse()
        .ok()
        .filter(|code| *code != 0)
}

impl TestNamespace {
    /// The Events of RegionalDataCenter `rdc` whose reason is `reason` (any, if empty).
    pub fn events_of(&self, rdc: &str, reason: &str) -> Vec<Value> {
        let mut selector = format!("involvedObject.name={rdc}");
        if !reason.is_empty() {
            selector.push_str(&format!(",reason={reason}"));
        }
        let out = self.kubectl_ok(
            &["get", "events", "--field-selector", &selector, "-o", "json"],
            None,
        );
        let events: Value = serde_json::from_str(&out).expect("kubectl prints JSON");
        events["items"].as_array().cloned().unwrap_or_default()
    }
}

/// The value of `name`, which hack/e2e.sh sets.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (hack/e2e.sh sets it)"))
}

/// An operator process of a test's own, as the chart's ServiceAccount, with its log in a file;
/// killed when dropped. Only for tests hack/e2e.sh runs when no other operator runs.
pub struct OwnOperator {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl OwnOperator {
    pub fn start(name: &str, args: &[&str], admin_port: u16) -> Self {
        Self::start_in(&env("DOMICILE_OPERATOR_KUBECONFIG"), name, args, admin_port)
    }

    /// The same against the cluster of `kubeconfig`.
    pub fn start_in(kubeconfig: &str, name: &str, args: &[&str], admin_port: u16) -> Self {
        let log = std::env::temp_dir().join(format!("domicile-e2e-{name}.log"));
        let child = Command::new(env("DOMICILE_BIN"))
            .args(["run", "--log-format", "plain"])
            .args(["--admin-address", &format!("127.0.0.1:{admin_port}")])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("the operator starts");
        let mut operator = Self { child, log };
        // Ready once every cache is synced: from then on it reconciles what the test creates.
        // One that exits or never gets there fails here, with its log (see Drop).
        let readyz = format!("http://127.0.0.1:{admin_port}/readyz");
        poll_seen(
            &format!("the test's own operator {name} to be ready"),
            Duration::from_secs(60),
            || match operator.child.try_wait() {
                Ok(Some(exited)) => panic!("the test's own operator {name} exited: {exited}"),
                _ => Command::new("curl")
                    .args(["-fsS", "--max-time", "2", &readyz])
                    .output()
                    .ok()
                    .filter(|out| out.status.success())
                    .map(|_| ())
                    .ok_or_else(|| format!("{readyz} not 200")),
            },
        );
        operator
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OwnOperator {
    fn drop(&mut self) {
        let exited = self.child.try_wait().ok().flatten();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // A shortened CI log keeps the end of stderr: what this operator said last.
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "---- the test's own operator ({}; {}), its last lines ----\n{}",
                self.log.display(),
                exited.map_or_else(|| "still running".to_owned(), |s| format!("exited: {s}")),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

/// The sum of one counter family at an operator's /metrics `url`; None when it does not answer.
pub fn counter_at(url: &str, family: &str) -> Option<u64> {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "5", url])
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| line.starts_with(&format!("{family}{{")))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    })
}
