//! `tls_server_config`: certificates, versions, cipher suites, curves and client
//! authentication, built into a rustls `ServerConfig` (ring provider).
//!
//! `cipher_suites` names Go's suites: the TLS 1.2 ones listed are the only TLS 1.2 suites
//! offered; TLS 1.3 suites (`TLS_AES_128_GCM_SHA256` …), which Go does not let one choose,
//! restrict TLS 1.3 only when at least one is listed. With `prefer_server_cipher_suites`
//! (the default) the list's order is the server's preference (rustls `ignore_client_order`).
//! `RequestClientCert` and `RequireAnyClientCert` accept any client certificate unverified
//! (the client still proves it holds the certificate's key), as in Go: they are not
//! authentication, and `client_allowed_sans` is refused with them: a name in a certificate
//! nobody verified is whatever the client chose to write (the toolkit checks such names
//! anyway, which lets in anyone who makes a certificate naming an allowed SAN).

use std::sync::Arc;

use rustls::crypto::ring::{cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoClientAuth, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore, ServerConfig,
    SignatureScheme, SupportedCipherSuite, client::danger::HandshakeSignatureValid,
};
use serde_json::{Map, Value};

use super::{Ctx, WebConfigError};

const SECTION: &str = "tls_server_config";
const KEYS: &[&str] = &[
    "cert_file",
    "key_file",
    "cert",
    "key",
    "client_auth_type",
    "client_ca_file",
    "client_ca",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
];

/// Go's cipher suite names and rustls's suite, `None` where rustls (ring) has none.
const CIPHER_SUITES: &[(&str, Option<SupportedCipherSuite>)] = &[
    (
        "TLS_AES_128_GCM_SHA256",
        Some(cipher_suite::TLS13_AES_128_GCM_SHA256),
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        Some(cipher_suite::TLS13_AES_256_GCM_SHA384),
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        Some(cipher_suite::TLS13_CHACHA20_POLY1305_SHA256),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        Some(cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        Some(cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        Some(cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Some(cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Some(cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        Some(cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", None),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", None),
];

/// Go's curve names and rustls's key exchange group, `None` where rustls (ring) has none.
const CURVES: &[(&str, Option<&dyn SupportedKxGroup>)] = &[
    ("X25519", Some(kx_group::X25519)),
    ("CurveP256", Some(kx_group::SECP256R1)),
    ("CurveP384", Some(kx_group::SECP384R1)),
    ("CurveP521", None),
];

/// `client_auth_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

const CLIENT_AUTH_TYPES: &str = "NoClientCert, RequestClientCert, RequireAnyClientCert, \
                                 VerifyClientCertIfGiven, RequireAndVerifyClientCert";

impl ClientAuth {
    fn name(self) -> &'static str {
        match self {
            ClientAuth::NoClientCert => "NoClientCert",
            ClientAuth::RequestClientCert => "RequestClientCert",
            ClientAuth::RequireAnyClientCert => "RequireAnyClientCert",
            ClientAuth::VerifyClientCertIfGiven => "VerifyClientCertIfGiven",
            ClientAuth::RequireAndVerifyClientCert => "RequireAndVerifyClientCert",
        }
    }

    fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// The section's values as written; empty strings count as absent, as in the toolkit.
struct Section {
    cert_file: Option<String>,
    key_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_ca: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
}

impl Section {
    fn take(mut map: Map<String, Value>, ctx: &Ctx<'_>) -> Result<Section, WebConfigError> {
        let string = |map: &mut Map<String, Value>, name: &str| -> Result<_, WebConfigError> {
            Ok(ctx
                .take::<String>(map, SECTION, name, "a string")?
                .filter(|value| !value.is_empty()))
        };
        let list = |map: &mut Map<String, Value>, name: &str| {
            ctx.take::<Vec<String>>(map, SECTION, name, "a list of strings")
        };
        let section = Section {
            cert_file: string(&mut map, "cert_file")?,
            key_file: string(&mut map, "key_file")?,
            cert: string(&mut map, "cert")?,
            key: string(&mut map, "key")?,
            client_auth_type: string(&mut map, "client_auth_type")?,
            client_ca_file: string(&mut map, "client_ca_file")?,
            client_ca: string(&mut map, "client_ca")?,
            client_allowed_sans: list(&mut map, "client_allowed_sans")?,
            min_version: string(&mut map, "min_version")?,
            max_version: string(&mut map, "max_version")?,
            cipher_suites: list(&mut map, "cipher_suites")?,
            curve_preferences: list(&mut map, "curve_preferences")?,
            prefer_server_cipher_suites: ctx.take(
                &mut map,
                SECTION,
                "prefer_server_cipher_suites",
                "true or false",
            )?,
        };
        ctx.no_more(&map, SECTION, KEYS)?;
        Ok(section)
    }

    fn is_empty(&self) -> bool {
        self.cert_file.is_none()
            && self.key_file.is_none()
            && self.cert.is_none()
            && self.key.is_none()
            && self.client_auth_type.is_none()
            && self.client_ca_file.is_none()
            && self.client_ca.is_none()
            && self.client_allowed_sans.is_none()
            && self.min_version.is_none()
            && self.max_version.is_none()
            && self.cipher_suites.is_none()
            && self.curve_preferences.is_none()
            && self.prefer_server_cipher_suites.is_none()
    }
}

fn key(name: &str) -> String {
    format!("{SECTION}.{name}")
}

/// Builds the server's TLS configuration from `tls_server_config`; `None` when the section is
/// empty (plain HTTP).
pub(super) fn build(
    map: Map<String, Value>,
    ctx: &mut Ctx<'_>,
) -> Result<Option<Arc<ServerConfig>>, WebConfigError> {
    let section = Section::take(map, ctx)?;
    if section.is_empty() {
        return Ok(None);
    }

    let (cert_key, cert_pem) = pem_source(
        ctx,
        ("cert_file", section.cert_file.as_deref()),
        ("cert", section.cert.as_deref()),
    )?;
    let (key_key, key_pem) = pem_source(
        ctx,
        ("key_file", section.key_file.as_deref()),
        ("key", section.key.as_deref()),
    )?;
    let chain = certificates(ctx, &cert_key, &cert_pem)?;
    let private_key = crate::tls::private_key(&key_pem)
        .map_err(|why| ctx.invalid(&cert_or_key(&key_key), why))?;

    let min = version(ctx, "min_version", section.min_version.as_deref(), 12)?;
    let max = version(ctx, "max_version", section.max_version.as_deref(), 13)?;
    if min > max {
        return Err(ctx.invalid(
            &key("min_version"),
            format!("TLS{min} is above max_version TLS{max}"),
        ));
    }
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if max >= 13 {
        versions.push(&rustls::version::TLS13);
    }
    if min <= 12 {
        versions.push(&rustls::version::TLS12);
    }

    let defaults = rustls::crypto::ring::default_provider();
    let cipher_suites = match &section.cipher_suites {
        None => defaults.cipher_suites.clone(),
        Some(names) => chosen_suites(ctx, names, min, max)?,
    };
    if section.cipher_suites.is_some() && min <= 12 {
        key_fits_a_tls12_suite(ctx, &private_key, &cipher_suites)?;
    }
    let kx_groups = match &section.curve_preferences {
        None => defaults.kx_groups.clone(),
        Some(names) => chosen_curves(ctx, names)?,
    };
    let provider = Arc::new(CryptoProvider {
        cipher_suites,
        kx_groups,
        ..defaults
    });

    let verifier = client_verifier(ctx, &section, &provider)?;

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|error| ctx.invalid(SECTION, format!("rustls refuses the versions: {error}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, private_key)
        .map_err(|error| match error {
            Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => ctx.invalid(
                &cert_or_key(&key_key),
                format!(
                    "the key does not match the certificate of {}",
                    cert_or_key(&cert_key)
                ),
            ),
            other => ctx.invalid(
                &cert_or_key(&key_key),
                format!("rustls refuses the key: {other}"),
            ),
        })?;
    config.ignore_client_order = section.prefer_server_cipher_suites.unwrap_or(true);
    // HTTP/1.1 only (http_server_config.http2 is ignored).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// The key a PEM came from, as written in messages (`tls_server_config.cert_file`).
fn cert_or_key(which: &str) -> String {
    key(which)
}

/// The PEM text of a certificate or key given as a file (`file`) or inline (`inline`), and
/// the name of the key it came from.
fn pem_source(
    ctx: &mut Ctx<'_>,
    file: (&str, Option<&str>),
    inline: (&str, Option<&str>),
) -> Result<(String, Vec<u8>), WebConfigError> {
    match (file.1, inline.1) {
        (Some(_), Some(_)) => Err(ctx.invalid(
            &key(inline.0),
            format!("set either {} or {}, not both", file.0, inline.0),
        )),
        (Some(name), None) => {
            let bytes = ctx.read(&key(file.0), name)?;
            Ok((file.0.to_owned(), bytes))
        }
        (None, Some(text)) => Ok((inline.0.to_owned(), text.as_bytes().to_vec())),
        (None, None) => Err(ctx.invalid(
            &key(file.0),
            format!(
                "missing: TLS needs cert_file and key_file (or inline cert and key); \
                 set one of {} or {}",
                file.0, inline.0
            ),
        )),
    }
}

/// The certificates of a PEM text (at least one), from the key named `which`.
fn certificates(
    ctx: &Ctx<'_>,
    which: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|error| ctx.invalid(&key(which), format!("not valid PEM: {error}")))?;
    if chain.is_empty() {
        return Err(ctx.invalid(
            &key(which),
            "no certificate in it (expected PEM CERTIFICATE blocks)",
        ));
    }
    Ok(chain)
}

/// `min_version` / `max_version` as 12 or 13.
fn version(
    ctx: &Ctx<'_>,
    name: &str,
    value: Option<&str>,
    default: u8,
) -> Result<u8, WebConfigError> {
    match value {
        None => Ok(default),
        Some("TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(old @ ("TLS10" | "TLS11")) => Err(ctx.invalid(
            &key(name),
            format!("{old} is not supported (rustls speaks TLS12 and TLS13)"),
        )),
        Some(other) => Err(ctx.invalid(
            &key(name),
            format!("unknown TLS version {other:?} (accepted: TLS12, TLS13)"),
        )),
    }
}

fn supported_suite_names() -> String {
    CIPHER_SUITES
        .iter()
        .filter(|(_, suite)| suite.is_some())
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The cipher suites named, in the order named; the TLS 1.3 suites all stay when none is
/// named.
fn chosen_suites(
    ctx: &Ctx<'_>,
    names: &[String],
    min: u8,
    max: u8,
) -> Result<Vec<SupportedCipherSuite>, WebConfigError> {
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    for name in names {
        match CIPHER_SUITES.iter().find(|(known, _)| known == name) {
            Some((_, Some(suite))) => {
                // A suite of a version the server never speaks would silently do nothing.
                let tls13 = matches!(suite, SupportedCipherSuite::Tls13(_));
                if tls13 && max <= 12 {
                    return Err(ctx.invalid(
                        &key("cipher_suites"),
                        format!(
                            "{name} is a TLS 1.3 suite, which max_version TLS12 never uses: \
                             drop it, or drop max_version"
                        ),
                    ));
                }
                if !tls13 && min >= 13 {
                    return Err(ctx.invalid(
                        &key("cipher_suites"),
                        format!(
                            "{name} is a TLS 1.2 suite, which min_version TLS13 never uses: \
                             drop it (TLS 1.3 suites are TLS_AES_128_GCM_SHA256, \
                             TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256), or set \
                             min_version: TLS12"
                        ),
                    ));
                }
                if !chosen.contains(suite) {
                    chosen.push(*suite);
                }
            }
            Some((_, None)) => {
                return Err(ctx.invalid(
                    &key("cipher_suites"),
                    format!(
                        "{name} is not supported by rustls (accepted: {})",
                        supported_suite_names()
                    ),
                ));
            }
            None => {
                return Err(ctx.invalid(
                    &key("cipher_suites"),
                    format!(
                        "unknown cipher suite {name:?} (accepted: {})",
                        supported_suite_names()
                    ),
                ));
            }
        }
    }
    let is_tls13 = |suite: &SupportedCipherSuite| matches!(suite, SupportedCipherSuite::Tls13(_));
    if min <= 12 && !chosen.iter().any(|suite| !is_tls13(suite)) {
        return Err(ctx.invalid(
            &key("cipher_suites"),
            "names no TLS 1.2 suite, but min_version allows TLS12 \
             (name one, or set min_version: TLS13)",
        ));
    }
    if !chosen.iter().any(is_tls13) {
        let all_tls13 = rustls::crypto::ring::DEFAULT_CIPHER_SUITES
            .iter()
            .filter(|suite| is_tls13(suite))
            .copied();
        chosen = all_tls13.chain(chosen).collect();
    }
    Ok(chosen)
}

/// Refuses a `cipher_suites` whose TLS 1.2 suites all need another kind of key than the
/// certificate's (TLS 1.2 clients could never connect).
fn key_fits_a_tls12_suite(
    ctx: &Ctx<'_>,
    private_key: &PrivateKeyDer<'_>,
    suites: &[SupportedCipherSuite],
) -> Result<(), WebConfigError> {
    // A key ring cannot use is refused later, when the certificate is set.
    let Ok(signing_key) = rustls::crypto::ring::sign::any_supported_type(private_key) else {
        return Ok(());
    };
    let algorithm = signing_key.algorithm();
    let usable = suites.iter().any(|suite| {
        matches!(suite, SupportedCipherSuite::Tls12(_))
            && suite.usable_for_signature_algorithm(algorithm)
    });
    if usable {
        return Ok(());
    }
    let wanted = if algorithm == rustls::SignatureAlgorithm::RSA {
        "TLS_ECDHE_RSA_"
    } else {
        "TLS_ECDHE_ECDSA_"
    };
    Err(ctx.invalid(
        &key("cipher_suites"),
        format!(
            "no TLS 1.2 suite named can be used with the certificate's {algorithm:?} key, so \
             TLS 1.2 clients could not connect (name a {wanted}… suite, or set min_version: \
             TLS13)"
        ),
    ))
}

/// The key exchange groups named, in the order named.
fn chosen_curves(
    ctx: &Ctx<'_>,
    names: &[String],
) -> Result<Vec<&'static dyn SupportedKxGroup>, WebConfigError> {
    let accepted = || {
        CURVES
            .iter()
            .filter(|(_, group)| group.is_some())
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut chosen: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    for name in names {
        match CURVES.iter().find(|(known, _)| known == name) {
            Some((_, Some(group))) => {
                if !chosen.iter().any(|have| have.name() == group.name()) {
                    chosen.push(*group);
                }
            }
            Some((_, None)) => {
                return Err(ctx.invalid(
                    &key("curve_preferences"),
                    format!(
                        "{name} is not supported by rustls (accepted: {})",
                        accepted()
                    ),
                ));
            }
            None => {
                return Err(ctx.invalid(
                    &key("curve_preferences"),
                    format!("unknown curve {name:?} (accepted: {})", accepted()),
                ));
            }
        }
    }
    if chosen.is_empty() {
        return Err(ctx.invalid(
            &key("curve_preferences"),
            format!(
                "an empty list allows no key exchange (accepted: {})",
                accepted()
            ),
        ));
    }
    Ok(chosen)
}

/// The client certificate policy of `client_auth_type`, `client_ca_file` / `client_ca` and
/// `client_allowed_sans`.
fn client_verifier(
    ctx: &mut Ctx<'_>,
    section: &Section,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, WebConfigError> {
    let auth = match section.client_auth_type.as_deref() {
        None | Some("NoClientCert") => ClientAuth::NoClientCert,
        Some("RequestClientCert") => ClientAuth::RequestClientCert,
        Some("RequireAnyClientCert" | "RequireClientCert") => ClientAuth::RequireAnyClientCert,
        Some("VerifyClientCertIfGiven") => ClientAuth::VerifyClientCertIfGiven,
        Some("RequireAndVerifyClientCert") => ClientAuth::RequireAndVerifyClientCert,
        Some(other) => {
            return Err(ctx.invalid(
                &key("client_auth_type"),
                format!("unknown client auth type {other:?} (accepted: {CLIENT_AUTH_TYPES})"),
            ));
        }
    };
    let ca_key = match (&section.client_ca_file, &section.client_ca) {
        (Some(_), Some(_)) => {
            return Err(ctx.invalid(
                &key("client_ca"),
                "set either client_ca_file or client_ca, not both",
            ));
        }
        (Some(_), None) => Some("client_ca_file"),
        (None, Some(_)) => Some("client_ca"),
        (None, None) => None,
    };
    if let Some(ca_key) = ca_key
        && !auth.verifies()
    {
        let message = if auth == ClientAuth::NoClientCert {
            "is set, but client_auth_type is NoClientCert, so no client certificate is asked \
             for: set client_auth_type: RequireAndVerifyClientCert (or VerifyClientCertIfGiven)"
                .to_owned()
        } else {
            format!(
                "is not used with client_auth_type {}, which accepts any client certificate \
                 unverified: use RequireAndVerifyClientCert (or VerifyClientCertIfGiven) to \
                 verify against it",
                auth.name()
            )
        };
        return Err(ctx.invalid(&key(ca_key), message));
    }

    let verifier: Arc<dyn ClientCertVerifier> = match auth {
        ClientAuth::NoClientCert => Arc::new(NoClientAuth),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let Some(ca_key) = ca_key else {
                return Err(ctx.invalid(
                    &key("client_ca_file"),
                    format!(
                        "missing: client_auth_type {} verifies client certificates against \
                         the CA certificates in client_ca_file (or inline client_ca)",
                        auth.name()
                    ),
                ));
            };
            let pem = match (&section.client_ca_file, &section.client_ca) {
                (Some(name), _) => ctx.read(&key(ca_key), name)?,
                (None, Some(text)) => text.as_bytes().to_vec(),
                (None, None) => Vec::new(),
            };
            let mut roots = RootCertStore::empty();
            for certificate in certificates(ctx, ca_key, &pem)? {
                roots.add(certificate).map_err(|error| {
                    ctx.invalid(
                        &key(ca_key),
                        format!("not a usable CA certificate: {error}"),
                    )
                })?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if auth == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder.build().map_err(|error| {
                ctx.invalid(
                    &key(ca_key),
                    format!("rustls refuses the CA certificates: {error}"),
                )
            })?
        }
    };

    match &section.client_allowed_sans {
        None => Ok(verifier),
        Some(sans) => {
            if !matches!(auth, ClientAuth::RequireAndVerifyClientCert) {
                let why = if matches!(auth, ClientAuth::RequireAnyClientCert) {
                    "takes any certificate unverified, so a client can write an allowed name \
                     into a certificate it makes itself"
                } else {
                    "lets a client connect without a certificate, leaving no name to check"
                };
                return Err(ctx.invalid(
                    &key("client_allowed_sans"),
                    format!(
                        "needs client_auth_type RequireAndVerifyClientCert (and client_ca_file): \
                         {} {why}",
                        auth.name()
                    ),
                ));
            }
            if sans.is_empty() {
                return Err(ctx.invalid(
                    &key("client_allowed_sans"),
                    "an empty list would refuse every client: name the allowed DNS names, \
                     IP addresses, e-mail addresses or URIs, or remove the key",
                ));
            }
            Ok(Arc::new(AllowedSans {
                inner: verifier,
                allowed: sans.clone(),
            }))
        }
    }
}

/// `RequestClientCert` / `RequireAnyClientCert`: any certificate is taken without checking
/// who issued it; the handshake signature still proves the client holds its key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after `inner` accepted the certificate, one of its Subject
/// Alternative Names (DNS name, IP address, e-mail address or URI) must equal an allowed
/// entry exactly.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

/// The Subject Alternative Names of a DER certificate as strings (IP addresses in their
/// usual text form); `None` when it does not parse.
pub(super) fn subject_alt_names(der: &[u8]) -> Option<Vec<String>> {
    use x509_parser::extensions::GeneralName;
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut names = Vec::new();
    let Ok(Some(extension)) = certificate.subject_alternative_name() else {
        return Some(names);
    };
    for name in &extension.value.general_names {
        match name {
            GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
            GeneralName::RFC822Name(mail) => names.push((*mail).to_owned()),
            GeneralName::URI(uri) => names.push((*uri).to_owned()),
            GeneralName::IPAddress(bytes) => {
                if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                    names.push(std::net::Ipv4Addr::from(v4).to_string());
                } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                    let v6 = std::net::Ipv6Addr::from(v6);
                    match v6.to_ipv4_mapped() {
                        Some(v4) => names.push(v4.to_string()),
                        None => names.push(v6.to_string()),
                    }
                }
            }
            _ => {}
        }
    }
    Some(names)
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let Some(names) = subject_alt_names(end_entity) else {
            return Err(Error::InvalidCertificate(CertificateError::BadEncoding));
        };
        if names.iter().any(|name| self.allowed.contains(name)) {
            Ok(verified)
        } else {
            Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
