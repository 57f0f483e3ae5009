//! The registry of live subscriptions: who watches which partition of which table.
//!
//! Writers reach it through [`ChangeListener`]: one read lock and one hash lookup by table
//! and partition, so a write costs in proportion to the subscriptions that can match it.
//! A matching subscription's connection gets the write as one shared [`ChangeBatch`] on its
//! bounded queue with `try_send`: the writer never waits. A connection whose queue is full
//! is marked overflowed and closed by its own task.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use calamus_domain::model::Role;
use calamus_domain::{ChangeBatch, ChangeListener, Partition, TableId, UserId};
use parking_lot::RwLock;

use calamus_domain::ids::now_micros;
use tokio::sync::{Notify, mpsc};

/// What a connection's task receives.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// A committed write to a partition one of its subscriptions watches.
    Changes {
        /// The subscription.
        live_id: Arc<str>,
        /// The write.
        batch: Arc<ChangeBatch>,
    },
    /// The subscription was ended by `KILL LIVE QUERY`.
    Killed {
        /// The subscription.
        live_id: Arc<str>,
    },
}

/// The sending half of one connection's queue.
#[derive(Debug)]
struct ConnectionQueue {
    sender: mpsc::Sender<LiveEvent>,
    overflowed: AtomicBool,
    overflow: Notify,
}

impl ConnectionQueue {
    fn send(&self, event: LiveEvent) {
        if self.sender.try_send(event).is_err() && !self.overflowed.swap(true, Ordering::AcqRel) {
            self.overflow.notify_one();
        }
    }
}

/// One subscription as the registry and `system.live_queries` see it.
#[derive(Debug)]
pub struct LiveEntry {
    /// `<connection_id>-<subscription_id>`.
    pub live_id: Arc<str>,
    /// The connection.
    pub connection_id: Arc<str>,
    /// The client's name for it.
    pub subscription_id: String,
    /// The table.
    pub table: TableId,
    /// The table's uid.
    pub table_uid: u64,
    /// The partition read: the subscriber's, or the SHARED one.
    pub partition: Partition,
    /// The subscriber.
    pub user: UserId,
    /// The SQL.
    pub query: String,
    /// The options, as JSON text.
    pub options: String,
    /// When it was made (microseconds since the epoch).
    pub created_at: i64,
    last_update: AtomicI64,
    changes: AtomicU64,
    queue: Arc<ConnectionQueue>,
}

impl LiveEntry {
    /// Counts `n` changes delivered now.
    pub fn delivered(&self, n: u64) {
        self.changes.fetch_add(n, Ordering::Relaxed);
        self.last_update.store(now_micros(), Ordering::Relaxed);
    }
}

/// A row of `system.live_queries`.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveQueryRow {
    /// `live_id`.
    pub live_id: String,
    /// `connection_id`.
    pub connection_id: String,
    /// `subscription_id`.
    pub subscription_id: String,
    /// `namespace_id`.
    pub namespace_id: String,
    /// `table_name`.
    pub table_name: String,
    /// `user_id`.
    pub user_id: String,
    /// `query`.
    pub query: String,
    /// `options`.
    pub options: String,
    /// `created_at` (microseconds).
    pub created_at: i64,
    /// `last_update` (microseconds).
    pub last_update: i64,
    /// `changes`.
    pub changes: i64,
}

/// Subscriptions of one table, by partition.
#[derive(Debug, Default)]
struct TableWatchers {
    shared: Vec<Arc<LiveEntry>>,
    users: HashMap<String, Vec<Arc<LiveEntry>>>,
}

impl TableWatchers {
    fn of(&self, partition: &Partition) -> Option<&Vec<Arc<LiveEntry>>> {
        match partition {
            Partition::Shared => Some(&self.shared).filter(|v| !v.is_empty()),
            Partition::User(user) => self.users.get(user.as_str()),
        }
    }

    fn of_mut(&mut self, partition: &Partition) -> &mut Vec<Arc<LiveEntry>> {
        match partition {
            Partition::Shared => &mut self.shared,
            Partition::User(user) => self.users.entry(user.as_str().to_owned()).or_default(),
        }
    }

    fn remove(&mut self, entry: &LiveEntry) {
        let list = self.of_mut(&entry.partition);
        list.retain(|e| e.live_id != entry.live_id);
        if list.is_empty()
            && let Partition::User(user) = &entry.partition
        {
            self.users.remove(user.as_str());
        }
    }

    fn is_empty(&self) -> bool {
        self.shared.is_empty() && self.users.is_empty()
    }
}

#[derive(Debug, Default)]
struct Index {
    by_table: HashMap<u64, TableWatchers>,
    by_live_id: HashMap<Arc<str>, Arc<LiveEntry>>,
}

/// Every live subscription of the server.
#[derive(Debug, Default)]
pub struct LiveQueries {
    index: RwLock<Index>,
    connections: AtomicU64,
}

/// Why a subscription could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// The connection already has a subscription with this id.
    DuplicateId,
}

/// What [`LiveQueries::register`] needs to know of a subscription.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// The client's name for it.
    pub subscription_id: String,
    /// The table.
    pub table: TableId,
    /// The table's uid.
    pub table_uid: u64,
    /// The partition it reads.
    pub partition: Partition,
    /// The SQL.
    pub query: String,
    /// The options, as JSON text.
    pub options: String,
}

impl LiveQueries {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new connection for `user` with a queue of `capacity` writes, and the queue's
    /// receiving end.
    pub fn connect(
        self: &Arc<Self>,
        user: UserId,
        role: Role,
        capacity: usize,
    ) -> (LiveConnection, mpsc::Receiver<LiveEvent>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let number = self.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let connection = LiveConnection {
            id: Arc::from(format!("c{number}")),
            user,
            role,
            registry: Arc::clone(self),
            queue: Arc::new(ConnectionQueue {
                sender,
                overflowed: AtomicBool::new(false),
                overflow: Notify::new(),
            }),
            mine: parking_lot::Mutex::new(Vec::new()),
        };
        (connection, receiver)
    }

    /// Subscriptions in `system.live_queries` order (by creation).
    pub fn rows(&self) -> Vec<LiveQueryRow> {
        let index = self.index.read();
        let mut rows: Vec<LiveQueryRow> = index
            .by_live_id
            .values()
            .map(|e| LiveQueryRow {
                live_id: e.live_id.to_string(),
                connection_id: e.connection_id.to_string(),
                subscription_id: e.subscription_id.clone(),
                namespace_id: e.table.namespace.to_string(),
                table_name: e.table.table.to_string(),
                user_id: e.user.to_string(),
                query: e.query.clone(),
                options: e.options.clone(),
                created_at: e.created_at,
                last_update: e.last_update.load(Ordering::Relaxed),
                changes: e.changes.load(Ordering::Relaxed) as i64,
            })
            .collect();
        rows.sort_by(|a, b| (a.created_at, &a.live_id).cmp(&(b.created_at, &b.live_id)));
        rows
    }

    /// The subscription `live_id`, if it lives.
    pub fn get(&self, live_id: &str) -> Option<Arc<LiveEntry>> {
        self.index.read().by_live_id.get(live_id).cloned()
    }

    /// Ends subscription `live_id` and tells its connection; `false` if there is none.
    pub fn kill(&self, live_id: &str) -> bool {
        let Some(entry) = self.unregister(live_id) else {
            return false;
        };
        entry.queue.send(LiveEvent::Killed {
            live_id: Arc::clone(&entry.live_id),
        });
        true
    }

    /// How many subscriptions live.
    pub fn len(&self) -> usize {
        self.index.read().by_live_id.len()
    }

    /// Whether no subscription lives.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn unregister(&self, live_id: &str) -> Option<Arc<LiveEntry>> {
        let mut index = self.index.write();
        let entry = index.by_live_id.remove(live_id)?;
        if let Some(watchers) = index.by_table.get_mut(&entry.table_uid) {
            watchers.remove(&entry);
            if watchers.is_empty() {
                index.by_table.remove(&entry.table_uid);
            }
        }
        Some(entry)
    }
}

impl ChangeListener for LiveQueries {
    fn watches(&self, table_uid: u64, partition: &Partition) -> bool {
        self.index
            .read()
            .by_table
            .get(&table_uid)
            .is_some_and(|w| w.of(partition).is_some())
    }

    fn committed(&self, batch: ChangeBatch) {
        let index = self.index.read();
        let Some(entries) = index
            .by_table
            .get(&batch.table_uid)
            .and_then(|w| w.of(&batch.partition))
        else {
            return;
        };
        let batch = Arc::new(batch);
        for entry in entries {
            entry.queue.send(LiveEvent::Changes {
                live_id: Arc::clone(&entry.live_id),
                batch: Arc::clone(&batch),
            });
        }
    }
}

/// One WebSocket connection's side of the registry; dropping it ends its subscriptions.
#[derive(Debug)]
pub struct LiveConnection {
    id: Arc<str>,
    user: UserId,
    role: Role,
    registry: Arc<LiveQueries>,
    queue: Arc<ConnectionQueue>,
    /// The live ids of this connection's subscriptions.
    mine: parking_lot::Mutex<Vec<Arc<str>>>,
}

impl LiveConnection {
    /// The connection's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The authenticated user.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The user's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The live id a subscription of this connection gets.
    pub fn live_id(&self, subscription_id: &str) -> String {
        format!("{}-{subscription_id}", self.id)
    }

    /// Registers a subscription: from now on, every committed write to its partition
    /// reaches this connection's queue.
    pub fn register(&self, new: NewSubscription) -> Result<Arc<LiveEntry>, RegisterError> {
        let live_id: Arc<str> = Arc::from(self.live_id(&new.subscription_id));
        let now = now_micros();
        let entry = Arc::new(LiveEntry {
            live_id: Arc::clone(&live_id),
            connection_id: Arc::clone(&self.id),
            subscription_id: new.subscription_id,
            table: new.table,
            table_uid: new.table_uid,
            partition: new.partition,
            user: self.user.clone(),
            query: new.query,
            options: new.options,
            created_at: now,
            last_update: AtomicI64::new(now),
            changes: AtomicU64::new(0),
            queue: Arc::clone(&self.queue),
        });
        let mut index = self.registry.index.write();
        if index.by_live_id.contains_key(&live_id) {
            return Err(RegisterError::DuplicateId);
        }
        index.by_live_id.insert(Arc::clone(&live_id), Arc::clone(&entry));
        self.mine.lock().push(live_id);
        index
            .by_table
            .entry(entry.table_uid)
            .or_default()
            .of_mut(&entry.partition)
            .push(Arc::clone(&entry));
        Ok(entry)
    }

    /// Ends this connection's subscription `subscription_id`; `false` if there is none.
    pub fn unregister(&self, subscription_id: &str) -> bool {
        let live_id = self.live_id(subscription_id);
        self.mine.lock().retain(|id| **id != *live_id);
        self.registry.unregister(&live_id).is_some()
    }

    /// Whether the queue overflowed (the client did not keep up).
    pub fn overflowed(&self) -> bool {
        self.queue.overflowed.load(Ordering::Acquire)
    }

    /// Waits until the queue overflows.
    pub async fn overflow(&self) {
        loop {
            let notified = self.queue.overflow.notified();
            if self.overflowed() {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        for live_id in self.mine.get_mut().drain(..) {
            self.registry.unregister(&live_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use calamus_domain::{NamespaceId, RowEvent, RowVersion, TableName};

    use super::*;

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap()
    }

    fn subscription(id: &str, uid: u64, partition: Partition) -> NewSubscription {
        NewSubscription {
            subscription_id: id.into(),
            table: TableId::new(NamespaceId::new("app").unwrap(), TableName::new("t").unwrap()),
            table_uid: uid,
            partition,
            query: "SELECT * FROM app.t".into(),
            options: "{}".into(),
        }
    }

    fn write(uid: u64, partition: Partition) -> ChangeBatch {
        ChangeBatch {
            table_uid: uid,
            schema_version: 1,
            partition,
            events: vec![RowEvent::Insert {
                row_id: vec![1],
                new: RowVersion {
                    seq: 1,
                    deleted: false,
                    values: vec![],
                },
            }],
        }
    }

    #[test]
    fn a_write_reaches_only_the_subscriptions_of_its_table_and_partition() {
        let registry = Arc::new(LiveQueries::new());
        let (alice, mut alice_queue) = registry.connect(user("alice"), Role::User, 8);
        let (bob, mut bob_queue) = registry.connect(user("bob"), Role::User, 8);
        alice
            .register(subscription("a", 7, Partition::User(user("alice"))))
            .unwrap();
        bob.register(subscription("b", 7, Partition::User(user("bob"))))
            .unwrap();
        bob.register(subscription("s", 8, Partition::Shared)).unwrap();

        assert!(registry.watches(7, &Partition::User(user("alice"))));
        assert!(!registry.watches(7, &Partition::User(user("carol"))));
        assert!(!registry.watches(7, &Partition::Shared));
        assert!(!registry.watches(9, &Partition::User(user("alice"))));

        registry.committed(write(7, Partition::User(user("alice"))));
        registry.committed(write(8, Partition::Shared));
        let LiveEvent::Changes { live_id, .. } = alice_queue.try_recv().unwrap() else {
            panic!("a change")
        };
        assert_eq!(&*live_id, alice.live_id("a"));
        assert!(alice_queue.try_recv().is_err(), "one write, one event");
        let LiveEvent::Changes { live_id, .. } = bob_queue.try_recv().unwrap() else {
            panic!("a change")
        };
        assert_eq!(&*live_id, bob.live_id("s"), "bob gets the shared write, not alice's");
        assert!(bob_queue.try_recv().is_err());
    }

    #[test]
    fn ids_are_unique_per_connection_and_closing_removes_everything() {
        let registry = Arc::new(LiveQueries::new());
        let (connection, _queue) = registry.connect(user("alice"), Role::User, 8);
        connection.register(subscription("a", 7, Partition::Shared)).unwrap();
        assert_eq!(
            connection
                .register(subscription("a", 7, Partition::Shared))
                .unwrap_err(),
            RegisterError::DuplicateId
        );
        connection.register(subscription("b", 7, Partition::Shared)).unwrap();
        assert_eq!(registry.rows().len(), 2);
        assert!(connection.unregister("a"));
        assert!(!connection.unregister("a"));
        drop(connection);
        assert!(registry.is_empty());
        assert!(!registry.watches(7, &Partition::Shared), "no watcher is left behind");
    }

    #[test]
    fn a_full_queue_marks_the_connection_overflowed_and_kill_tells_it() {
        let registry = Arc::new(LiveQueries::new());
        let (connection, mut queue) = registry.connect(user("alice"), Role::User, 2);
        let entry = connection.register(subscription("a", 7, Partition::Shared)).unwrap();
        registry.committed(write(7, Partition::Shared));
        registry.committed(write(7, Partition::Shared));
        assert!(!connection.overflowed());
        registry.committed(write(7, Partition::Shared));
        assert!(connection.overflowed(), "the third write did not fit");

        while queue.try_recv().is_ok() {}
        assert!(registry.kill(&entry.live_id));
        assert!(matches!(queue.try_recv().unwrap(), LiveEvent::Killed { .. }));
        assert!(!registry.kill(&entry.live_id), "killed once");
        assert!(registry.is_empty());
    }
}
