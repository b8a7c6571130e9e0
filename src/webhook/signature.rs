//! Checking that a request comes from the forge: GitHub's and Gitea's
//! HMAC-SHA256 of the raw body, GitLab's shared token. Every comparison takes
//! the same time whatever the bytes, so a caller learns nothing by timing.

use super::config::ForgeKind;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Why a request's signature was refused (said in the 401 reply and the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The header the forge signs with is absent.
    Missing(&'static str),
    /// The header is there but its value is not a signature.
    Malformed(&'static str),
    /// The signature does not match the body and the secret.
    Mismatch(&'static str),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Missing(header) => write!(f, "no {header} header"),
            Refusal::Malformed(header) => write!(f, "{header} is not a hex signature"),
            Refusal::Mismatch(header) => write!(f, "{header} does not match the body"),
        }
    }
}

/// The headers Gitea, Forgejo and Gogs sign with (the same HMAC, bare hex).
const GITEA_HEADERS: [&str; 3] = [
    "X-Gitea-Signature",
    "X-Forgejo-Signature",
    "X-Gogs-Signature",
];

/// Checks a request of `kind` against `secret`; `header` looks a request
/// header up by name (case-insensitively).
pub fn verify<'a>(
    kind: ForgeKind,
    secret: &[u8],
    header: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
) -> Result<(), Refusal> {
    match kind {
        ForgeKind::Github => {
            const NAME: &str = "X-Hub-Signature-256";
            let value = header(NAME).ok_or(Refusal::Missing(NAME))?;
            let hex = value
                .trim()
                .strip_prefix("sha256=")
                .ok_or(Refusal::Malformed(NAME))?;
            check_hmac(NAME, secret, hex, body)
        }
        ForgeKind::Gitea => {
            let (name, value) = GITEA_HEADERS
                .iter()
                .find_map(|name| header(name).map(|value| (*name, value)))
                .ok_or(Refusal::Missing(GITEA_HEADERS[0]))?;
            check_hmac(name, secret, value.trim(), body)
        }
        ForgeKind::Gitlab => {
            const NAME: &str = "X-Gitlab-Token";
            let token = header(NAME).ok_or(Refusal::Missing(NAME))?;
            if same_secret(token.as_bytes(), secret) {
                Ok(())
            } else {
                Err(Refusal::Mismatch(NAME))
            }
        }
    }
}

fn check_hmac(name: &'static str, secret: &[u8], hex: &str, body: &[u8]) -> Result<(), Refusal> {
    let expected = decode_hex(hex).ok_or(Refusal::Malformed(name))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| Refusal::Mismatch(name))
}

/// Compares two secrets in time independent of where they differ and of their
/// lengths: their digests are compared, every byte.
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(secret));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |diff, (x, y)| diff | (x ^ y))
        == 0
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect()
}

/// The `sha256=HEX` signature GitHub would send for `body` (Gitea sends the
/// bare hex); for clients and tests.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's published test vector ("Validating webhook deliveries").
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| *value)
        }
    }

    #[test]
    fn githubs_test_vector_passes_and_a_flipped_bit_fails() {
        assert_eq!(sign(SECRET, BODY), SIGNATURE);
        let good = [("x-hub-signature-256", SIGNATURE)];
        assert_eq!(
            verify(ForgeKind::Github, SECRET, headers(&good), BODY),
            Ok(())
        );
        let flipped = SIGNATURE.replace("e17", "e16");
        let bad = [("X-Hub-Signature-256", flipped.as_str())];
        assert_eq!(
            verify(ForgeKind::Github, SECRET, headers(&bad), BODY),
            Err(Refusal::Mismatch("X-Hub-Signature-256"))
        );
        assert!(verify(ForgeKind::Github, SECRET, headers(&good), b"Hello, World?").is_err());
        assert_eq!(
            verify(ForgeKind::Github, SECRET, headers(&[]), BODY),
            Err(Refusal::Missing("X-Hub-Signature-256"))
        );
    }

    #[test]
    fn gitea_and_forgejo_sign_with_bare_hex_and_gitlab_with_a_token() {
        let hex = &SIGNATURE["sha256=".len()..];
        for name in ["X-Gitea-Signature", "X-Forgejo-Signature"] {
            let pairs = [(name, hex)];
            assert_eq!(
                verify(ForgeKind::Gitea, SECRET, headers(&pairs), BODY),
                Ok(())
            );
        }
        let prefixed = [("X-Gitea-Signature", SIGNATURE)];
        assert!(verify(ForgeKind::Gitea, SECRET, headers(&prefixed), BODY).is_err());
        let token = [("X-Gitlab-Token", "It's a Secret to Everybody")];
        assert_eq!(
            verify(ForgeKind::Gitlab, SECRET, headers(&token), BODY),
            Ok(())
        );
        let wrong = [("X-Gitlab-Token", "It's a Secret to Everybod")];
        assert!(verify(ForgeKind::Gitlab, SECRET, headers(&wrong), BODY).is_err());
    }
}
