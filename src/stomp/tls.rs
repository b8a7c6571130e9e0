//! TLS for `stomp+ssl://`: rustls with the ring provider, trusting the system
//! roots or one configured CA file, with hostname verification unless it was
//! explicitly turned off.

use anyhow::{Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The TLS trust of a client, loaded when first needed and then shared by
/// its clones. A CA file is read at once, so a bad one fails before any
/// message; the system's roots (a bundle and a directory of hundreds of
/// files: about 5 ms of CPU) are read for the first `stomp+ssl` connection,
/// not by every hook run, most of which leave their messages to `hookbus
/// relay` or another hook and connect to nothing.
#[derive(Debug, Clone)]
pub struct Trust {
    ca_file: Option<PathBuf>,
    verify_hostname: bool,
    loaded: Arc<OnceLock<Result<Arc<ClientConfig>, String>>>,
}

impl Trust {
    /// Trust in `ca_file` (read now) or the system's roots (read later).
    pub fn new(ca_file: Option<&Path>, verify_hostname: bool) -> Result<Trust> {
        let trust = Trust {
            ca_file: ca_file.map(Path::to_path_buf),
            verify_hostname,
            loaded: Arc::new(OnceLock::new()),
        };
        if ca_file.is_some() {
            let config = client_config(ca_file, verify_hostname)?;
            let _ = trust.loaded.set(Ok(config));
        }
        Ok(trust)
    }

    /// The client configuration, loading it the first time.
    pub fn config(&self) -> Result<&Arc<ClientConfig>, String> {
        let loaded = self.loaded.get_or_init(|| {
            client_config(self.ca_file.as_deref(), self.verify_hostname)
                .map_err(|error| format!("{error:#}"))
        });
        loaded.as_ref().map_err(Clone::clone)
    }
}

/// Builds the client TLS configuration.
fn client_config(ca_file: Option<&Path>, verify_hostname: bool) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(match ca_file {
        Some(path) => roots_from_file(path)?,
        None => system_roots()?,
    });
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS: no usable protocol versions")?;
    let config = if verify_hostname {
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        let chain_only = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .context("TLS: cannot build the certificate verifier")?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(chain_only)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

fn roots_from_file(path: &Path) -> Result<RootCertStore> {
    let fix = "set [broker] ca_file to a PEM file of CA certificates";
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read CA file {} ({fix})", path.display()))?;
    for cert in certs {
        let cert =
            cert.with_context(|| format!("bad PEM in CA file {} ({fix})", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("bad certificate in CA file {}", path.display()))?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "CA file {} holds no certificates ({fix})",
        path.display()
    );
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    anyhow::ensure!(
        !roots.is_empty(),
        "TLS: no system CA certificates found (install ca-certificates or set [broker] ca_file)"
    );
    Ok(roots)
}

/// Verifies the chain and signatures but accepts a certificate for another name:
/// what `tls_verify_hostname = false` asks for.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_is_read_at_once_and_the_system_roots_only_when_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = Trust::new(Some(&empty), true).unwrap_err();
        assert!(
            format!("{error:#}").contains("holds no certificates"),
            "{error:#}"
        );

        let system = Trust::new(None, true).unwrap();
        assert!(system.loaded.get().is_none(), "read before a connection");
        let shared = system.clone();
        let _ = system.config();
        assert!(shared.loaded.get().is_some(), "clones share what was read");
    }
}
