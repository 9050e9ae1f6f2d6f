//! The memory SMTP DATA may hold across all sessions: a budget shared by the listeners.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Messages are held in memory in units of this many octets, each a permit of the process's
/// DATA budget.
pub(crate) const BUDGET_UNIT: usize = 64 * 1024;

/// The bytes of every message being received at once, across sessions and both roles: a
/// budget in [`BUDGET_UNIT`]s. A message takes units as its buffer grows; one that
/// finds the budget spent is read to its end without being kept, and answered 452 4.3.1 (the
/// sender tries again later). No reader waits for another, so none can deadlock; whatever
/// peers send, the messages held in memory stay within the budget.
#[derive(Clone)]
pub struct DataBudget(Arc<Semaphore>);

impl DataBudget {
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new((bytes / BUDGET_UNIT).max(1))))
    }

    /// `count` more units, if that many are left.
    pub(crate) fn take_units(&self, count: usize) -> Option<OwnedSemaphorePermit> {
        let count = u32::try_from(count).ok()?;
        self.0.clone().try_acquire_many_owned(count).ok()
    }
}

/// A message as read, with the part of the budget it holds until it is stored.
pub(crate) struct Held {
    pub message: Vec<u8>,
    pub _budget: Option<OwnedSemaphorePermit>,
}
