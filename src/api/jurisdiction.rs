//! Jurisdiction codes: ISO 3166-1 alpha-2 countries, optionally narrowed to an ISO 3166-2 subdivision.

use std::fmt;

use kube::core::Rule;

/// Shape of a jurisdiction: an upper-case alpha-2 country, optionally `-` and a 1-3 character
/// subdivision (`CN`, `DE`, `CN-SH`, `US-CA`). The same expression is the CRD's CEL rule.
pub const SHAPE_PATTERN: &str = "^[A-Z]{2}(-[A-Z0-9]{1,3})?$";

/// The longest value `SHAPE_PATTERN` admits; also the CRD's `maxLength`, which bounds CEL cost.
pub const MAX_LENGTH: u32 = 6;

/// A parsed jurisdiction. Built only from a value the API server has already admitted, or
/// through [`Jurisdiction::parse`], which applies the same rules as the CRD.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Jurisdiction {
    country: String,
    subdivision: Option<String>,
}

/// Why a jurisdiction string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JurisdictionError {
    #[error(
        "{0:?} is not a jurisdiction: use an upper-case ISO 3166-1 alpha-2 country code such as CN or DE, optionally followed by an ISO 3166-2 subdivision such as CN-SH"
    )]
    Shape(String),
    #[error("{0:?} is not an assigned ISO 3166-1 alpha-2 country code")]
    UnassignedCountry(String),
}

impl Jurisdiction {
    pub fn parse(value: &str) -> Result<Self, JurisdictionError> {
        let (country, subdivision) = match value.split_once('-') {
            Some((country, sub)) => (country, Some(sub)),
            None => (value, None),
        };
        let country_ok = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
        let subdivision_ok = subdivision.is_none_or(|s| {
            (1..=3).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        });
        if !country_ok || !subdivision_ok {
            return Err(JurisdictionError::Shape(value.to_owned()));
        }
        if !is_assigned_country(country) {
            return Err(JurisdictionError::UnassignedCountry(country.to_owned()));
        }
        Ok(Self {
            country: country.to_owned(),
            subdivision: subdivision.map(|s| format!("{country}-{s}")),
        })
    }

    /// The ISO 3166-1 alpha-2 country, e.g. `CN` for both `CN` and `CN-SH`.
    pub fn country(&self) -> &str {
        &self.country
    }

    /// The full ISO 3166-2 subdivision code, e.g. `CN-SH`, when the jurisdiction names one.
    pub fn subdivision(&self) -> Option<&str> {
        self.subdivision.as_deref()
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.subdivision.as_deref().unwrap_or(&self.country))
    }
}

/// Whether `code` is an officially assigned ISO 3166-1 alpha-2 code, per the `rust_iso3166` list.
pub fn is_assigned_country(code: &str) -> bool {
    rust_iso3166::from_alpha2(code).is_some()
}

/// Every assigned alpha-2 code, sorted, so the generated CRD is stable.
pub fn assigned_countries() -> Vec<&'static str> {
    let mut codes = rust_iso3166::ALL_ALPHA2.to_vec();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// CEL: the value has the shape of a jurisdiction.
pub fn shape_rule() -> Rule {
    Rule::new(format!("self.matches('{SHAPE_PATTERN}')")).message(
        "jurisdiction must be an upper-case ISO 3166-1 alpha-2 country code such as CN or DE, \
         optionally followed by an ISO 3166-2 subdivision such as CN-SH",
    )
}

/// CEL: the country part is an assigned ISO 3166-1 code. Values of the wrong shape are left to
/// `shape_rule` so that each mistake is reported once.
pub fn assigned_country_rule() -> Rule {
    let list = assigned_countries()
        .iter()
        .map(|c| format!("'{c}'"))
        .collect::<Vec<_>>()
        .join(",");
    Rule::new(format!(
        "!self.matches('{SHAPE_PATTERN}') || self.substring(0, 2) in [{list}]"
    ))
    .message(
        "jurisdiction must start with an assigned ISO 3166-1 alpha-2 country code \
         (for example CN, DE, IN, US); codes such as XX or AA are not assigned to any country",
    )
}

/// CEL transition rule: a data centre never changes jurisdiction, because its data would have to.
pub fn immutable_rule() -> Rule {
    Rule::new("self == oldSelf").message(
        "jurisdiction is immutable: create a new RegionalDataCenter for the other jurisdiction \
         and migrate deliberately",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_alone_is_a_jurisdiction() {
        let j = Jurisdiction::parse("CN").expect("CN is valid");
        assert_eq!(j.country(), "CN");
        assert_eq!(j.subdivision(), None);
        assert_eq!(j.to_string(), "CN");
    }

    #[test]
    fn subdivision_keeps_its_country() {
        let j = Jurisdiction::parse("CN-SH").expect("CN-SH is valid");
        assert_eq!(j.country(), "CN");
        assert_eq!(j.subdivision(), Some("CN-SH"));
        assert_eq!(j.to_string(), "CN-SH");
    }

    #[test]
    fn numeric_subdivisions_are_accepted() {
        assert!(Jurisdiction::parse("FR-75").is_ok());
        assert!(Jurisdiction::parse("IN-MH").is_ok());
    }

    #[test]
    fn lower_case_empty_and_long_values_are_refused_for_shape() {
        for bad in [
            "cn", "Cn", "", "C", "CHN", "CN-", "CN-SHAN", "CN_SH", "CN-sh", " CN",
        ] {
            assert_eq!(
                Jurisdiction::parse(bad),
                Err(JurisdictionError::Shape(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unassigned_country_codes_are_refused() {
        for bad in ["XX", "AA", "ZZ", "XX-SH"] {
            assert!(
                matches!(
                    Jurisdiction::parse(bad),
                    Err(JurisdictionError::UnassignedCountry(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_iso_list_has_every_assigned_country() {
        let codes = assigned_countries();
        assert_eq!(codes.len(), 249, "ISO 3166-1 assigns 249 alpha-2 codes");
        for code in ["CN", "DE", "IN", "US", "FR", "BR", "ZA"] {
            assert!(codes.contains(&code), "{code}");
        }
        assert!(!codes.contains(&"XX"));
    }

    #[test]
    fn the_longest_shape_fits_max_length() {
        assert!(Jurisdiction::parse("US-ABC").is_ok());
        assert_eq!("US-ABC".len() as u32, MAX_LENGTH);
    }
}
