//! `/v1/api/auth/login`, `/v1/api/auth/refresh` and `/v1/api/auth/me`.

use crate::json_body::from_object;
use std::net::IpAddr;

use calamus_domain::model::User;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Authenticator, Credentials, TokenType, credentials};
use crate::error_code::{ApiError, ErrorCode};

/// The login body; `username` is accepted for `user`.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginRequest {
    #[serde(alias = "username")]
    user: String,
    #[serde(default)]
    password: String,
}

/// `POST /v1/api/auth/login`: checks the password, answers a token pair.
pub async fn login(auth: &Authenticator, body: &[u8], peer: IpAddr) -> Result<Value, ApiError> {
    let request: LoginRequest = from_object(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("the body must be a JSON object {{\"user\": \"...\", \"password\": \"...\"}}: {e}"),
        )
    })?;
    let user = auth.check_password(&request.user, &request.password, peer).await?;
    token_pair(auth, &user)
}

/// `POST /v1/api/auth/refresh`: a refresh token buys a new pair.
pub fn refresh(auth: &Authenticator, authorization: Option<&str>) -> Result<Value, ApiError> {
    let token = bearer(authorization)?;
    let claims = auth.tokens.verify(token, TokenType::Refresh)?;
    let user = auth.user_of_token(&claims)?;
    token_pair(auth, &user)
}

/// `GET /v1/api/auth/me`: the caller of an access token.
pub fn me(auth: &Authenticator, authorization: Option<&str>) -> Result<Value, ApiError> {
    let token = bearer(authorization)?;
    let claims = auth.tokens.verify(token, TokenType::Access)?;
    let user = auth.user_of_token(&claims)?;
    Ok(user_json(&user))
}

/// The token of a `Bearer` header; these endpoints take no other credentials.
fn bearer(authorization: Option<&str>) -> Result<&str, ApiError> {
    match credentials(authorization)? {
        Credentials::Bearer(token) => Ok(token),
        Credentials::Basic { .. } => Err(ApiError::new(
            ErrorCode::InvalidToken,
            "this endpoint takes Authorization: Bearer <token>, not Basic credentials",
        )),
    }
}

fn token_pair(auth: &Authenticator, user: &User) -> Result<Value, ApiError> {
    let now = Utc::now().timestamp();
    let access = auth.tokens.issue(user.id.as_str(), user.role, TokenType::Access, now)?;
    let refresh = auth
        .tokens
        .issue(user.id.as_str(), user.role, TokenType::Refresh, now)?;
    Ok(json!({
        "user": user_json(user),
        "access_token": access.token,
        "expires_at": rfc3339_seconds(access.expires_at),
        "refresh_token": refresh.token,
        "refresh_expires_at": rfc3339_seconds(refresh.expires_at),
    }))
}

/// The protocol's user object.
fn user_json(user: &User) -> Value {
    json!({
        "id": user.id.as_str(),
        "role": user.role.as_str(),
        "email": user.email,
        "created_at": rfc3339_micros(user.created_at),
        "updated_at": rfc3339_micros(user.updated_at),
    })
}

fn rfc3339_seconds(seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn rfc3339_micros(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}
