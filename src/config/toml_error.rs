//! TOML errors as hookbus shows them: the line, never the source line nor the
//! offending value, since either may be a passcode.

/// A TOML error on one line, without the quoted source line or the offending
/// value: either may be a passcode.
pub(super) fn without_values(text: &str, err: &toml::de::Error) -> anyhow::Error {
    let place = err
        .span()
        .map(|span| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: ")
        })
        .unwrap_or_default();
    anyhow::anyhow!("{place}{}", without_value(err.message().trim()))
}

/// serde's "invalid type: integer `987654321`, expected a string" without the
/// value: "invalid type: integer, expected a string".
fn without_value(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            // The kind ("integer", "floating point", "string") ends where the
            // quoted value starts; what was expected is after the last ", expected".
            let kind = rest.split([' ', ',']).take_while(|word| {
                !word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic())
            });
            let kind = kind.collect::<Vec<_>>().join(" ");
            let expected = rest
                .rsplit_once(", expected ")
                .map(|(_, expected)| expected);
            return match expected {
                Some(expected) => format!("{prefix}{kind}, expected {expected}"),
                None => format!("{prefix}{kind}"),
            };
        }
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_passcode_of_the_wrong_type_is_not_shown() {
        for (value, kind) in [
            ("987654321", "integer"),
            ("98765.4321", "floating point"),
            ("true", "boolean"),
        ] {
            let text = format!("[broker]\nurl = \"stomp://h\"\npasscode = {value}\n");
            let error = format!("{:#}", crate::config::Config::parse(&text).unwrap_err());
            assert_eq!(
                error,
                format!("line 3: invalid type: {kind}, expected a string")
            );
        }
        let text = "[broker]\nurl = \"stomp://h\"\ndeadline_ms = \"98765\"\n";
        let error = format!("{:#}", crate::config::Config::parse(text).unwrap_err());
        assert_eq!(error, "line 3: invalid type: string, expected u64");
    }
}
