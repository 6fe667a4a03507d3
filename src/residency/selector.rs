//! Node selectors as the scheduler reads them: terms are ORed, requirements within a term ANDed.

use k8s_openapi::api::core::v1::{Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};

use crate::api::jurisdiction::Jurisdiction;
use crate::resources::NodeLabelKeys;

/// Whether `node` satisfies `selector`. A selector with no terms matches nothing.
pub fn node_matches(node: &Node, selector: &NodeSelector) -> bool {
    selector
        .node_selector_terms
        .iter()
        .any(|term| term_matches(node, term))
}

fn term_matches(node: &Node, term: &NodeSelectorTerm) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let label = |key: &str| {
        node.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .map(String::as_str)
    };
    let field = |key: &str| match key {
        "metadata.name" => node.metadata.name.as_deref(),
        _ => None,
    };
    expressions
        .iter()
        .all(|r| requirement_matches(r, label(&r.key)))
        && fields.iter().all(|r| requirement_matches(r, field(&r.key)))
}

fn requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    let number = |text: &str| text.parse::<i64>().ok();
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| values.iter().all(|x| x != v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => match (
            value.and_then(number),
            values.first().and_then(|x| number(x)),
        ) {
            (Some(v), Some(bound)) if requirement.operator == "Gt" => v > bound,
            (Some(v), Some(bound)) => v < bound,
            _ => false,
        },
        // An operator this code does not know: fail closed, the node does not match.
        _ => false,
    }
}

/// Whether every term of `selector` itself confines a volume to `jurisdiction`, by requiring the
/// jurisdiction labels, so it stays inside whatever nodes exist now.
pub fn requires_jurisdiction(
    selector: &NodeSelector,
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
) -> bool {
    let pins = |term: &NodeSelectorTerm, key: &str, value: &str| {
        term.match_expressions.iter().flatten().any(|r| {
            r.key == key
                && r.operator == "In"
                && r.values
                    .as_deref()
                    .is_some_and(|v| !v.is_empty() && v.iter().all(|x| x == value))
        })
    };
    !selector.node_selector_terms.is_empty()
        && selector.node_selector_terms.iter().all(|term| {
            pins(term, &keys.jurisdiction, jurisdiction.country())
                && jurisdiction
                    .subdivision()
                    .is_none_or(|sub| pins(term, &keys.subdivision, sub))
        })
}
