//! The endpoint pool: endpoints with their latest metrics, published as immutable snapshots.
//!
//! Writers (discovery, the metrics scraper, a simulator) change the pool through [`Pool`]'s
//! methods; every change publishes a new [`PoolSnapshot`] with `arc-swap`. Readers (the
//! scheduler) load the current snapshot with one atomic operation and never block, and a whole
//! scheduling cycle sees one consistent snapshot.
//!
//! Writers serialise among themselves on a mutex (readers never touch it). A write copies the
//! snapshot's slot table, `O(endpoints)` reference-count increments, so a writer that updates
//! many endpoints at once should use [`Pool::update`], which publishes once for the whole batch.

use crate::endpoint::{Endpoint, EndpointId, EndpointUid};
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// One endpoint in a snapshot: its description, its metrics and its ids.
#[derive(Debug, Clone)]
pub struct EndpointState {
    id: EndpointId,
    uid: EndpointUid,
    endpoint: Arc<Endpoint>,
    metrics: Metrics,
}

impl EndpointState {
    /// The slot id.
    #[inline]
    pub fn id(&self) -> EndpointId {
        self.id
    }

    /// The never-reused incarnation id.
    #[inline]
    pub fn uid(&self) -> EndpointUid {
        self.uid
    }

    /// The endpoint.
    #[inline]
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The shared endpoint.
    pub fn endpoint_arc(&self) -> &Arc<Endpoint> {
        &self.endpoint
    }

    /// The latest metrics.
    #[inline]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A state that belongs to no pool (used only where an invariant rules out its use).
    pub(crate) fn placeholder() -> Self {
        EndpointState {
            id: EndpointId(u32::MAX),
            uid: EndpointUid(0),
            endpoint: Arc::new(Endpoint::new("", "0.0.0.0", 0)),
            metrics: Metrics::default(),
        }
    }

    /// A detached state, for tests and for callers that score outside a pool.
    pub fn detached(id: EndpointId, endpoint: Endpoint, metrics: Metrics) -> Self {
        EndpointState {
            id,
            uid: EndpointUid(u64::from(id.0) + 1),
            endpoint: Arc::new(endpoint),
            metrics,
        }
    }
}

/// An immutable view of the pool at one moment.
#[derive(Debug, Default)]
pub struct PoolSnapshot {
    slots: Vec<Option<Arc<EndpointState>>>,
    live: Vec<Arc<EndpointState>>,
    by_name: Arc<HashMap<Arc<str>, EndpointId>>,
    version: u64,
    membership_version: u64,
}

impl PoolSnapshot {
    /// The endpoints, in slot order.
    #[inline]
    pub fn endpoints(&self) -> &[Arc<EndpointState>] {
        &self.live
    }

    /// The number of endpoints.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// One past the highest slot id in use: the length per-endpoint vectors need.
    #[inline]
    pub fn slot_capacity(&self) -> usize {
        self.slots.len()
    }

    /// The endpoint in slot `id`.
    #[inline]
    pub fn get(&self, id: EndpointId) -> Option<&EndpointState> {
        self.slots.get(id.index()).and_then(|s| s.as_deref())
    }

    /// The endpoint named `name`.
    pub fn by_name(&self, name: &str) -> Option<&EndpointState> {
        self.by_name.get(name).and_then(|id| self.get(*id))
    }

    /// Increases with every published change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Increases whenever endpoints join or leave (not on metrics updates).
    pub fn membership_version(&self) -> u64 {
        self.membership_version
    }
}

/// Errors from pool writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The named endpoint is not in the pool.
    #[error("endpoint {name:?} is not in the pool")]
    UnknownEndpoint {
        /// The name that was looked up.
        name: String,
    },
    /// The pool already holds `u32::MAX` endpoints.
    #[error("the pool is full ({max} endpoints)")]
    Full {
        /// The limit.
        max: u32,
    },
}

/// A shared, lock-free-to-read pool of endpoints.
///
/// ```
/// use pointsman::{Endpoint, Metrics, Pool};
/// let pool = Pool::new();
/// pool.upsert(Endpoint::new("a", "10.0.0.1", 8000));
/// pool.update_metrics("a", Metrics { waiting_queue_size: 3, ..Metrics::default() }).unwrap();
/// assert_eq!(pool.snapshot().by_name("a").unwrap().metrics().waiting_queue_size, 3);
/// ```
#[derive(Debug, Default)]
pub struct Pool {
    current: ArcSwap<PoolSnapshot>,
    writer: Mutex<WriterState>,
}

#[derive(Debug, Default)]
struct WriterState {
    next_uid: u64,
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current snapshot (one atomic reference-count increment; never blocks).
    #[inline]
    pub fn snapshot(&self) -> Arc<PoolSnapshot> {
        self.current.load_full()
    }

    /// Adds `endpoint`, or replaces the description of the endpoint of the same name (keeping
    /// its metrics, its slot and, if its address and port are unchanged, its uid).
    pub fn upsert(&self, endpoint: Endpoint) -> EndpointId {
        let mut out = EndpointId(0);
        self.update(|tx| out = tx.upsert(endpoint));
        out
    }

    /// Removes the endpoint named `name`; returns its former slot.
    pub fn remove(&self, name: &str) -> Option<EndpointId> {
        let mut out = None;
        self.update(|tx| out = tx.remove(name));
        out
    }

    /// Replaces the metrics of the endpoint named `name`.
    ///
    /// # Errors
    /// [`PoolError::UnknownEndpoint`] if there is no such endpoint.
    pub fn update_metrics(&self, name: &str, metrics: Metrics) -> Result<(), PoolError> {
        let mut out = Ok(());
        self.update(|tx| out = tx.set_metrics(name, metrics));
        out
    }

    /// Replaces the whole membership with `endpoints`: endpoints not listed are removed, listed
    /// ones are upserted.
    pub fn set_endpoints(&self, endpoints: impl IntoIterator<Item = Endpoint>) {
        let endpoints: Vec<Endpoint> = endpoints.into_iter().collect();
        self.update(|tx| {
            let keep: std::collections::HashSet<&str> =
                endpoints.iter().map(|e| e.name()).collect();
            let gone: Vec<Arc<str>> = tx
                .by_name
                .keys()
                .filter(|n| !keep.contains(&***n))
                .cloned()
                .collect();
            for name in gone {
                tx.remove(&name);
            }
            for e in &endpoints {
                tx.upsert(e.clone());
            }
        });
    }

    /// Applies a batch of changes and publishes them as one snapshot.
    pub fn update<R>(&self, f: impl FnOnce(&mut PoolTransaction<'_>) -> R) -> R {
        let mut writer = self.writer.lock();
        let old = self.current.load();
        let mut tx = PoolTransaction {
            slots: old.slots.clone(),
            by_name: Arc::clone(&old.by_name),
            writer: &mut writer,
            changed: false,
            membership_changed: false,
        };
        let r = f(&mut tx);
        if tx.changed {
            let live = tx.slots.iter().flatten().cloned().collect();
            let next = PoolSnapshot {
                slots: tx.slots,
                live,
                by_name: tx.by_name,
                version: old.version + 1,
                membership_version: old.membership_version + u64::from(tx.membership_changed),
            };
            self.current.store(Arc::new(next));
        }
        r
    }
}

/// A batch of pool changes, applied by [`Pool::update`].
#[derive(Debug)]
pub struct PoolTransaction<'a> {
    slots: Vec<Option<Arc<EndpointState>>>,
    by_name: Arc<HashMap<Arc<str>, EndpointId>>,
    writer: &'a mut WriterState,
    changed: bool,
    membership_changed: bool,
}

impl PoolTransaction<'_> {
    /// See [`Pool::upsert`].
    pub fn upsert(&mut self, endpoint: Endpoint) -> EndpointId {
        self.changed = true;
        if let Some(&id) = self.by_name.get(endpoint.name()) {
            if let Some(Some(old)) = self.slots.get(id.index()) {
                let same_target = old.endpoint.address() == endpoint.address()
                    && old.endpoint.port() == endpoint.port();
                let (old_uid, old_metrics) = (old.uid, old.metrics.clone());
                let uid = if same_target {
                    old_uid
                } else {
                    self.fresh_uid()
                };
                self.membership_changed |= !same_target;
                let metrics = if same_target {
                    old_metrics
                } else {
                    Metrics::default()
                };
                self.slots[id.index()] = Some(Arc::new(EndpointState {
                    id,
                    uid,
                    endpoint: Arc::new(endpoint),
                    metrics,
                }));
                return id;
            }
        }
        let index = self
            .slots
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.slots.len());
        if index == self.slots.len() {
            self.slots.push(None);
        }
        // Slot indices stay below u32::MAX: a pool that large would not fit in memory.
        let id = EndpointId(u32::try_from(index).unwrap_or(u32::MAX));
        let uid = self.fresh_uid();
        self.membership_changed = true;
        let endpoint = Arc::new(endpoint);
        Arc::make_mut(&mut self.by_name).insert(endpoint.name_arc().clone(), id);
        self.slots[index] = Some(Arc::new(EndpointState {
            id,
            uid,
            endpoint,
            metrics: Metrics::default(),
        }));
        id
    }

    /// See [`Pool::remove`].
    pub fn remove(&mut self, name: &str) -> Option<EndpointId> {
        let id = Arc::make_mut(&mut self.by_name).remove(name)?;
        self.changed = true;
        self.membership_changed = true;
        if let Some(slot) = self.slots.get_mut(id.index()) {
            *slot = None;
        }
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        Some(id)
    }

    /// See [`Pool::update_metrics`].
    ///
    /// # Errors
    /// [`PoolError::UnknownEndpoint`] if there is no such endpoint.
    pub fn set_metrics(&mut self, name: &str, metrics: Metrics) -> Result<(), PoolError> {
        let unknown = || PoolError::UnknownEndpoint {
            name: name.to_string(),
        };
        let id = *self.by_name.get(name).ok_or_else(unknown)?;
        let slot = self.slots.get_mut(id.index()).ok_or_else(unknown)?;
        let old = slot.as_ref().ok_or_else(unknown)?;
        let next = EndpointState {
            metrics,
            ..EndpointState::clone(old)
        };
        *slot = Some(Arc::new(next));
        self.changed = true;
        Ok(())
    }

    /// The endpoint named `name` as this transaction currently sees it.
    pub fn get(&self, name: &str) -> Option<&EndpointState> {
        let id = self.by_name.get(name)?;
        self.slots.get(id.index())?.as_deref()
    }

    fn fresh_uid(&mut self) -> EndpointUid {
        self.writer.next_uid += 1;
        EndpointUid(self.writer.next_uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_uids_are_not() {
        let pool = Pool::new();
        let a = pool.upsert(Endpoint::new("a", "1.1.1.1", 1));
        let b = pool.upsert(Endpoint::new("b", "1.1.1.2", 1));
        assert_ne!(a, b);
        let uid_a = pool.snapshot().by_name("a").map(|s| s.uid());
        assert_eq!(pool.remove("a"), Some(a));
        assert!(pool.snapshot().by_name("a").is_none());
        let c = pool.upsert(Endpoint::new("c", "1.1.1.3", 1));
        assert_eq!(c, a, "freed slot is reused");
        assert_ne!(pool.snapshot().by_name("c").map(|s| s.uid()), uid_a);
    }

    #[test]
    fn upsert_keeps_metrics_unless_target_moves() {
        let pool = Pool::new();
        pool.upsert(Endpoint::new("a", "1.1.1.1", 1));
        let m = Metrics {
            waiting_queue_size: 4,
            ..Metrics::default()
        };
        pool.update_metrics("a", m).unwrap();
        pool.upsert(Endpoint::new("a", "1.1.1.1", 1).with_label("x", "y"));
        assert_eq!(
            pool.snapshot()
                .by_name("a")
                .unwrap()
                .metrics()
                .waiting_queue_size,
            4
        );
        pool.upsert(Endpoint::new("a", "1.1.1.9", 1));
        assert_eq!(
            pool.snapshot()
                .by_name("a")
                .unwrap()
                .metrics()
                .waiting_queue_size,
            0
        );
    }

    #[test]
    fn unknown_endpoint_metrics_is_an_error() {
        let pool = Pool::new();
        let err = pool.update_metrics("nope", Metrics::default()).unwrap_err();
        assert_eq!(err.to_string(), "endpoint \"nope\" is not in the pool");
    }

    #[test]
    fn set_endpoints_replaces_membership() {
        let pool = Pool::new();
        pool.set_endpoints([
            Endpoint::new("a", "1.1.1.1", 1),
            Endpoint::new("b", "1.1.1.2", 1),
        ]);
        pool.set_endpoints([
            Endpoint::new("b", "1.1.1.2", 1),
            Endpoint::new("c", "1.1.1.3", 1),
        ]);
        let snap = pool.snapshot();
        let names: Vec<&str> = snap
            .endpoints()
            .iter()
            .map(|e| e.endpoint().name())
            .collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"b") && names.contains(&"c"));
    }

    #[test]
    fn snapshots_are_immutable() {
        let pool = Pool::new();
        pool.upsert(Endpoint::new("a", "1.1.1.1", 1));
        let before = pool.snapshot();
        pool.upsert(Endpoint::new("b", "1.1.1.2", 1));
        assert_eq!(before.len(), 1);
        assert_eq!(pool.snapshot().len(), 2);
        assert!(pool.snapshot().version() > before.version());
    }
}
