//! Who is calling: Bearer JWTs and Basic credentials checked against the catalog's users.
//!
//! - Passwords are Argon2id hashes in the catalog. Checking one costs tens of milliseconds
//!   by design, so a successful check is remembered as a keyed BLAKE2 digest of the
//!   password next to the hash it matched; the entry is void as soon as the user's hash
//!   changes. A Basic-authenticated request therefore pays Argon2 once, not every time.
//! - `root` without a password may log in with an empty password, from loopback only.
//! - A token names a user; the request runs with the user's role as the catalog has it
//!   now, and a dropped user's tokens stop working at once.

pub mod throttle;
pub mod tokens;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use blake2::Blake2bMac512;
use blake2::digest::{FixedOutput, KeyInit, Update};
use calamus_domain::UserId;
use calamus_domain::model::{User, hash_password, verify_password};
use calamus_query::QueryEngine;
use parking_lot::Mutex;

use crate::error_code::{ApiError, ErrorCode};
pub use throttle::LoginThrottle;
pub use tokens::{Claims, IssuedToken, TokenKeys, TokenType};

/// The message of every failed password check: it never tells whether the user exists.
const INVALID_CREDENTIALS: &str = "invalid user name or password";

/// A password that matched a hash, remembered by digest.
#[derive(Debug, Clone)]
struct VerifiedPassword {
    hash: String,
    digest: [u8; 64],
}

/// Checks credentials and tokens.
pub struct Authenticator {
    engine: Arc<QueryEngine>,
    /// Token signing and checking.
    pub tokens: TokenKeys,
    /// Failed-login slowing.
    pub throttle: LoginThrottle,
    verified: Mutex<HashMap<UserId, VerifiedPassword>>,
    digest_key: [u8; 32],
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator over the engine's catalog.
    pub fn new(engine: Arc<QueryEngine>, tokens: TokenKeys, throttle: LoginThrottle) -> Self {
        Self {
            engine,
            tokens,
            throttle,
            verified: Mutex::new(HashMap::new()),
            digest_key: rand::random(),
        }
    }

    /// The caller of a request from `peer`, by its `Authorization` header.
    pub async fn authenticate(&self, authorization: Option<&str>, peer: IpAddr) -> Result<User, ApiError> {
        match credentials(authorization)? {
            Credentials::Bearer(token) => {
                let claims = self.tokens.verify(token, TokenType::Access)?;
                self.user_of_token(&claims)
            }
            Credentials::Basic { user, password } => self.check_password(&user, &password, peer).await,
        }
    }

    /// The current catalog record of a token's user.
    pub fn user_of_token(&self, claims: &Claims) -> Result<User, ApiError> {
        let id =
            UserId::new(&claims.sub).map_err(|_| ApiError::new(ErrorCode::InvalidToken, "the token is not valid"))?;
        self.engine
            .catalog()
            .snapshot()
            .users
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidToken, "the token's user no longer exists"))
    }

    /// Checks `password` for `user` calling from `peer`, slowed after repeated failures.
    pub async fn check_password(&self, user: &str, password: &str, peer: IpAddr) -> Result<User, ApiError> {
        let delay = self.throttle.delay(user, peer);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match self.verify(user, password, peer).await {
            Ok(record) => {
                self.throttle.record_success(user);
                Ok(record)
            }
            Err(error) => {
                if error.code == ErrorCode::InvalidCredentials {
                    self.throttle.record_failure(user, peer);
                }
                Err(error)
            }
        }
    }

    async fn verify(&self, user: &str, password: &str, peer: IpAddr) -> Result<User, ApiError> {
        let record = UserId::new(user)
            .ok()
            .and_then(|id| self.engine.catalog().snapshot().users.get(&id).cloned());
        let Some(record) = record else {
            // Spend the same time as a real check, so timing does not tell who exists.
            let dummy = dummy_hash().to_owned();
            let password = password.to_owned();
            let _ = tokio::task::spawn_blocking(move || verify_password(&password, &dummy)).await;
            return Err(ApiError::new(ErrorCode::InvalidCredentials, INVALID_CREDENTIALS));
        };
        let Some(hash) = record.password_hash.clone() else {
            return if record.id == UserId::root() && password.is_empty() && peer.is_loopback() {
                Ok(record)
            } else if record.id == UserId::root() {
                Err(ApiError::new(
                    ErrorCode::InvalidCredentials,
                    "root has no password yet: log in from this machine with an empty password, \
                     or set one (CALAMUS_ROOT_PASSWORD, or ALTER USER root SET PASSWORD)",
                ))
            } else {
                Err(ApiError::new(ErrorCode::InvalidCredentials, INVALID_CREDENTIALS))
            };
        };
        let digest = self.digest(password);
        if let Some(known) = self.verified.lock().get(&record.id)
            && known.hash == hash
            && known.digest == digest
        {
            return Ok(record);
        }
        let candidate = password.to_owned();
        let checked_hash = hash.clone();
        let matches = tokio::task::spawn_blocking(move || verify_password(&candidate, &checked_hash))
            .await
            .map_err(|e| ApiError::new(ErrorCode::InternalError, format!("password check failed: {e}")))?
            .map_err(|e| ApiError::new(ErrorCode::InternalError, format!("password check failed: {e}")))?;
        if !matches {
            return Err(ApiError::new(ErrorCode::InvalidCredentials, INVALID_CREDENTIALS));
        }
        self.verified
            .lock()
            .insert(record.id.clone(), VerifiedPassword { hash, digest });
        Ok(record)
    }

    fn digest(&self, password: &str) -> [u8; 64] {
        let mut mac = <Blake2bMac512 as KeyInit>::new_from_slice(&self.digest_key).expect("a 32-byte key fits BLAKE2b");
        mac.update(password.as_bytes());
        mac.finalize_fixed().into()
    }
}

/// A hash of no one's password (random), for checks of users that do not exist.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let password: String = rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect();
        hash_password(&password).unwrap_or_default()
    })
}

/// What an `Authorization` header carries.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials<'h> {
    /// `Bearer <token>`.
    Bearer(&'h str),
    /// `Basic base64(user:password)`.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

/// Reads an `Authorization` header (`None` when the request has none).
pub fn credentials(authorization: Option<&str>) -> Result<Credentials<'_>, ApiError> {
    let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
        return Err(ApiError::new(
            ErrorCode::MissingAuthorization,
            "this endpoint needs an Authorization header: Bearer <token> or Basic <credentials>",
        ));
    };
    let (scheme, value) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Credentials::Bearer(value.trim()))
    } else if scheme.eq_ignore_ascii_case("basic") {
        let (user, password) = decode_basic(value.trim())?;
        Ok(Credentials::Basic { user, password })
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidToken,
            format!("unknown authorization scheme '{scheme}': use Bearer <token> or Basic <credentials>"),
        ))
    }
}

/// `user:password` from a Basic credential.
fn decode_basic(value: &str) -> Result<(String, String), ApiError> {
    let malformed = || ApiError::new(ErrorCode::InvalidCredentials, "malformed Basic credentials");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| malformed())?;
    let text = String::from_utf8(bytes).map_err(|_| malformed())?;
    let (user, password) = text.split_once(':').ok_or_else(malformed)?;
    Ok((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode_and_malformed_ones_are_refused() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        assert_eq!(
            decode_basic(&encoded).unwrap(),
            ("alice".to_owned(), "pa:ss".to_owned())
        );
        assert!(decode_basic("%%%").is_err());
        let no_colon = base64::engine::general_purpose::STANDARD.encode("alice");
        assert!(decode_basic(&no_colon).is_err());
    }
}
