//! CREATE / ALTER / DROP USER. Passwords are stored as Argon2id hashes only.

use calamus_domain::ids::now_micros;
use calamus_domain::model::{Role, User, hash_password};
use calamus_domain::{DomainError, UserId};
use datafusion::sql::sqlparser::ast::Ident;

use crate::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;
use crate::statement::UserChange;

fn check_email(email: &str) -> QueryResult<()> {
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(QueryError::InvalidStatement(format!("invalid email address '{email}'")))
    }
}

/// Hashing is slow on purpose; keep it off the async runtime's threads.
async fn hash(password: String) -> QueryResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| QueryError::Domain(DomainError::Password(e.to_string())))?
        .map_err(Into::into)
}

/// `CREATE USER [IF NOT EXISTS] u WITH PASSWORD 'p' [ROLE r] [EMAIL 'e']`.
pub async fn create(
    engine: &QueryEngine,
    name: &Ident,
    if_not_exists: bool,
    password: Option<String>,
    role: Option<String>,
    email: Option<String>,
) -> QueryResult<StatementOutput> {
    let id = UserId::new(&name.value)?;
    if engine.catalog.snapshot().users.contains_key(&id) {
        if if_not_exists {
            return Ok(StatementOutput::affected(0, format!("User '{id}' already exists")));
        }
        return Err(DomainError::UserExists { user: id.to_string() }.into());
    }
    let role = role.as_deref().map(Role::parse).transpose()?.unwrap_or(Role::User);
    if let Some(email) = &email {
        check_email(email)?;
    }
    let password_hash = match password {
        Some(p) => Some(hash(p).await?),
        None => None,
    };
    let now = now_micros();
    let user = User {
        id: id.clone(),
        role,
        email,
        password_hash,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    match engine.catalog.put_user(user, false).await {
        Ok(()) => Ok(StatementOutput::affected(
            0,
            format!("User '{id}' created successfully"),
        )),
        Err(DomainError::UserExists { .. }) if if_not_exists => {
            Ok(StatementOutput::affected(0, format!("User '{id}' already exists")))
        }
        Err(e) => Err(e.into()),
    }
}

/// `ALTER USER u SET PASSWORD 'p' | SET ROLE r | SET EMAIL 'e'`.
pub async fn alter(engine: &QueryEngine, name: &Ident, change: UserChange) -> QueryResult<StatementOutput> {
    let id = UserId::new(&name.value)?;
    let mut user = engine
        .catalog
        .snapshot()
        .users
        .get(&id)
        .cloned()
        .ok_or_else(|| DomainError::UserNotFound { user: id.to_string() })?;
    match change {
        UserChange::Password(p) => user.password_hash = Some(hash(p).await?),
        UserChange::Role(r) => {
            let role = Role::parse(&r)?;
            if id == UserId::root() && role != Role::System {
                return Err(QueryError::InvalidStatement(
                    "the role of user 'root' cannot change".into(),
                ));
            }
            user.role = role;
        }
        UserChange::Email(e) => {
            check_email(&e)?;
            user.email = Some(e);
        }
    }
    user.updated_at = now_micros();
    engine.catalog.put_user(user, true).await?;
    Ok(StatementOutput::affected(
        0,
        format!("User '{id}' altered successfully"),
    ))
}

/// `DROP USER [IF EXISTS] u`.
pub async fn drop(engine: &QueryEngine, name: &Ident, if_exists: bool) -> QueryResult<StatementOutput> {
    let id = UserId::new(&name.value)?;
    if id == UserId::root() {
        return Err(QueryError::InvalidStatement("user 'root' cannot be dropped".into()));
    }
    match engine.catalog.drop_user(&id).await {
        Ok(()) => Ok(StatementOutput::affected(
            0,
            format!("User '{id}' dropped successfully"),
        )),
        Err(DomainError::UserNotFound { .. }) if if_exists => {
            Ok(StatementOutput::affected(0, format!("User '{id}' does not exist")))
        }
        Err(e) => Err(e.into()),
    }
}
