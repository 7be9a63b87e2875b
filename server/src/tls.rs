//! TLS for both front ends, from one certificate chain and key (PEM files named in
//! `[server]`), and `amar cert dev`, which makes a pair to try it with.
//!
//! pgwire answers SSLRequest (and PostgreSQL 17's direct TLS, ALPN `postgresql`) with
//! this certificate; Flight SQL serves gRPC over TLS only, once it is configured.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where the certificate chain and its private key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A loaded certificate, ready for both front ends.
#[derive(Clone)]
pub struct Tls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub pgwire: pgwire::tokio::TlsAcceptor,
    /// The portal's HTTPS (ALPN http/1.1).
    pub https: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads and checks the pair: the chain parses, the key parses and matches it.
    pub fn load(files: &TlsFiles) -> anyhow::Result<Tls> {
        let cert_pem = std::fs::read(&files.cert)
            .with_context(|| format!("TLS certificate {}", files.cert.display()))?;
        let key_pem = std::fs::read(&files.key)
            .with_context(|| format!("TLS key {}", files.key.display()))?;
        let certs = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("TLS certificate {}: {e}", files.cert.display()))?;
        if certs.is_empty() {
            anyhow::bail!(
                "TLS certificate {}: no CERTIFICATE block in the file",
                files.cert.display()
            );
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| anyhow::anyhow!("TLS key {}: {e}", files.key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                anyhow::anyhow!(
                    "TLS certificate {} and key {} do not make a pair: {e}",
                    files.cert.display(),
                    files.key.display()
                )
            })?;
        let mut https = config.clone();
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        https.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            cert_pem,
            key_pem,
            pgwire: pgwire::tokio::TlsAcceptor::from(Arc::new(config)),
            https: tokio_rustls::TlsAcceptor::from(Arc::new(https)),
        })
    }
}

/// Writes a development CA (`ca.crt`) and a certificate it signed for `hosts`
/// (`server.crt`, `server.key`) into `dir`; returns the three paths.
pub fn make_dev_pair(dir: &Path, hosts: &[String]) -> anyhow::Result<[PathBuf; 3]> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        "Amar development CA (not for production)",
    );
    ca_params.distinguished_name = name;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(hosts.to_vec())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, hosts.first().map_or("localhost", |h| h));
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    let paths = [
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    ];
    std::fs::write(&paths[0], ca_cert.pem())?;
    std::fs::write(&paths[1], cert.pem())?;
    write_private(&paths[2], key.serialize_pem().as_bytes())?;
    Ok(paths)
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| path.display().to_string())?;
    file.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dev_pair_loads_and_a_mismatched_pair_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let [_, cert, key] = make_dev_pair(dir.path(), &["localhost".to_string()]).unwrap();
        Tls::load(&TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })
        .unwrap();
        let other = dir.path().join("other");
        let [_, _, other_key] = make_dev_pair(&other, &["localhost".to_string()]).unwrap();
        let e = Tls::load(&TlsFiles {
            cert: cert.clone(),
            key: other_key,
        })
        .unwrap_err();
        assert!(e.to_string().contains("do not make a pair"), "{e}");
        let e = Tls::load(&TlsFiles {
            cert: key,
            key: cert,
        })
        .unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
    }
}
