//! Thread tokens: proof that a client owns a thread. A token is the HMAC-SHA256 of the
//! thread id under the configured secret, base64url without padding; no state is kept,
//! so any ingress instance with the same secret can check it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::events::ThreadId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks thread tokens with one secret.
#[derive(Clone)]
pub struct TokenSigner {
    secret: Vec<u8>,
}

impl TokenSigner {
    pub fn new(secret: &str) -> TokenSigner {
        TokenSigner {
            secret: secret.as_bytes().to_vec(),
        }
    }

    fn mac(&self, thread: &ThreadId) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(thread.as_str().as_bytes());
        mac
    }

    /// The token of a thread.
    pub fn sign(&self, thread: &ThreadId) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(thread).finalize().into_bytes())
    }

    /// Whether `token` is the token of `thread` (constant-time comparison).
    pub fn verify(&self, thread: &ThreadId, token: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(token) {
            Ok(bytes) => self.mac(thread).verify_slice(&bytes).is_ok(),
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
        let signer = TokenSigner::new("secret");
        let a = ThreadId::parse("a").unwrap();
        let b = ThreadId::parse("b").unwrap();
        let token = signer.sign(&a);
        assert!(signer.verify(&a, &token));
        assert!(!signer.verify(&b, &token));
        assert!(!signer.verify(&a, "not base64 !"));
        assert!(!TokenSigner::new("other").verify(&a, &token));
    }
}
