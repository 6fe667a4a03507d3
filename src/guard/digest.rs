//! The digest of what an admission policy or binding refuses, computed from the live object the
//! same way the chart computes it from what it renders (`domicile.specDigest` in
//! charts/domicile/templates/_admission.tpl), so that an edited policy shows.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use kube::ResourceExt;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The annotation the chart puts on each policy and binding: the digest of its spec as rendered.
pub const DIGEST_ANNOTATION: &str = "domicile.dev/spec-digest";

/// The parts of a policy's spec that decide what it refuses (the rest the API server defaults).
const POLICY_FIELDS: [&str; 5] = [
    "failurePolicy",
    "paramKind",
    "matchConditions",
    "variables",
    "validations",
];
const CONSTRAINT_FIELDS: [&str; 2] = ["namespaceSelector", "resourceRules"];
const BINDING_FIELDS: [&str; 4] = [
    "policyName",
    "validationActions",
    "paramRef",
    "matchResources",
];

fn pick(object: &Value, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|field| {
            let value = object.get(*field)?;
            // An empty selector is what the API server fills in where the chart wrote none.
            let defaulted = value.is_null() || value.as_object().is_some_and(Map::is_empty);
            (!defaulted).then(|| ((*field).to_owned(), value.clone()))
        })
        .collect()
}

/// sha256 of the JSON text Go's encoding/json writes for `value` (Helm's toJson): keys sorted,
/// and `<`, `>` and `&` escaped as Go escapes them for HTML.
fn go_json_sha256(value: &Value) -> String {
    let text = value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let hash = Sha256::digest(text.as_bytes());
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The digest of a live policy's spec.
pub fn policy_digest(policy: &ValidatingAdmissionPolicy) -> String {
    let spec = serde_json::to_value(&policy.spec).unwrap_or(Value::Null);
    let mut digested = pick(&spec, &POLICY_FIELDS);
    if let Some(constraints) = spec.get("matchConstraints") {
        digested.insert(
            "matchConstraints".to_owned(),
            Value::Object(pick(constraints, &CONSTRAINT_FIELDS)),
        );
    }
    go_json_sha256(&Value::Object(digested))
}

/// The digest of a live binding's spec.
pub fn binding_digest(binding: &ValidatingAdmissionPolicyBinding) -> String {
    let spec = serde_json::to_value(&binding.spec).unwrap_or(Value::Null);
    go_json_sha256(&Value::Object(pick(&spec, &BINDING_FIELDS)))
}

/// Whether an object's spec is no longer the one its digest annotation was computed from (or it
/// carries none, as a policy made by hand).
fn differs(object: &impl ResourceExt, digest: String) -> bool {
    object.annotations().get(DIGEST_ANNOTATION) != Some(&digest)
}

pub fn policy_modified(policy: &ValidatingAdmissionPolicy) -> bool {
    differs(policy, policy_digest(policy))
}

pub fn binding_modified(binding: &ValidatingAdmissionPolicyBinding) -> bool {
    differs(binding, binding_digest(binding))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::admissionregistration::v1::{
        MatchResources, ValidatingAdmissionPolicySpec, Validation,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn policy(expression: &str) -> ValidatingAdmissionPolicy {
        ValidatingAdmissionPolicy {
            spec: Some(ValidatingAdmissionPolicySpec {
                failure_policy: Some("Fail".to_owned()),
                match_constraints: Some(MatchResources {
                    match_policy: Some("Equivalent".to_owned()),
                    object_selector: Some(LabelSelector::default()),
                    ..Default::default()
                }),
                validations: Some(vec![Validation {
                    expression: expression.to_owned(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_digest_is_what_helm_computes_from_the_rendered_spec() {
        // printf '%s' '{"failurePolicy":"Fail","matchConstraints":{},"validations":[{"expression":"a \u0026\u0026 b \u003c c"}]}' | sha256sum
        // is what the chart's toJson | sha256sum gives for this spec: the defaults the API server
        // fills in (matchPolicy, objectSelector) are left out, and Go escapes & and <.
        let text = r#"{"failurePolicy":"Fail","matchConstraints":{},"validations":[{"expression":"a \u0026\u0026 b \u003c c"}]}"#;
        let expected: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(policy_digest(&policy("a && b < c")), expected);
    }

    #[test]
    fn an_edited_validation_no_longer_matches_its_annotation() {
        let mut installed = policy("object.spec.x == 1");
        let digest = policy_digest(&installed);
        installed
            .annotations_mut()
            .insert(DIGEST_ANNOTATION.to_owned(), digest);
        assert!(!policy_modified(&installed));

        let mut edited = installed.clone();
        if let Some(validations) = edited.spec.as_mut().and_then(|s| s.validations.as_mut()) {
            validations[0].expression = "true".to_owned();
        }
        assert!(policy_modified(&edited));

        let mut unannotated = installed;
        unannotated.annotations_mut().clear();
        assert!(policy_modified(&unannotated), "a policy made by hand");
    }
}
