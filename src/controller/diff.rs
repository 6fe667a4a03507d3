//! Whether a live child still says what the operator declared, and who changed it if not: the
//! fields the operator sets are compared with the object in the watch cache, never with a record
//! of the operator's own.

use serde_json::{Map, Value};

/// One step into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Field(String),
    Item(usize),
}

/// Where a live object differs from the declared one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub path: Vec<Step>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for step in &self.path {
            match step {
                Step::Field(name) if first => write!(f, "{name}")?,
                Step::Field(name) => write!(f, ".{name}")?,
                Step::Item(index) => write!(f, "[{index}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// The first place where `live` does not hold what `desired` declares, or None. Every field of
/// `desired` must be in `live` with the same value; fields only `live` has (defaults, status,
/// other managers' fields) do not count. Lists must have the same length and hold, item by item,
/// what `desired` declares: an added requirement or term is a difference, whatever it adds.
pub fn first_difference(desired: &Value, live: &Value) -> Option<Difference> {
    let mut path = Vec::new();
    if differs(desired, live, &mut path) {
        return Some(Difference { path });
    }
    let pointer = whole_differences(desired, live).into_iter().next()?;
    Some(Difference {
        path: pointer
            .split('/')
            .skip(1)
            .map(|step| match step.parse() {
                Ok(index) => Step::Item(index),
                Err(_) => Step::Field(step.replace("~1", "/").replace("~0", "~")),
            })
            .collect(),
    })
}

/// The subtrees of a child compared whole, as JSON pointers: where its pods may run, what they
/// may do to their node, what they mount, and who reaches them. A field someone else added there
/// is a difference, though the operator never declares it.
fn whole_subtrees(desired: &Value) -> &'static [&'static str] {
    match desired.get("kind").and_then(Value::as_str) {
        Some("NetworkPolicy") => &["/spec"],
        Some("StatefulSet") => &[
            "/spec/template/spec/affinity",
            "/spec/template/spec/securityContext",
            "/spec/template/spec/volumes",
            "/spec/template/spec/initContainers",
            "/spec/template/spec/hostNetwork",
            "/spec/template/spec/hostPID",
            "/spec/template/spec/hostIPC",
        ],
        _ => &[],
    }
}

const CONTAINERS: &str = "/spec/template/spec/containers";

/// The subtrees compared whole where `live` differs from `desired`; the containers of a pod
/// template too when one was added or a container's securityContext holds anything else.
fn whole_differences(desired: &Value, live: &Value) -> Vec<String> {
    let mut paths: Vec<String> = whole_subtrees(desired)
        .iter()
        .filter(|path| desired.pointer(path) != live.pointer(path))
        .map(|path| (*path).to_owned())
        .collect();
    if let (Some(want), Some(have)) = (
        desired.pointer(CONTAINERS).and_then(Value::as_array),
        live.pointer(CONTAINERS).and_then(Value::as_array),
    ) {
        let security = |c: &Value| c.get("securityContext").cloned();
        let stranger = have
            .iter()
            .any(|c| !want.iter().any(|w| w["name"] == c["name"]));
        let loosened = want.iter().any(|w| {
            have.iter()
                .find(|c| c["name"] == w["name"])
                .is_some_and(|c| security(c) != security(w))
        });
        if stranger || loosened {
            paths.push(CONTAINERS.to_owned());
        }
    }
    paths
}

/// A JSON merge patch turning `live` into `desired`: `desired`'s values, and null for each field
/// only `live` has.
fn replacing(desired: &Value, live: &Value) -> Value {
    match (desired, live) {
        (Value::Object(want), Value::Object(have)) => {
            let mut patch: Map<String, Value> = want
                .iter()
                .map(|(key, value)| {
                    let old = have.get(key).unwrap_or(&Value::Null);
                    (key.clone(), replacing(value, old))
                })
                .collect();
            for key in have.keys().filter(|key| !want.contains_key(*key)) {
                patch.insert(key.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        _ => desired.clone(),
    }
}

/// The JSON merge patch that sets the subtrees compared whole back to what `desired` declares,
/// removing what someone else added there (a server-side apply leaves other managers' fields
/// alone); None when `live` holds them as declared. A list is replaced whole, so a sidecar
/// someone added to the pod template goes (the API server fills in the defaults again).
pub fn whole_restore(desired: &Value, live: &Value) -> Option<Value> {
    let paths = whole_differences(desired, live);
    if paths.is_empty() {
        return None;
    }
    let mut patch = Value::Object(Map::new());
    for path in paths {
        let want = desired.pointer(&path).cloned().unwrap_or(Value::Null);
        let have = live.pointer(&path).cloned().unwrap_or(Value::Null);
        let value = replacing(&want, &have);
        let mut target = &mut patch;
        let steps: Vec<&str> = path.split('/').skip(1).collect();
        for step in &steps[..steps.len() - 1] {
            target = target
                .as_object_mut()
                .expect("the patch holds objects on the way")
                .entry((*step).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        if let Some(last) = steps.last()
            && let Some(object) = target.as_object_mut()
        {
            object.insert((*last).to_owned(), value);
        }
    }
    Some(patch)
}

fn differs(desired: &Value, live: &Value, path: &mut Vec<Step>) -> bool {
    match (desired, live) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                path.push(Step::Field(key.clone()));
                match have.get(key) {
                    Some(found) if !differs(value, found, path) => {}
                    _ => return true,
                }
                path.pop();
            }
            false
        }
        (Value::Array(want), Value::Array(have)) => {
            for (index, value) in want.iter().enumerate() {
                path.push(Step::Item(index));
                match have.get(index) {
                    Some(found) if !differs(value, found, path) => {}
                    _ => return true,
                }
                path.pop();
            }
            if have.len() != want.len() {
                path.push(Step::Item(want.len().min(have.len())));
                return true;
            }
            false
        }
        _ => desired != live,
    }
}

/// The field manager, other than `ours`, whose managed fields cover `difference` in `live`; else
/// the one that wrote the object last (a removed field belongs to nobody). Status writers are
/// skipped: they cannot change what the operator declares.
pub fn changed_by(live: &Value, difference: &Difference, ours: &str) -> Option<String> {
    let entries: Vec<&Map<String, Value>> = live
        .pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .filter(|entry| entry.get("manager").and_then(Value::as_str) != Some(ours))
        .filter(|entry| entry.get("subresource").and_then(Value::as_str).is_none())
        .collect();
    let manager = |entry: &Map<String, Value>| {
        entry
            .get("manager")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let Some(owner) = entries.iter().find(|entry| {
        entry
            .get("fieldsV1")
            .is_some_and(|fields| covers(fields, live, &difference.path))
    }) {
        return manager(owner);
    }
    entries
        .iter()
        .max_by_key(|entry| entry.get("time").and_then(Value::as_str).unwrap_or(""))
        .and_then(|entry| manager(entry))
}

/// Whether a `fieldsV1` set owns the value at `path` of `live`.
fn covers(fields: &Value, live: &Value, path: &[Step]) -> bool {
    let Some(set) = fields.as_object() else {
        return false;
    };
    let Some((step, rest)) = path.split_first() else {
        return true;
    };
    // An empty set owns the whole value beneath it (a scalar or an atomic list).
    if set.is_empty() || (set.len() == 1 && set.contains_key(".")) {
        return true;
    }
    match step {
        Step::Field(name) => set
            .get(&format!("f:{name}"))
            .is_some_and(|child| covers(child, live.get(name).unwrap_or(&Value::Null), rest)),
        Step::Item(index) => {
            let Some(item) = live.get(*index) else {
                return false;
            };
            set.iter()
                .find(|(key, _)| item_key_matches(key, item, *index))
                .is_some_and(|(_, child)| covers(child, item, rest))
        }
    }
}

/// Whether a list-item key of `fieldsV1` (`k:{...}`, `v:...` or `i:N`) names `item`.
fn item_key_matches(key: &str, item: &Value, index: usize) -> bool {
    if let Some(keys) = key.strip_prefix("k:") {
        let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(keys) else {
            return false;
        };
        return keys.iter().all(|(k, v)| item.get(k) == Some(v));
    }
    if let Some(value) = key.strip_prefix("v:") {
        return serde_json::from_str::<Value>(value).is_ok_and(|v| &v == item);
    }
    key.strip_prefix("i:")
        .and_then(|i| i.parse::<usize>().ok())
        .is_some_and(|i| i == index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn affinity(values: Value) -> Value {
        json!({"spec": {"template": {"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "j", "operator": "In", "values": values}]}
            ]}
        }}}}}})
    }

    #[test]
    fn defaults_and_fields_of_others_are_no_difference() {
        let desired = json!({"spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}});
        let live = json!({
            "metadata": {"resourceVersion": "7"},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "selector": {"a": "b"}, "clusterIP": "None"},
            "status": {}
        });
        assert_eq!(first_difference(&desired, &live), None);
    }

    #[test]
    fn a_widened_affinity_is_a_difference_at_its_values() {
        let difference = first_difference(&affinity(json!(["CN"])), &affinity(json!(["CN", "US"])))
            .expect("a difference");
        assert_eq!(
            difference.to_string(),
            "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[1]"
        );
    }

    #[test]
    fn an_added_list_item_is_a_difference() {
        let desired = json!({"spec": {"egress": [{"to": [{"a": 1}]}]}});
        let live = json!({"spec": {"egress": [{"to": [{"a": 1}]}, {}]}});
        assert_eq!(
            first_difference(&desired, &live).map(|d| d.to_string()),
            Some("spec.egress[1]".to_owned())
        );
    }

    #[test]
    fn a_removed_field_or_changed_value_is_a_difference() {
        let desired = json!({"spec": {"ingress": [{"from": []}], "selector": {"a": "b"}}});
        let removed = json!({"spec": {"selector": {"a": "b"}}});
        assert_eq!(
            first_difference(&desired, &removed).map(|d| d.to_string()),
            Some("spec.ingress".to_owned())
        );
        let changed = json!({"spec": {"ingress": [{"from": []}], "selector": {"a": "c"}}});
        assert_eq!(
            first_difference(&desired, &changed).map(|d| d.to_string()),
            Some("spec.selector.a".to_owned())
        );
    }

    #[test]
    fn the_manager_owning_the_changed_field_is_named() {
        let mut live = affinity(json!(["CN", "US"]));
        live["metadata"] = json!({"managedFields": [
            {"manager": "domicile", "operation": "Apply", "time": "2026-01-01T00:00:09Z",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
             "time": "2026-01-01T00:00:10Z", "fieldsV1": {"f:status": {}}},
            {"manager": "someone-else", "operation": "Update", "time": "2026-01-01T00:00:08Z",
             "fieldsV1": {"f:metadata": {"f:labels": {"f:x": {}}}}},
            {"manager": "intruder", "operation": "Apply", "time": "2026-01-01T00:00:05Z",
             "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:affinity": {"f:nodeAffinity": {
                 "f:requiredDuringSchedulingIgnoredDuringExecution": {}}}}}}}}
        ]});
        let difference = first_difference(&affinity(json!(["CN"])), &live).expect("differs");
        assert_eq!(
            changed_by(&live, &difference, "domicile").as_deref(),
            Some("intruder")
        );
    }

    #[test]
    fn keyed_list_items_are_followed_into_their_owner() {
        let live = json!({
            "metadata": {"managedFields": [
                {"manager": "kubectl-patch", "operation": "Update", "time": "2026-01-01T00:00:01Z",
                 "fieldsV1": {"f:spec": {"f:containers": {"k:{\"name\":\"workload\"}": {"f:image": {}}}}}},
                {"manager": "later", "operation": "Update", "time": "2026-01-01T00:00:02Z",
                 "fieldsV1": {"f:metadata": {}}}
            ]},
            "spec": {"containers": [{"name": "workload", "image": "evil"}]}
        });
        let desired = json!({"spec": {"containers": [{"name": "workload", "image": "good"}]}});
        let difference = first_difference(&desired, &live).expect("differs");
        assert_eq!(
            changed_by(&live, &difference, "domicile").as_deref(),
            Some("kubectl-patch")
        );
    }

    #[test]
    fn a_removed_field_is_blamed_on_the_last_writer() {
        let live = json!({
            "metadata": {"managedFields": [
                {"manager": "domicile", "operation": "Apply", "time": "2026-01-01T00:00:09Z", "fieldsV1": {}},
                {"manager": "early", "operation": "Update", "time": "2026-01-01T00:00:01Z", "fieldsV1": {"f:metadata": {}}},
                {"manager": "kubectl-edit", "operation": "Update", "time": "2026-01-01T00:00:05Z", "fieldsV1": {"f:metadata": {}}}
            ]},
            "spec": {}
        });
        let difference =
            first_difference(&json!({"spec": {"ingress": []}}), &live).expect("differs");
        assert_eq!(
            changed_by(&live, &difference, "domicile").as_deref(),
            Some("kubectl-edit")
        );
    }

    #[test]
    fn a_field_added_to_a_fence_counts_and_is_taken_out() {
        let desired = json!({"kind": "NetworkPolicy", "spec": {
            "podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}]}});
        let mut live = desired.clone();
        // Narrowed to no pod at all: the data pods are no longer fenced.
        live["spec"]["podSelector"]["matchExpressions"] =
            json!([{"key": "nobody", "operator": "Exists"}]);
        live["metadata"] = json!({"resourceVersion": "7"});
        assert_eq!(
            first_difference(&desired, &live).map(|d| d.to_string()),
            Some("spec".to_owned())
        );
        let patch = whole_restore(&desired, &live).expect("a patch");
        assert_eq!(
            patch,
            json!({"spec": {
                "podSelector": {"matchLabels": {"app": "a"}, "matchExpressions": null},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}]}})
        );
        assert_eq!(whole_restore(&desired, &desired), None);
    }

    #[test]
    fn a_pod_templates_host_access_and_sidecars_are_compared_whole_and_defaults_are_not() {
        let desired = json!({"kind": "StatefulSet", "spec": {"template": {"spec": {
            "containers": [{"name": "workload", "image": "x",
                            "securityContext": {"runAsNonRoot": true}}],
            "securityContext": {"runAsUser": 65532}}}}});
        // The API server's defaults beside what is declared: no difference.
        let mut live = desired.clone();
        live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] =
            json!("IfNotPresent");
        live["spec"]["template"]["spec"]["dnsPolicy"] = json!("ClusterFirst");
        assert_eq!(first_difference(&desired, &live), None);
        assert_eq!(whole_restore(&desired, &live), None);

        let mut tampered = live.clone();
        let pod = &mut tampered["spec"]["template"]["spec"];
        pod["hostPID"] = json!(true);
        pod["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}]);
        pod["containers"][0]["securityContext"]["privileged"] = json!(true);
        pod["containers"]
            .as_array_mut()
            .expect("containers")
            .push(json!({"name": "sidecar", "image": "exfil"}));
        assert!(first_difference(&desired, &tampered).is_some());
        let patch = whole_restore(&desired, &tampered).expect("a patch");
        let pod = &patch["spec"]["template"]["spec"];
        assert_eq!(pod.get("hostPID"), Some(&Value::Null), "removed: {patch}");
        assert_eq!(pod.get("volumes"), Some(&Value::Null), "removed: {patch}");
        assert_eq!(
            pod["containers"], desired["spec"]["template"]["spec"]["containers"],
            "the declared containers, and no other"
        );
        assert!(pod.get("affinity").is_none(), "{patch}");
    }
}
