//! Who may do what: the roles table of API.md.
//!
//! It is enforced twice, so that no path around it exists:
//! - [`authorize`] checks a whole statement against the catalog before it runs (every
//!   statement of a batch is checked before the first one runs, and each again when it
//!   runs);
//! - the DataFusion catalog of a statement ([`crate::providers::SessionCatalog`]) refuses a
//!   table the session's role may not read at the moment the planner resolves it, wherever
//!   the name appears: subqueries, joins, CTEs, UNION, INSERT ... SELECT, the WHERE of an
//!   UPDATE or DELETE, a column default.
//!
//! [`rules`] is the table itself, as small predicates both places share.

pub mod rules;
mod statement;

#[cfg(test)]
mod tests;

pub use rules::{SystemTableAccess, denied};
pub use statement::authorize;
