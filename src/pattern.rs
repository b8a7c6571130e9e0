//! Regular expressions from the config (`ignore_refs`, Subversion layout
//! rules). The regex crate is built without its Unicode property tables
//! (`\p{Greek}`, `\p{L}`): patterns over ref names and repository paths do
//! not need them, and every hook start would pay for them (a thousand more
//! relocations to apply, 200 KB more to map). `\w`, `\d`, `\s` and `(?i)`
//! stay Unicode-aware.

use anyhow::{anyhow, Result};
use regex::Regex;

/// Compiles `pattern`; the error ends with a hint when the pattern asks for
/// a Unicode property class.
pub fn compile(pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|error| {
        if pattern.contains("\\p") || pattern.contains("\\P") {
            anyhow!(
                "{error}; hookbus reads no Unicode property classes (\\p{{…}}): \
                 list the characters in a class instead, such as [α-ω]"
            )
        } else {
            anyhow!(error)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_property_classes_are_refused_with_a_hint() {
        let error = compile(r"refs/heads/\p{Greek}+").unwrap_err().to_string();
        let last = error.lines().last().unwrap();
        assert!(last.contains("Unicode property not found"), "{error}");
        assert!(last.contains("list the characters in a class"), "{error}");
    }

    #[test]
    fn perl_classes_and_case_folding_stay_unicode_aware() {
        assert!(compile(r"^\w+$").unwrap().is_match("straße"));
        assert!(compile(r"(?i)^STRASSE|^straße$")
            .unwrap()
            .is_match("STRAßE"));
        let plain = compile("refs/tags/jenkins-.*").unwrap();
        assert!(plain.is_match("refs/tags/jenkins-42"));
    }

    #[test]
    fn other_errors_carry_no_hint() {
        let error = compile("refs/(heads").unwrap_err().to_string();
        assert!(!error.contains("Unicode property"), "{error}");
    }
}
