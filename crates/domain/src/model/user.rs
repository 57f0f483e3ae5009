//! Users, roles and password hashes.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::ident::UserId;

/// A role, from least to most privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// An end user: own rows, PUBLIC shared tables.
    User,
    /// A backend service.
    Service,
    /// An administrator of schemas and users.
    Dba,
    /// The superuser.
    System,
}

impl Role {
    /// `user`, `service`, `dba` or `system`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Service => "service",
            Role::Dba => "dba",
            Role::System => "system",
        }
    }

    /// Parses a role name (any case).
    pub fn parse(raw: &str) -> DomainResult<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "user" => Ok(Role::User),
            "service" => Ok(Role::Service),
            "dba" => Ok(Role::Dba),
            "system" => Ok(Role::System),
            _ => Err(DomainError::InvalidDefinition(format!(
                "unknown role '{raw}': expected user, service, dba or system"
            ))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Id and login name.
    pub id: UserId,
    /// Role.
    pub role: Role,
    /// Contact address, if given.
    pub email: Option<String>,
    /// The Argon2id hash in PHC form; `None` until a password is set.
    pub password_hash: Option<String>,
    /// Creation time (microseconds since the epoch).
    pub created_at: i64,
    /// Last change (microseconds since the epoch).
    pub updated_at: i64,
    /// When the user was dropped, if it was.
    pub deleted_at: Option<i64>,
}

/// Hashes `password` with Argon2id and a random salt, giving the PHC string.
pub fn hash_password(password: &str) -> DomainResult<String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| DomainError::Password(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| DomainError::Password(e.to_string()))
}

/// Whether `password` matches the PHC `hash`.
pub fn verify_password(password: &str, hash: &str) -> DomainResult<bool> {
    let parsed = PasswordHash::new(hash).map_err(|e| DomainError::Password(e.to_string()))?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_is_argon2id_and_verifies() {
        let hash = hash_password("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("s3cret", &hash).unwrap());
        assert!(!verify_password("wrong", &hash).unwrap());
        assert_ne!(hash, hash_password("s3cret").unwrap(), "salts must differ");
    }

    #[test]
    fn roles_order_from_least_to_most() {
        assert!(Role::User < Role::Service && Role::Service < Role::Dba && Role::Dba < Role::System);
        assert_eq!(Role::parse("DBA").unwrap(), Role::Dba);
        assert!(Role::parse("admin").is_err());
    }
}
