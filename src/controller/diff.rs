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
    differs(desired, live, &mut path).then_some(Difference { path })
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
}
