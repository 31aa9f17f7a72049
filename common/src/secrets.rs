//! A secret setting that can be rotated: a list separated by commas (`new,old`). The first is
//! the current one (it signs); every one in the list is accepted. To rotate, put the new secret
//! in front, restart every instance, and drop the old one once nothing issued under it is in
//! use any more (docs/operations.md, "Rotating secrets").

use std::fmt;

/// One or more secrets, the current one first. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets(Vec<String>);

impl Secrets {
    /// Reads `new,old,…`: spaces around each are ignored; an empty one (`a,,b`, a trailing
    /// comma, or nothing at all) is refused, since it would be a secret anybody knows.
    pub fn parse(raw: &str) -> Result<Secrets, String> {
        let secrets: Vec<String> = raw.split(',').map(|s| s.trim().to_owned()).collect();
        if secrets.iter().any(String::is_empty) {
            return Err(
                "an empty secret: separate secrets by single commas (new,old), none of them empty"
                    .to_owned(),
            );
        }
        Ok(Secrets(secrets))
    }

    /// The one that signs.
    pub fn current(&self) -> &str {
        &self.0[0]
    }

    /// Every secret, the current one first.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// One secret, as a test or an embedding program gives it (not split at commas).
impl From<&str> for Secrets {
    fn from(secret: &str) -> Secrets {
        Secrets(vec![secret.to_owned()])
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} hidden)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_the_list_is_current_and_every_one_is_kept() {
        let secrets = Secrets::parse(" new , old,older").unwrap();
        assert_eq!(secrets.current(), "new");
        assert_eq!(secrets.all().collect::<Vec<_>>(), ["new", "old", "older"]);
        assert_eq!(Secrets::parse("only").unwrap().current(), "only");
    }

    #[test]
    fn an_empty_secret_in_the_list_is_refused() {
        for raw in ["", " ", "new,", ",old", "new,,old"] {
            assert!(Secrets::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", Secrets::parse("s3cr3t,0ld").unwrap());
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("0ld"),
            "{shown}"
        );
    }
}
