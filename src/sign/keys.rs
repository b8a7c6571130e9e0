//! Key pairs and their files: `hookbus keygen` writes the private key
//! (PKCS#8, base64 on one line after `PRIVATE_PREFIX`) mode 0600 and the
//! public key line (`ed25519 BASE64 KEY-ID`), which `[listen] trust` lists.

use super::{canonical, SIGNATURE_HEADER, SIGNED_AT_HEADER, VERSION};
use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, ED25519};
use sha2::{Digest, Sha256};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The word a private key file starts with.
const PRIVATE_PREFIX: &str = "hookbus-ed25519-private";
/// The word a public key line starts with.
const PUBLIC_PREFIX: &str = "ed25519";

/// A public key, as `[listen] trust` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: Vec<u8>,
    id: String,
}

impl PublicKey {
    fn from_bytes(bytes: &[u8]) -> PublicKey {
        let digest = Sha256::digest(bytes);
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        PublicKey {
            bytes: bytes.to_vec(),
            id,
        }
    }

    /// Parses `ed25519 BASE64 [KEY-ID]`; a given id must be the key's.
    pub fn parse(line: &str) -> Result<PublicKey> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (encoded, id) = match words.as_slice() {
            [PUBLIC_PREFIX, encoded] => (*encoded, None),
            [PUBLIC_PREFIX, encoded, id] => (*encoded, Some(*id)),
            _ => bail!("a trusted key is one line `ed25519 BASE64 KEY-ID`, as `hookbus keygen` writes to PATH.pub"),
        };
        let bytes = STANDARD
            .decode(encoded)
            .ok()
            .filter(|bytes| bytes.len() == 32)
            .context("the key is not 32 bytes of base64: copy the whole line of the .pub file")?;
        let key = PublicKey::from_bytes(&bytes);
        if let Some(id) = id.filter(|id| *id != key.id) {
            bail!(
                "key id {id} does not match the key (its id is {}): copy the whole line of the .pub file",
                key.id
            );
        }
        Ok(key)
    }

    /// The short id a signature names (16 hex digits of the key's SHA-256).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The one line of a `.pub` file.
    pub fn line(&self) -> String {
        format!(
            "{PUBLIC_PREFIX} {} {}",
            STANDARD.encode(&self.bytes),
            self.id
        )
    }

    /// True when `signature` is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(&ED25519, &self.bytes)
            .verify(message, signature)
            .is_ok()
    }
}

/// The private key hookbus signs with, loaded once per process.
pub struct Signer {
    pair: Ed25519KeyPair,
    public: PublicKey,
    file: PathBuf,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} from {})", self.public.id, self.file.display())
    }
}

impl PartialEq for Signer {
    fn eq(&self, other: &Signer) -> bool {
        self.public == other.public
    }
}

impl Signer {
    /// Reads a private key file as `hookbus keygen` writes it.
    pub fn load(file: &Path) -> Result<Signer> {
        let text = std::fs::read_to_string(file).with_context(|| {
            format!(
                "cannot read [sign] key_file {} (make it readable by the user hookbus runs as)",
                file.display()
            )
        })?;
        let encoded = text
            .trim()
            .strip_prefix(PRIVATE_PREFIX)
            .map(str::trim)
            .with_context(|| {
                format!(
                    "[sign] key_file {} is not a hookbus private key (make one with `hookbus keygen PATH`)",
                    file.display()
                )
            })?;
        let pkcs8 = STANDARD
            .decode(encoded)
            .ok()
            .and_then(|der| Ed25519KeyPair::from_pkcs8(&der).ok())
            .with_context(|| {
                format!(
                    "[sign] key_file {} holds no valid Ed25519 key (make one with `hookbus keygen PATH`)",
                    file.display()
                )
            })?;
        Ok(Signer {
            public: PublicKey::from_bytes(pkcs8.public_key().as_ref()),
            pair: pkcs8,
            file: file.to_path_buf(),
        })
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The file the key was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Signs a frame's headers and body as sent at `now` (Unix seconds):
    /// any signature headers it carried are replaced by this one's.
    pub fn sign(&self, headers: &mut Vec<(String, String)>, body: &[u8], now: u64) {
        headers.retain(|(key, _)| key != SIGNATURE_HEADER && key != SIGNED_AT_HEADER);
        headers.push((SIGNED_AT_HEADER.to_string(), now.to_string()));
        let signature = self.pair.sign(&canonical(headers, body));
        headers.push((
            SIGNATURE_HEADER.to_string(),
            format!(
                "{VERSION} {} {}",
                self.public.id,
                STANDARD.encode(signature.as_ref())
            ),
        ));
    }
}

/// Writes a new key pair: the private key to `path` (mode 0600) and the
/// public line to `path.pub`; an existing file is replaced only with `force`.
/// Returns the public key.
pub fn generate(path: &Path, force: bool) -> Result<PublicKey> {
    let public_path = pub_path(path);
    for file in [path, public_path.as_path()] {
        if file.exists() && !force {
            bail!(
                "{} exists: keep it, or pass --force to replace the key pair",
                file.display()
            );
        }
    }
    let random = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&random)
        .map_err(|_| anyhow::anyhow!("the system gave no randomness for a key"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("ring made a key it cannot read"))?;
    let public = PublicKey::from_bytes(pair.public_key().as_ref());
    let private = format!("{PRIVATE_PREFIX} {}\n", STANDARD.encode(pkcs8.as_ref()));
    write_new(path, private.as_bytes(), 0o600)?;
    write_new(
        &public_path,
        format!("{}\n", public.line()).as_bytes(),
        0o644,
    )?;
    Ok(public)
}

/// `PATH.pub`.
pub fn pub_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".pub");
    PathBuf::from(name)
}

/// Creates `file` afresh with `mode` (an old one is removed first, so a
/// replaced private key never passes through the old file's mode).
fn write_new(file: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    match std::fs::remove_file(file) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(error).with_context(|| format!("cannot replace {}", file.display()))
        }
        _ => {}
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(file)
        .and_then(|mut out| out.write_all(bytes))
        .with_context(|| format!("cannot write {}", file.display()))
}

/// True when group or others may read `file` (a private key should be 0600).
pub fn readable_by_others(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).is_ok_and(|meta| meta.permissions().mode() & 0o044 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{Signature, Trust};

    #[test]
    fn keygen_writes_a_private_file_0600_and_a_public_line_that_parses() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let public = generate(&path, false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!readable_by_others(&path));
        let line = std::fs::read_to_string(pub_path(&path)).unwrap();
        assert_eq!(PublicKey::parse(line.trim()).unwrap(), public);
        assert_eq!(Signer::load(&path).unwrap().public(), &public);
        assert!(
            generate(&path, false).is_err(),
            "no overwrite without force"
        );
        let other = generate(&path, true).unwrap();
        assert_ne!(other, public);
    }

    #[test]
    fn a_public_line_with_a_wrong_id_or_length_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let public = generate(&dir.path().join("k"), false).unwrap();
        let line = public.line();
        let wrong_id = format!("{} 0000000000000000", &line[..line.rfind(' ').unwrap()]);
        assert!(PublicKey::parse(&wrong_id).is_err());
        assert!(PublicKey::parse("ed25519 AAAA").is_err());
        assert!(PublicKey::parse("rsa AAAA x").is_err());
    }

    #[test]
    fn signing_replaces_a_carried_signature() {
        let dir = tempfile::tempdir().unwrap();
        generate(&dir.path().join("k"), false).unwrap();
        let signer = Signer::load(&dir.path().join("k")).unwrap();
        let mut headers = vec![
            ("destination".to_string(), "/topic/a".to_string()),
            (SIGNATURE_HEADER.to_string(), "v1 forged x".to_string()),
        ];
        signer.sign(&mut headers, b"body", 1000);
        assert_eq!(headers.len(), 3);
        let trust = Trust::new(vec![signer.public().clone()], 60);
        assert_eq!(
            trust.verify(&headers, b"body", 1000),
            Signature::Trusted(signer.public().id().to_string())
        );
    }
}
