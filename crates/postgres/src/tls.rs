//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert`, the part of them that is safe.
//!
//! The default is `verify-full`: the connection is encrypted, the server's certificate must
//! chain to a trusted CA and name the host connected to. The CA comes from `sslrootcert` (a PEM
//! file; for RDS, its regional or global bundle), else the system's store. `disable` is for a
//! local server without TLS. `require`, `prefer`, `allow` and `verify-ca` are refused: they
//! encrypt without checking who answers (or not at all), which is what a man in the middle
//! needs.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::PgError;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Encrypted; the certificate chains to a trusted CA and names the host (the default).
    #[default]
    VerifyFull,
    /// Plain TCP: local servers without TLS only.
    Disable,
}

impl TlsMode {
    /// libpq's `sslmode` value.
    pub fn parse(value: &str) -> Result<Self, PgError> {
        match value {
            "verify-full" => Ok(TlsMode::VerifyFull),
            "disable" => Ok(TlsMode::Disable),
            other => Err(PgError::Config(format!(
                "sslmode={other} is not supported: use verify-full (the default: encrypted, the \
                 server's certificate checked against sslrootcert or the system CAs, host name \
                 included) or disable (a local server without TLS)"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::VerifyFull => "verify-full",
            TlsMode::Disable => "disable",
        }
    }
}

/// The connection string without `sslmode` and `sslrootcert` (which tokio-postgres does not
/// know in their libpq sense), and their values. Both URL (`postgres://...?sslmode=...`) and
/// key=value (`host=... sslmode=...`) forms; key=value values with quotes are left alone.
pub(crate) fn split_tls_params(
    conn: &str,
) -> Result<(String, Option<String>, Option<String>), PgError> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: String| -> bool {
        match key {
            "sslmode" => {
                mode = Some(value);
                true
            }
            "sslrootcert" => {
                root = Some(value);
                true
            }
            _ => false,
        }
    };
    let trimmed = conn.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let Some((base, query)) = trimmed.split_once('?') else {
            return Ok((trimmed.to_owned(), None, None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(k, percent_decode(v)?) {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, mode, root));
    }
    let mut kept = Vec::new();
    for token in trimmed.split_whitespace() {
        match token.split_once('=') {
            Some((k, v)) if !v.contains('\'') && take(k.trim(), v.to_owned()) => {}
            _ => kept.push(token),
        }
    }
    Ok((kept.join(" "), mode, root))
}

fn percent_decode(v: &str) -> Result<String, PgError> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| PgError::Config("bad %-escape in the URL's query".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PgError::Config("URL query is not UTF-8".into()))
}

/// The rustls connector for `verify-full`: the CAs of `root_cert` (PEM, one or more
/// certificates), else of the system store.
pub(crate) fn connector(root_cert: Option<&Path>) -> Result<MakeRustlsConnect, PgError> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let certs = read_pem_certs(path)?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(PgError::Config(format!(
                    "sslrootcert {}: no usable CA certificate in it",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(PgError::Config(
                    "no CA certificates to verify PostgreSQL's TLS certificate: set sslrootcert \
                     (e.g. the RDS CA bundle) or install the system CA store"
                        .into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Config(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PgError> {
    let bad =
        |e: &dyn std::fmt::Display| PgError::Config(format!("sslrootcert {}: {e}", path.display()));
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))?;
    iter.collect::<Result<Vec<_>, _>>().map_err(|e| bad(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(TlsMode::default(), TlsMode::VerifyFull);
        assert_eq!(TlsMode::parse("disable").unwrap(), TlsMode::Disable);
        for weak in ["require", "prefer", "allow", "verify-ca", ""] {
            let e = TlsMode::parse(weak).unwrap_err().to_string();
            assert!(e.contains("verify-full"), "{e}");
        }
    }

    #[test]
    fn tls_parameters_leave_the_url() {
        let (rest, mode, root) = split_tls_params(
            "postgres://u:p@h:5432/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca%20b.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p@h:5432/db?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/tmp/ca b.pem"));

        let (rest, mode, root) = split_tls_params("postgres://u:p@h/db").unwrap();
        assert_eq!(
            (rest.as_str(), mode, root),
            ("postgres://u:p@h/db", None, None)
        );

        let (rest, mode, root) =
            split_tls_params("host=h user=u sslmode=disable sslrootcert=/x.pem dbname=d").unwrap();
        assert_eq!(rest, "host=h user=u dbname=d");
        assert_eq!(mode.as_deref(), Some("disable"));
        assert_eq!(root.as_deref(), Some("/x.pem"));

        assert!(split_tls_params("postgres://h/db?sslrootcert=%zz").is_err());
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_configuration_error() {
        let e = connector(Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap();
        assert!(matches!(e, PgError::Config(_)), "{e}");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = connector(Some(&empty)).err().unwrap();
        assert!(e.to_string().contains("no usable CA certificate"), "{e}");
    }
}
