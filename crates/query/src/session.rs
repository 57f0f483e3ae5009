//! Sessions: who runs a statement, with which role, in which namespace.

use calamus_domain::model::Role;
use calamus_domain::{NamespaceId, UserId};

/// The caller of a statement. Every statement runs for exactly one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user whose USER and STREAM partitions the statement reads and writes.
    pub user: UserId,
    /// The user's role.
    pub role: Role,
    /// Where unqualified table names resolve (`USE ns` changes it).
    pub namespace: NamespaceId,
}

impl Session {
    /// A session for `user` with `role`, in the `default` namespace.
    pub fn new(user: UserId, role: Role) -> Self {
        Self {
            user,
            role,
            namespace: NamespaceId::default_namespace(),
        }
    }

    /// The root session (role `system`).
    pub fn root() -> Self {
        Self::new(UserId::root(), Role::System)
    }
}
