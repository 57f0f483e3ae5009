//! HS256 JSON Web Tokens: access tokens for requests, refresh tokens for new pairs.

use std::time::Duration;

use calamus_domain::model::Role;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error_code::{ApiError, ErrorCode};

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// Authenticates requests.
    Access,
    /// Buys a new token pair at `/v1/api/auth/refresh`.
    Refresh,
}

/// The claims of a Calamus token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The user's role when the token was issued (requests use the catalog's current role).
    pub role: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Access or refresh.
    pub token_type: TokenType,
}

/// A signed token and when it expires.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
}

/// Signs and checks tokens with the server's secret.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Keys for `secret`, issuing tokens that live `access_ttl` and `refresh_ttl`.
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    /// Issues a token of `token_type` for `user` with `role`, from `now` (seconds since the epoch).
    pub fn issue(&self, user: &str, role: Role, token_type: TokenType, now: i64) -> Result<IssuedToken, ApiError> {
        let ttl = match token_type {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh => self.refresh_ttl,
        };
        let expires_at = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        let claims = Claims {
            sub: user.to_owned(),
            role: role.as_str().to_owned(),
            exp: expires_at,
            iat: now,
            token_type,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::new(ErrorCode::InternalError, format!("cannot sign a token: {e}")))?;
        Ok(IssuedToken { token, expires_at })
    }

    /// Checks `token`'s signature, expiry and type, giving its claims.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, ApiError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                JwtErrorKind::ExpiredSignature => ApiError::new(ErrorCode::TokenExpired, "the token has expired"),
                _ => ApiError::new(ErrorCode::InvalidToken, "the token is not valid"),
            })?;
        if data.claims.token_type != expected {
            let message = match expected {
                TokenType::Access => "a refresh token cannot authenticate requests; use an access token",
                TokenType::Refresh => "an access token cannot refresh; use the refresh token",
            };
            return Err(ApiError::new(ErrorCode::InvalidToken, message));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &[u8]) -> TokenKeys {
        TokenKeys::new(secret, Duration::from_secs(60), Duration::from_secs(600))
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let keys = keys(b"secret-one");
        let issued = keys.issue("alice", Role::User, TokenType::Access, now()).unwrap();
        let claims = keys.verify(&issued.token, TokenType::Access).unwrap();
        assert_eq!((claims.sub.as_str(), claims.role.as_str()), ("alice", "user"));
        assert_eq!(claims.exp, issued.expires_at);
    }

    #[test]
    fn expired_tampered_foreign_and_wrong_type_tokens_are_refused() {
        let keys = keys(b"secret-one");
        let expired = keys
            .issue("alice", Role::User, TokenType::Access, now() - 3600)
            .unwrap();
        assert_eq!(
            keys.verify(&expired.token, TokenType::Access).unwrap_err().code,
            ErrorCode::TokenExpired
        );

        let good = keys.issue("alice", Role::User, TokenType::Access, now()).unwrap().token;
        let (head, rest) = good.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged_payload = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            format!(
                r#"{{"sub":"root","role":"system","exp":{},"iat":0,"token_type":"access"}}"#,
                now() + 600
            ),
        );
        let tampered = format!("{head}.{forged_payload}.{signature}");
        assert_eq!(
            keys.verify(&tampered, TokenType::Access).unwrap_err().code,
            ErrorCode::InvalidToken
        );

        let foreign = self::keys(b"another-secret")
            .issue("alice", Role::User, TokenType::Access, now())
            .unwrap();
        assert_eq!(
            keys.verify(&foreign.token, TokenType::Access).unwrap_err().code,
            ErrorCode::InvalidToken
        );

        let refresh = keys.issue("alice", Role::User, TokenType::Refresh, now()).unwrap();
        assert_eq!(
            keys.verify(&refresh.token, TokenType::Access).unwrap_err().code,
            ErrorCode::InvalidToken
        );
        assert!(keys.verify(&refresh.token, TokenType::Refresh).is_ok());
        assert_eq!(
            keys.verify("not.a.token", TokenType::Access).unwrap_err().code,
            ErrorCode::InvalidToken
        );
    }
}
