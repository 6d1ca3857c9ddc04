//! TLS client settings shared by the HTTP speed-test engine and the remote_write pusher:
//! rustls with the `ring` provider, the webpki roots (plus any CA given), HTTP/1.1 by ALPN.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A client configuration trusting the webpki roots and `extra_roots`, presenting `identity`
/// (a certificate chain and its key) when given, and offering HTTP/1.1 by ALPN.
pub fn client_config(
    extra_roots: Vec<CertificateDer<'static>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for root in extra_roots {
        roots.add(root)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
