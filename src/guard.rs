//! The admission guard: which jurisdiction a namespace belongs to, and whether the chart's
//! ValidatingAdmissionPolicies are present, bound and in force for it. Pure, so that the operator
//! (for the status) and `domicile audit` (for auditors) judge it the same way.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use crate::api::jurisdiction::Jurisdiction;
use crate::api::{GuardPolicy, GuardStatus};
use crate::resources::NodeLabelKeys;

mod digest;
pub use digest::DIGEST_ANNOTATION;

/// The namespace label that puts a namespace in one jurisdiction (`CN`, or `CN-SH`).
pub const NAMESPACE_LABEL: &str = "domicile.dev/jurisdiction";
/// The namespace label with which an admin lets the operator label a namespace with the
/// jurisdiction of its data centres (`allowed`): a tenant's data centre cannot lock a shared
/// namespace to a jurisdiction.
pub const LABELLING_LABEL: &str = "domicile.dev/labelling";

/// Whether the operator labels a namespace with its jurisdiction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Labelling {
    /// Namespaces are labelled by people only.
    Off,
    /// It would, but no admin allowed it for this namespace.
    NotAllowed,
    Allowed,
}

impl Labelling {
    /// For a namespace with `labels`, when the operator labels namespaces (`enabled`), those an
    /// admin allowed or (`any`) every one.
    pub fn of(enabled: bool, any: bool, labels: &BTreeMap<String, String>) -> Self {
        let allowed = any || labels.get(LABELLING_LABEL).map(String::as_str) == Some("allowed");
        match (enabled, allowed) {
            (false, _) => Self::Off,
            (true, false) => Self::NotAllowed,
            (true, true) => Self::Allowed,
        }
    }
}

/// The label on the chart's policies and bindings that says what each guards.
pub const GUARD_LABEL: &str = "domicile.dev/guard";
/// What the namespace of a data centre needs guarded, in the order they are reported. The
/// last guard, `operator`, fences the operator's own account wherever it writes.
pub const NAMESPACE_GUARDS: [&str; 7] = [
    "pods",
    "claims",
    "snapshots",
    "managed",
    "network",
    "connect",
    "datacenters",
];
const OPERATOR_GUARD: &str = "operator";

/// The label a namespace of data centres of these jurisdictions should carry: their common code,
/// or their common country when they name different subdivisions of it; `Err` with the codes
/// when they are of different countries, which no single label serves.
pub fn namespace_code<'a>(
    jurisdictions: impl IntoIterator<Item = &'a Jurisdiction>,
) -> Result<Option<String>, Vec<String>> {
    let codes: BTreeSet<String> = jurisdictions.into_iter().map(|j| j.to_string()).collect();
    let countries: BTreeSet<&str> = codes.iter().map(|c| &c[..2]).collect();
    match (codes.len(), countries.len()) {
        (0, _) => Ok(None),
        (1, _) => Ok(codes.into_iter().next()),
        (_, 1) => Ok(countries.into_iter().next().map(str::to_owned)),
        _ => Err(codes.into_iter().collect()),
    }
}

/// Whether the pods policy of a namespace labelled `code` admits the pods of a data centre of
/// `jurisdiction`: the same code, or the country of its subdivision.
pub fn covers(code: &str, jurisdiction: &Jurisdiction) -> bool {
    code == jurisdiction.to_string() || code == jurisdiction.country()
}

/// The StorageClasses that declare a jurisdiction by their labels, as the claims policy reads
/// them: class name to `CN`, or to `CN-SH` when the class also names a subdivision of it.
pub fn declared_classes<'a, K: ResourceExt + 'a>(
    classes: impl IntoIterator<Item = &'a K>,
    keys: &NodeLabelKeys,
) -> BTreeMap<String, String> {
    classes
        .into_iter()
        .filter_map(|class| {
            let labels = class.labels();
            let country = Jurisdiction::parse(labels.get(&keys.jurisdiction)?).ok()?;
            let code = match labels
                .get(&keys.subdivision)
                .and_then(|s| Jurisdiction::parse(s).ok())
            {
                Some(sub) if sub.country() == country.country() && sub.subdivision().is_some() => {
                    sub.to_string()
                }
                _ => country.country().to_owned(),
            };
            Some((class.name_any(), code))
        })
        .collect()
}

/// Why the guard is or is not in force for a data centre's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Enforced,
    JurisdictionConflict,
    NamespaceNotLabelled,
    NamespaceJurisdictionMismatch,
    NamespaceJurisdictionWider,
    NamespaceExempt,
    PolicyMissing,
    PolicyModified,
    NotEnforced,
}

impl Standing {
    /// The word the AdmissionGuarded condition and the audit give as the reason.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Enforced => "Enforced",
            Self::JurisdictionConflict => "JurisdictionConflict",
            Self::NamespaceNotLabelled => "NamespaceNotLabelled",
            Self::NamespaceJurisdictionMismatch => "NamespaceJurisdictionMismatch",
            Self::NamespaceJurisdictionWider => "NamespaceJurisdictionWider",
            Self::NamespaceExempt => "NamespaceExempt",
            Self::PolicyMissing => "PolicyMissing",
            Self::PolicyModified => "PolicyModified",
            Self::NotEnforced => "NotEnforced",
        }
    }
}

/// The guard of one data centre's namespace, for its status and for the audit.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    pub status: GuardStatus,
    pub standing: Standing,
    pub message: String,
}

impl Assessment {
    /// The policy that keeps anyone but the operator from changing managed objects in the
    /// namespace, if one is in force with Deny.
    pub fn managed_policy(&self) -> Option<&str> {
        self.status
            .policies
            .iter()
            .find(|p| p.guard == "managed" && p.actions.iter().any(|a| a == "Deny"))
            .map(|p| p.name.as_str())
    }
}

/// What the assessment reads.
pub struct Inputs<'a> {
    pub namespace: &'a str,
    /// The namespace's labels, if the namespace is known.
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    pub jurisdiction: &'a Jurisdiction,
    /// The jurisdictions of every data centre in the namespace, this one included.
    pub neighbours: &'a [(String, Jurisdiction)],
    pub policies: &'a [&'a ValidatingAdmissionPolicy],
    pub bindings: &'a [&'a ValidatingAdmissionPolicyBinding],
    /// The namespace label that exempts a namespace (the chart's `admission.exemptLabel`).
    pub exempt_label: &'a str,
    /// Whether the operator labels namespaces itself, for the advice.
    pub labelling: Labelling,
}

fn selects(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    selector.is_none_or(|selector| {
        Selector::try_from(selector.clone()).is_ok_and(|selector| selector.matches(labels))
    })
}

/// Each policy of `guard` that applies to a namespace with `labels`, with the actions of the
/// bindings that apply too; a policy no binding applies is left out.
fn in_force(
    guard: &str,
    labels: &BTreeMap<String, String>,
    policies: &[&ValidatingAdmissionPolicy],
    bindings: &[&ValidatingAdmissionPolicyBinding],
) -> Vec<GuardPolicy> {
    policies
        .iter()
        .filter(|policy| policy.labels().get(GUARD_LABEL).map(String::as_str) == Some(guard))
        .filter(|policy| {
            let constraints = policy
                .spec
                .as_ref()
                .and_then(|s| s.match_constraints.as_ref());
            selects(
                constraints.and_then(|c| c.namespace_selector.as_ref()),
                labels,
            )
        })
        .filter_map(|policy| {
            let name = policy.name_any();
            let actions: BTreeSet<String> = bindings
                .iter()
                .filter(|binding| binding.spec.policy_name == name)
                .filter(|binding| {
                    let resources = binding.spec.match_resources.as_ref();
                    selects(
                        resources.and_then(|r| r.namespace_selector.as_ref()),
                        labels,
                    )
                })
                .flat_map(|binding| binding.spec.validation_actions.iter().cloned())
                .collect();
            (!actions.is_empty()).then(|| GuardPolicy {
                guard: guard.to_owned(),
                name,
                actions: actions.into_iter().collect(),
            })
        })
        .collect()
}

/// The policies in force, and their bindings, whose spec is not the one the chart rendered.
fn modified(in_force: &[GuardPolicy], inputs: &Inputs<'_>) -> Vec<String> {
    let names: BTreeSet<&str> = in_force.iter().map(|p| p.name.as_str()).collect();
    let policies = inputs
        .policies
        .iter()
        .filter(|p| names.contains(p.name_any().as_str()) && digest::policy_modified(p))
        .map(|p| format!("ValidatingAdmissionPolicy {}", p.name_any()));
    let bindings = inputs
        .bindings
        .iter()
        .filter(|b| names.contains(b.spec.policy_name.as_str()) && digest::binding_modified(b))
        .map(|b| format!("ValidatingAdmissionPolicyBinding {}", b.name_any()));
    policies.chain(bindings).collect()
}

/// Whether the namespace of a data centre is guarded, and if not, why and what to do.
pub fn assess(inputs: &Inputs<'_>) -> Assessment {
    let Inputs {
        namespace,
        jurisdiction,
        ..
    } = *inputs;
    let empty = BTreeMap::new();
    let labels = inputs.namespace_labels.unwrap_or(&empty);
    let code = labels.get(NAMESPACE_LABEL).cloned();
    let policies: Vec<GuardPolicy> = NAMESPACE_GUARDS
        .iter()
        .chain([&OPERATOR_GUARD])
        .flat_map(|guard| in_force(guard, labels, inputs.policies, inputs.bindings))
        .collect();
    let status = GuardStatus {
        namespace_jurisdiction: code.clone(),
        policies,
    };
    let verdict = |standing, message: String| Assessment {
        status: status.clone(),
        standing,
        message,
    };

    if let Err(codes) = namespace_code(inputs.neighbours.iter().map(|(_, j)| j)) {
        let names = |code: &String| {
            inputs
                .neighbours
                .iter()
                .filter(|(_, j)| j.to_string() == *code)
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let parts: Vec<String> = codes
            .iter()
            .map(|code| format!("{code} ({})", names(code)))
            .collect();
        return verdict(
            Standing::JurisdictionConflict,
            format!(
                "namespace {namespace} holds RegionalDataCenters of {}; a namespace belongs to one \
                 jurisdiction, so its admission policies would refuse the pods of the others: move \
                 each jurisdiction's RegionalDataCenters to a namespace of its own",
                parts.join(" and ")
            ),
        );
    }
    let Some(code) = code else {
        let how = match inputs.labelling {
            Labelling::Allowed => {
                "the operator labels it once no other label is in the way".to_owned()
            }
            Labelling::NotAllowed => format!(
                "or let the operator label it: kubectl label namespace {namespace} \
                 {LABELLING_LABEL}=allowed"
            ),
            Labelling::Off => "or install the chart with namespaces.label=true".to_owned(),
        };
        return verdict(
            Standing::NamespaceNotLabelled,
            format!(
                "namespace {namespace} has no {NAMESPACE_LABEL} label, so no admission policy \
                 checks its pods and claims: kubectl label namespace {namespace} \
                 {NAMESPACE_LABEL}={jurisdiction} ({how})"
            ),
        );
    };
    if !covers(&code, jurisdiction) {
        return verdict(
            Standing::NamespaceJurisdictionMismatch,
            format!(
                "namespace {namespace} is labelled {NAMESPACE_LABEL}={code}, but this \
                 RegionalDataCenter keeps data in {jurisdiction}: the namespace's pods policy \
                 refuses its pods; create it in a namespace of {jurisdiction}"
            ),
        );
    }
    if code != jurisdiction.to_string() {
        return verdict(
            Standing::NamespaceJurisdictionWider,
            format!(
                "namespace {namespace} is labelled {NAMESPACE_LABEL}={code}, so its pods policy \
                 admits pods for any node of {code}, while this RegionalDataCenter keeps data in \
                 {jurisdiction}: keep it in a namespace of its own labelled {jurisdiction} \
                 (kubectl label namespace NAME {NAMESPACE_LABEL}={jurisdiction})"
            ),
        );
    }
    if labels.get(inputs.exempt_label).map(String::as_str) == Some("exempt") {
        return verdict(
            Standing::NamespaceExempt,
            format!(
                "namespace {namespace} is exempt from domicile's admission policies \
                 ({}=exempt); remove the label to guard it",
                inputs.exempt_label
            ),
        );
    }
    let missing: Vec<&str> = NAMESPACE_GUARDS
        .iter()
        .copied()
        .filter(|guard| !status.policies.iter().any(|p| p.guard == *guard))
        .collect();
    if !missing.is_empty() {
        return verdict(
            Standing::PolicyMissing,
            format!(
                "no bound admission policy guards the {} of namespace {namespace}: install the \
                 chart with admission.{}.enabled=true",
                missing.join(" and "),
                missing.join(".enabled=true and admission.")
            ),
        );
    }
    let modified: Vec<String> = modified(&status.policies, inputs);
    if !modified.is_empty() {
        return verdict(
            Standing::PolicyModified,
            format!(
                "{} no longer match what the chart installed (their {DIGEST_ANNOTATION} \
                 annotation): what they refuse is unknown; reinstall them with helm upgrade, or \
                 helm template ... | kubectl apply -f -",
                modified.join(", ")
            ),
        );
    }
    let lenient: Vec<String> = status
        .policies
        .iter()
        .filter(|p| NAMESPACE_GUARDS.contains(&p.guard.as_str()))
        .filter(|p| !p.actions.iter().any(|a| a == "Deny"))
        .map(|p| format!("{} [{}]", p.name, p.actions.join(", ")))
        .collect();
    if !lenient.is_empty() {
        return verdict(
            Standing::NotEnforced,
            format!(
                "{} only report: what would take data out of {code} is admitted; set \
                 validationActions to [Deny] once the warnings have stopped",
                lenient.join(", ")
            ),
        );
    }
    let names = |guard: &str| {
        status
            .policies
            .iter()
            .filter(|p| p.guard == guard)
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    verdict(
        Standing::Enforced,
        format!(
            "namespace {namespace} belongs to {code}: the API server refuses pods that do not \
             require {code} or break the baseline Pod Security Standard, and mounts of a data \
             claim but by its replica ({}), claims on classes that do not declare it ({}), \
             snapshots on classes that do not declare it ({}), changes to managed objects by anyone but the operator and Kubernetes' controllers \
             ({}), NetworkPolicies but the operator's and Services that reach outside ({}), \
             sessions into replicas ({}), and specs that read what their author may not ({})",
            names("pods"),
            names("claims"),
            names("snapshots"),
            names("managed"),
            names("network"),
            names("connect"),
            names("datacenters")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::admissionregistration::v1::{
        MatchResources, ValidatingAdmissionPolicyBindingSpec, ValidatingAdmissionPolicySpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn j(code: &str) -> Jurisdiction {
        Jurisdiction::parse(code).expect("a jurisdiction")
    }

    fn policy(guard: &str, jurisdiction_namespaces: bool) -> ValidatingAdmissionPolicy {
        let mut requirements = vec![LabelSelectorRequirement {
            key: "domicile.dev/admission".to_owned(),
            operator: "NotIn".to_owned(),
            values: Some(vec!["exempt".to_owned()]),
        }];
        if jurisdiction_namespaces {
            requirements.push(LabelSelectorRequirement {
                key: NAMESPACE_LABEL.to_owned(),
                operator: "Exists".to_owned(),
                values: None,
            });
        }
        let mut policy = ValidatingAdmissionPolicy {
            spec: Some(ValidatingAdmissionPolicySpec {
                match_constraints: Some(MatchResources {
                    namespace_selector: Some(LabelSelector {
                        match_expressions: Some(requirements),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        policy.metadata.name = Some(format!("domicile-{guard}"));
        policy
            .labels_mut()
            .insert(GUARD_LABEL.to_owned(), guard.to_owned());
        policy
    }

    fn binding(guard: &str, actions: &[&str]) -> ValidatingAdmissionPolicyBinding {
        let mut binding = ValidatingAdmissionPolicyBinding {
            spec: ValidatingAdmissionPolicyBindingSpec {
                policy_name: format!("domicile-{guard}"),
                validation_actions: actions.iter().map(|a| (*a).to_owned()).collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        binding.metadata.name = Some(format!("domicile-{guard}"));
        binding
    }

    struct Cluster {
        policies: Vec<ValidatingAdmissionPolicy>,
        bindings: Vec<ValidatingAdmissionPolicyBinding>,
    }

    impl Cluster {
        /// The chart's policies, bound with `actions`, each with the digest the chart gives it.
        fn chart(actions: &[&str]) -> Self {
            let guards = NAMESPACE_GUARDS.iter().chain([&OPERATOR_GUARD]);
            Self {
                policies: guards
                    .clone()
                    .map(|g| {
                        let mut policy =
                            policy(g, !["managed", "datacenters", "operator"].contains(g));
                        let digest = digest::policy_digest(&policy);
                        policy
                            .annotations_mut()
                            .insert(DIGEST_ANNOTATION.to_owned(), digest);
                        policy
                    })
                    .collect(),
                bindings: guards
                    .map(|g| {
                        let mut binding = binding(g, actions);
                        let digest = digest::binding_digest(&binding);
                        binding
                            .annotations_mut()
                            .insert(DIGEST_ANNOTATION.to_owned(), digest);
                        binding
                    })
                    .collect(),
            }
        }

        fn assess(&self, labels: &[(&str, &str)], rdcs: &[(&str, &str)]) -> Assessment {
            let labels: BTreeMap<String, String> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let neighbours: Vec<(String, Jurisdiction)> = rdcs
                .iter()
                .map(|(name, code)| ((*name).to_owned(), j(code)))
                .collect();
            let policies: Vec<&ValidatingAdmissionPolicy> = self.policies.iter().collect();
            let bindings: Vec<&ValidatingAdmissionPolicyBinding> = self.bindings.iter().collect();
            assess(&Inputs {
                namespace: "fleet",
                namespace_labels: Some(&labels),
                jurisdiction: &neighbours[0].1,
                neighbours: &neighbours,
                policies: &policies,
                bindings: &bindings,
                exempt_label: "domicile.dev/admission",
                labelling: Labelling::Off,
            })
        }
    }

    #[test]
    fn one_label_serves_one_country_and_subdivisions_share_theirs() {
        assert_eq!(namespace_code([&j("CN")]), Ok(Some("CN".to_owned())));
        assert_eq!(
            namespace_code([&j("CN-SH"), &j("CN-SH")]),
            Ok(Some("CN-SH".to_owned()))
        );
        assert_eq!(
            namespace_code([&j("CN-SH"), &j("CN")]),
            Ok(Some("CN".to_owned()))
        );
        assert_eq!(
            namespace_code([&j("CN"), &j("DE")]),
            Err(vec!["CN".to_owned(), "DE".to_owned()])
        );
        assert_eq!(namespace_code([]), Ok(None));
        assert!(covers("CN", &j("CN-SH")));
        assert!(covers("CN-SH", &j("CN-SH")));
        assert!(!covers("CN-SH", &j("CN")), "a CN pod may run outside CN-SH");
        assert!(!covers("DE", &j("CN")));
    }

    #[test]
    fn classes_declare_their_country_or_subdivision_and_others_are_left_out() {
        let keys = NodeLabelKeys::default();
        let class = |name: &str, labels: &[(&str, &str)]| {
            let mut class = k8s_openapi::api::storage::v1::StorageClass::default();
            class.metadata.name = Some(name.to_owned());
            class.metadata.labels = Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            );
            class
        };
        let classes = [
            class("cn", &[(&keys.jurisdiction, "CN")]),
            class(
                "sh",
                &[(&keys.jurisdiction, "CN"), (&keys.subdivision, "CN-SH")],
            ),
            class(
                "liar",
                &[(&keys.jurisdiction, "CN"), (&keys.subdivision, "US-CA")],
            ),
            class("typo", &[(&keys.jurisdiction, "China")]),
            class("plain", &[]),
        ];
        let declared = declared_classes(&classes, &keys);
        assert_eq!(
            declared,
            BTreeMap::from([
                ("cn".to_owned(), "CN".to_owned()),
                ("liar".to_owned(), "CN".to_owned()),
                ("sh".to_owned(), "CN-SH".to_owned()),
            ])
        );
    }

    #[test]
    fn a_labelled_namespace_with_every_policy_denying_is_enforced() {
        let cluster = Cluster::chart(&["Deny"]);
        let guard = cluster.assess(&[(NAMESPACE_LABEL, "CN")], &[("a", "CN")]);
        assert_eq!(guard.standing, Standing::Enforced, "{}", guard.message);
        assert_eq!(guard.status.namespace_jurisdiction.as_deref(), Some("CN"));
        let guards: Vec<&str> = guard
            .status
            .policies
            .iter()
            .map(|p| p.guard.as_str())
            .collect();
        assert_eq!(
            guards,
            [
                "pods",
                "claims",
                "snapshots",
                "managed",
                "network",
                "connect",
                "datacenters",
                "operator"
            ]
        );
        assert!(guard.message.contains("domicile-pods"), "{}", guard.message);
    }

    #[test]
    fn each_way_the_guard_falls_short_is_named() {
        let cluster = Cluster::chart(&["Deny"]);
        let unlabelled = cluster.assess(&[], &[("a", "CN")]);
        assert_eq!(unlabelled.standing, Standing::NamespaceNotLabelled);
        assert!(
            unlabelled
                .message
                .contains("kubectl label namespace fleet domicile.dev/jurisdiction=CN"),
            "{}",
            unlabelled.message
        );
        // Without the label, the namespace policies do not apply; managed and operator do.
        let guards: Vec<&str> = unlabelled
            .status
            .policies
            .iter()
            .map(|p| p.guard.as_str())
            .collect();
        assert_eq!(guards, ["managed", "datacenters", "operator"]);

        let other = cluster.assess(&[(NAMESPACE_LABEL, "DE")], &[("a", "CN")]);
        assert_eq!(other.standing, Standing::NamespaceJurisdictionMismatch);
        let narrower = cluster.assess(&[(NAMESPACE_LABEL, "CN-SH")], &[("a", "CN")]);
        assert_eq!(narrower.standing, Standing::NamespaceJurisdictionMismatch);
        // A CN namespace admits pods for any CN node, so it does not guard CN-SH data.
        let wider = cluster.assess(&[(NAMESPACE_LABEL, "CN")], &[("a", "CN-SH")]);
        assert_eq!(wider.standing, Standing::NamespaceJurisdictionWider);
        assert!(
            wider.message.contains("domicile.dev/jurisdiction=CN-SH"),
            "{}",
            wider.message
        );
        let exact = cluster.assess(&[(NAMESPACE_LABEL, "CN-SH")], &[("a", "CN-SH")]);
        assert_eq!(exact.standing, Standing::Enforced, "{}", exact.message);

        let conflict = cluster.assess(
            &[(NAMESPACE_LABEL, "CN")],
            &[("a", "CN"), ("b", "DE"), ("c", "CN-SH")],
        );
        assert_eq!(conflict.standing, Standing::JurisdictionConflict);
        assert!(
            conflict.message.contains("CN (a) and CN-SH (c) and DE (b)"),
            "{}",
            conflict.message
        );

        let exempt = cluster.assess(
            &[
                (NAMESPACE_LABEL, "CN"),
                ("domicile.dev/admission", "exempt"),
            ],
            &[("a", "CN")],
        );
        assert_eq!(exempt.standing, Standing::NamespaceExempt);

        let mut no_claims = Cluster::chart(&["Deny"]);
        no_claims
            .bindings
            .retain(|b| b.spec.policy_name != "domicile-claims");
        let missing = no_claims.assess(&[(NAMESPACE_LABEL, "CN")], &[("a", "CN")]);
        assert_eq!(missing.standing, Standing::PolicyMissing);
        assert!(
            missing.message.contains("admission.claims.enabled=true"),
            "{}",
            missing.message
        );

        // An edited validation, or a binding narrowed to fewer namespaces, is no longer the
        // chart's: the guard cannot say what it refuses.
        let mut edited = Cluster::chart(&["Deny"]);
        edited.policies[0]
            .spec
            .as_mut()
            .expect("a spec")
            .failure_policy = Some("Ignore".to_owned());
        let modified = edited.assess(&[(NAMESPACE_LABEL, "CN")], &[("a", "CN")]);
        assert_eq!(modified.standing, Standing::PolicyModified);
        assert!(
            modified
                .message
                .contains("ValidatingAdmissionPolicy domicile-pods"),
            "{}",
            modified.message
        );
        let mut narrowed = Cluster::chart(&["Deny"]);
        narrowed.bindings[1].spec.match_resources = Some(MatchResources {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("team".to_owned(), "none".to_owned())])),
                ..Default::default()
            }),
            ..Default::default()
        });
        let modified =
            narrowed.assess(&[(NAMESPACE_LABEL, "CN"), ("team", "none")], &[("a", "CN")]);
        assert_eq!(
            modified.standing,
            Standing::PolicyModified,
            "{}",
            modified.message
        );
        assert!(
            modified
                .message
                .contains("ValidatingAdmissionPolicyBinding domicile-claims"),
            "{}",
            modified.message
        );

        let warned =
            Cluster::chart(&["Warn", "Audit"]).assess(&[(NAMESPACE_LABEL, "CN")], &[("a", "CN")]);
        assert_eq!(warned.standing, Standing::NotEnforced);
        assert!(
            warned.message.contains("domicile-pods [Audit, Warn]"),
            "{}",
            warned.message
        );
    }
}
