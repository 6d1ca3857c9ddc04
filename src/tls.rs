//! TLS client settings shared by the HTTP speed-test engine and the remote_write pusher:
//! rustls with the `ring` provider, the webpki roots (plus any CA given), HTTP/1.1 by ALPN;
//! and reading a PEM private key with a message that says what is wrong with it.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The private key in `pem`, or what is wrong with the file (a sentence saying the fix): no
/// key at all (a certificate given instead), or a key encrypted with a passphrase, which a
/// service cannot type.
pub(crate) fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, &'static str> {
    let contains = |needle: &[u8]| pem.windows(needle.len()).any(|window| window == needle);
    if contains(b"ENCRYPTED PRIVATE KEY") || contains(b"Proc-Type: 4,ENCRYPTED") {
        return Err(
            "the key is encrypted with a passphrase, which a service cannot type: \
                    write it out unencrypted (openssl pkey -in KEY -out PLAIN.key) and keep \
                    that file readable by this service alone",
        );
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(
        |_| "no private key in it (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
    )
}

/// A client configuration trusting the webpki roots and `extra_roots`, presenting `identity`
/// (a certificate chain and its key) when given, and offering HTTP/1.1 by ALPN.
pub(crate) fn client_config(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encrypted_or_missing_key_says_what_to_do() {
        let key = rcgen::KeyPair::generate().unwrap();
        assert!(private_key(key.serialize_pem().as_bytes()).is_ok());
        // PKCS#8 encrypted (openssl pkey -aes256) and the traditional form (genrsa -aes128).
        let pkcs8 =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let traditional = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                           DEK-Info: AES-128-CBC,00\n\nMIIB\n-----END RSA PRIVATE KEY-----\n";
        for pem in [pkcs8, traditional] {
            let err = private_key(pem.as_bytes()).unwrap_err();
            assert!(
                err.contains("encrypted") && err.contains("openssl pkey"),
                "{err}"
            );
        }
        let err = private_key(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
            .unwrap_err();
        assert!(err.contains("no private key"), "{err}");
    }
}
