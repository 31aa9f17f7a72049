//! TLS for the workers' HTTP clients (tools and the model server): rustls with the `ring`
//! provider, which async-nats already builds, instead of aws-lc-rs and its C build.

/// Makes `ring` the process's default rustls crypto provider, once; every reqwest client
/// is built after this. A provider installed earlier (by an embedding program) is kept.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
