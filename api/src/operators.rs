//! Operators and their sessions, in PostgreSQL outside the read models (a rebuild never
//! touches them): argon2id password hashes, opaque session tokens stored as SHA-256 hashes
//! with an expiry, revoked at sign-out and (all of an operator's) when the operator is
//! disabled. The REST routes are in [`crate::auth`]; `smart-support operators` uses
//! these functions too.

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (argon2 takes any length; this bounds the work per sign-in).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Longest display name.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest email.
pub const MAX_EMAIL_CHARS: usize = 254;

/// What an operator may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Conversations, replays, analytics and the desk.
    Agent,
    /// Everything, including dead letters, OpenAPI imports and operators.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "agent" => Some(Role::Agent),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An operator as the API shows them (never the password hash).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Operator {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    /// When the operator was disabled (absent: active).
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub disabled_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct Row {
    operator_id: Uuid,
    name: String,
    email: String,
    role: String,
    disabled_at: Option<OffsetDateTime>,
}

impl From<Row> for Operator {
    fn from(row: Row) -> Operator {
        Operator {
            id: row.operator_id,
            name: row.name,
            email: row.email,
            role: Role::parse(&row.role).unwrap_or(Role::Agent),
            disabled_at: row.disabled_at,
        }
    }
}

/// Why a new operator is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NewOperatorError {
    #[error("email must look like name@domain and be at most {MAX_EMAIL_CHARS} characters")]
    InvalidEmail,
    #[error("name must not be empty and at most {MAX_NAME_CHARS} characters")]
    InvalidName,
    #[error("password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")]
    InvalidPassword,
    #[error("an operator with this email exists")]
    EmailTaken,
}

/// The email as stored and compared: lower-cased. Valid is exactly what the document's
/// pattern says (`NewOperator::email`): a non-empty name without `@`, an `@`, then a domain
/// with a dot; no control character, white space or U+FEFF anywhere; at most
/// [`MAX_EMAIL_CHARS`] characters as sent. Nothing is trimmed: what the document refuses is
/// refused.
pub fn normal_email(raw: &str) -> Result<String, NewOperatorError> {
    let clean = |part: &str| {
        !part
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\u{feff}')
    };
    let valid = raw.chars().count() <= MAX_EMAIL_CHARS
        && raw.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && clean(local) && domain.contains('.') && clean(domain)
        });
    if valid {
        Ok(raw.to_lowercase())
    } else {
        Err(NewOperatorError::InvalidEmail)
    }
}

/// The display name as stored: trimmed. Valid is what the document says (`NewOperator::name`):
/// at most [`MAX_NAME_CHARS`] characters as sent (as `maxLength` counts), not only white
/// space, no NUL.
pub fn display_name(raw: &str) -> Result<&str, NewOperatorError> {
    let name = raw.trim();
    if name.is_empty() || raw.chars().count() > MAX_NAME_CHARS || raw.contains('\0') {
        return Err(NewOperatorError::InvalidName);
    }
    Ok(name)
}

fn check_password(password: &str) -> Result<(), NewOperatorError> {
    let n = password.chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        Ok(())
    } else {
        Err(NewOperatorError::InvalidPassword)
    }
}

/// An argon2id hash of `password` with a fresh salt (PHC string).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| anyhow::anyhow!("cannot hash the password: {err}"))
}

/// Whether `password` matches the stored hash.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A hash of a password nobody has: verified against when the email is unknown, so an
/// unknown email costs the same time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("not a password of anyone").expect("argon2 hashes"))
}

/// Adds an operator.
pub async fn add(
    pool: &PgPool,
    email: &str,
    name: &str,
    role: Role,
    password: &str,
) -> Result<Operator, anyhow::Error> {
    let email = normal_email(email)?;
    let name = display_name(name)?;
    check_password(password)?;
    let hash = hash_password(password)?;
    let row: Option<Row> = sqlx::query_as(
        "insert into public.operator (operator_id, email, name, role, password_hash)
         values ($1, $2, $3, $4, $5)
         on conflict (email) do nothing
         returning operator_id, name, email, role, disabled_at",
    )
    .bind(Uuid::new_v4())
    .bind(&email)
    .bind(name)
    .bind(role.as_str())
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    row.map(Operator::from)
        .ok_or_else(|| NewOperatorError::EmailTaken.into())
}

/// Every operator, by email.
pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<Operator>> {
    let rows: Vec<Row> = sqlx::query_as(
        "select operator_id, name, email, role, disabled_at from public.operator order by email",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Operator::from).collect())
}

/// One operator, by id.
pub async fn find(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Operator>> {
    let row: Option<Row> = sqlx::query_as(
        "select operator_id, name, email, role, disabled_at from public.operator
         where operator_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Operator::from))
}

/// One operator, by email.
pub async fn find_by_email(pool: &PgPool, email: &str) -> sqlx::Result<Option<Operator>> {
    let row: Option<Row> = sqlx::query_as(
        "select operator_id, name, email, role, disabled_at from public.operator
         where email = $1",
    )
    .bind(email.trim().to_lowercase())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Operator::from))
}

/// Disables an operator and ends every session of theirs, in one transaction; `None` when
/// there is no such operator.
pub async fn disable(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Operator>> {
    let mut tx = pool.begin().await?;
    let row: Option<Row> = sqlx::query_as(
        "update public.operator set disabled_at = coalesce(disabled_at, now())
         where operator_id = $1
         returning operator_id, name, email, role, disabled_at",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(
        "update public.operator_session set revoked_at = now()
         where operator_id = $1 and revoked_at is null",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.map(Operator::from))
}

/// Checks a sign-in: the operator when the email is known, the operator is active and the
/// password matches. An unknown email is checked against a decoy hash, so it takes as
/// long as a wrong password.
pub async fn check_sign_in(
    pool: &PgPool,
    email: &str,
    password: &str,
) -> sqlx::Result<Option<Operator>> {
    let email = email.trim().to_lowercase();
    // PostgreSQL text cannot hold NUL, so no operator's email has one: such an email is
    // unknown without asking (the query would fail), and still checked against the decoy.
    let row: Option<(Uuid, String, String, String, Option<OffsetDateTime>, String)> =
        if email.contains('\0') {
            None
        } else {
            sqlx::query_as(
                "select operator_id, name, email, role, disabled_at, password_hash
                 from public.operator where email = $1",
            )
            .bind(email)
            .fetch_optional(pool)
            .await?
        };
    let password = password.to_owned();
    let hash = row
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |r| r.5.clone());
    // argon2 takes tens of milliseconds of CPU: off the async workers.
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    Ok(row.filter(|r| matches && r.4.is_none()).map(|r| {
        Operator::from(Row {
            operator_id: r.0,
            name: r.1,
            email: r.2,
            role: r.3,
            disabled_at: r.4,
        })
    }))
}

/// A new session token: 32 random bytes, base64url. Only its hash is stored.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Starts a session for `operator`; returns its token.
pub async fn start_session(
    pool: &PgPool,
    operator: Uuid,
    lifetime: std::time::Duration,
) -> sqlx::Result<String> {
    let token = new_token();
    let expires = OffsetDateTime::now_utc() + lifetime;
    sqlx::query(
        "insert into public.operator_session (token_hash, operator_id, expires_at)
         values ($1, $2, $3)",
    )
    .bind(token_hash(&token))
    .bind(operator)
    .bind(expires)
    .execute(pool)
    .await?;
    Ok(token)
}

/// The operator a token signs in, when the session is live (not expired, not revoked) and
/// the operator is active.
pub async fn session_operator(pool: &PgPool, token: &str) -> sqlx::Result<Option<Operator>> {
    let row: Option<Row> = sqlx::query_as(
        "select o.operator_id, o.name, o.email, o.role, o.disabled_at
         from public.operator_session s join public.operator o using (operator_id)
         where s.token_hash = $1 and s.revoked_at is null and s.expires_at > now()
           and o.disabled_at is null",
    )
    .bind(token_hash(token))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Operator::from))
}

/// Ends a session at once.
pub async fn end_session(pool: &PgPool, token: &str) -> sqlx::Result<()> {
    sqlx::query(
        "update public.operator_session set revoked_at = now()
         where token_hash = $1 and revoked_at is null",
    )
    .bind(token_hash(token))
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterz", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
    }

    #[test]
    fn emails_are_lower_cased_and_checked_as_the_document_says() {
        assert_eq!(
            normal_email("Anna@Example.COM").unwrap(),
            "anna@example.com"
        );
        // The document's pattern allows an `@` in the domain and any other character.
        assert_eq!(normal_email("a@b@c.d").unwrap(), "a@b@c.d");
        assert_eq!(normal_email("ä@ö.ü").unwrap(), "ä@ö.ü");
        // At most 254 characters as sent, even when lower-casing makes the text longer.
        let long = format!("{}@b.c", "İ".repeat(250));
        assert_eq!(long.chars().count(), 254);
        assert!(normal_email(&long).is_ok());
        for bad in [
            "",
            "anna",
            "@example.com",
            "anna@localhost",
            "an na@example.com",
            " anna@example.com",
            "anna@example.com\u{a0}",
            "anna@exa\u{1c}mple.com",
            "\u{feff}anna@example.com",
        ] {
            assert_eq!(
                normal_email(bad),
                Err(NewOperatorError::InvalidEmail),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_short_or_long_password_is_refused() {
        assert_eq!(
            check_password("short"),
            Err(NewOperatorError::InvalidPassword)
        );
        assert_eq!(
            check_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)),
            Err(NewOperatorError::InvalidPassword)
        );
        assert_eq!(check_password("twelve chars"), Ok(()));
    }

    #[test]
    fn tokens_are_unguessable_and_only_their_hash_is_kept() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), a.as_bytes());
    }
}
