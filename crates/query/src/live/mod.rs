//! Live queries: subscriptions that receive a snapshot and then every change that matches.
//!
//! - [`registry`]: who watches which partition of which table; the row store's change
//!   listener, so a write reaches only the subscriptions of its table and partition.
//! - [`query`]: a subscription's SQL compiled once into DataFusion physical expressions.
//! - [`subscription`]: one subscription's snapshot, its batches and its changes.
//!
//! The transport (WebSocket, JSON) is the HTTP crate's; this module speaks Arrow batches.

pub mod query;
pub mod registry;
pub mod subscription;

pub use query::LiveQuery;
pub use registry::{LiveConnection, LiveEntry, LiveEvent, LiveQueries, LiveQueryRow};
pub use subscription::{
    BatchControl, BatchStatus, ChangeKind, DEFAULT_BATCH_SIZE, LiveMessage, Subscription, SubscriptionOptions,
};

use crate::authorization::denied;
use crate::authorization::rules::may_operate;
use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;
use crate::session::Session;

/// `KILL LIVE QUERY '<live_id>'`: a user ends its own subscriptions, service and up any.
/// A user is refused alike for another user's subscription and for none, so an id tells
/// it nothing.
pub(crate) fn kill(engine: &QueryEngine, session: &Session, live_id: &str) -> QueryResult<StatementOutput> {
    let may_kill_any = may_operate(session.role);
    let killable = engine
        .live
        .get(live_id)
        .is_some_and(|entry| may_kill_any || entry.user == session.user);
    if !killable || !engine.live.kill(live_id) {
        return Err(if may_kill_any {
            QueryError::NotFound(format!("live query '{live_id}' does not exist"))
        } else {
            denied(session.role, || {
                format!("no live query '{live_id}' of yours is running")
            })
        });
    }
    Ok(StatementOutput::affected(1, format!("Live query {live_id} killed")))
}
