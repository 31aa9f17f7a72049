//! Thread tokens: proof that a client owns a thread. A token is the HMAC-SHA256 of the
//! thread id under the configured secret, base64url without padding; no state is kept,
//! so any ingress instance with the same secret can check it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::events::ThreadId;
use common::secrets::Secrets;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs thread tokens with the current secret and checks them against every secret of
/// `THREAD_TOKEN_SECRET` (rotation: the new one first, the old ones after it).
#[derive(Clone)]
pub struct TokenSigner {
    /// The current one first.
    secrets: Vec<Vec<u8>>,
}

impl TokenSigner {
    pub fn new(secrets: &Secrets) -> TokenSigner {
        TokenSigner {
            secrets: secrets.all().map(|s| s.as_bytes().to_vec()).collect(),
        }
    }

    fn mac(secret: &[u8], thread: &ThreadId) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(thread.as_str().as_bytes());
        mac
    }

    /// The token of a thread, under the current secret.
    pub fn sign(&self, thread: &ThreadId) -> String {
        URL_SAFE_NO_PAD.encode(Self::mac(&self.secrets[0], thread).finalize().into_bytes())
    }

    /// Whether `token` is the token of `thread` under any of the secrets (each compared in
    /// constant time, and every one tried, so the time taken does not tell which matched).
    pub fn verify(&self, thread: &ThreadId, token: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(token) {
            Ok(bytes) => self.secrets.iter().fold(false, |matched, secret| {
                Self::mac(secret, thread).verify_slice(&bytes).is_ok() | matched
            }),
            Err(_) => false,
        }
    }
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_for_its_thread_only() {
        let signer = TokenSigner::new(&"secret".into());
        let a = ThreadId::parse("a").unwrap();
        let b = ThreadId::parse("b").unwrap();
        let token = signer.sign(&a);
        assert!(signer.verify(&a, &token));
        assert!(!signer.verify(&b, &token));
        assert!(!signer.verify(&a, "not base64 !"));
        assert!(!TokenSigner::new(&"other".into()).verify(&a, &token));
    }

    #[test]
    fn after_a_rotation_old_tokens_verify_and_new_ones_are_signed_with_the_new_secret() {
        let thread = ThreadId::parse("a").unwrap();
        let old = TokenSigner::new(&"old".into()).sign(&thread);
        let rotated = TokenSigner::new(&Secrets::parse("new,old").unwrap());
        assert!(rotated.verify(&thread, &old));
        let new = rotated.sign(&thread);
        assert_ne!(new, old);
        assert_eq!(new, TokenSigner::new(&"new".into()).sign(&thread));
        // Once the old secret is dropped from the list, its tokens stop working.
        let retired = TokenSigner::new(&"new".into());
        assert!(retired.verify(&thread, &new));
        assert!(!retired.verify(&thread, &old));
    }
}
