//! `tls_server_config`: certificates, versions, cipher suites, curves and client
//! authentication, built into a rustls `ServerConfig` (ring provider).
