//! Group commit for the embedded store. redb serialises write transactions and a durable commit
//! is an fsync, so one commit per write would bound every session's STORE, APPEND and EXPUNGE
//! to the disk's fsyncs per second, one after another. Instead one thread runs the writes: each
//! in its own transaction committed without an fsync (`Durability::None`; one write's failure
//! never touches another's), then one durable commit for every write it ran meanwhile, which
//! makes them all durable (redb: a non-durable commit is persisted by the next durable one).
//! A write is answered once that durable commit is done ([`Answered::Durable`]), except the
//! few a client can simply make again, answered at their own commit ([`Answered::Committed`]);
//! a pass of those alone waits for the next pass's durable commit, at most [`MOST_UNSYNCED`].

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability, WriteTransaction};

use super::{Fail, TxResult};
use crate::{StoreError, StoreResult};

/// The most writes one durable commit covers: a bound on how long the first waits.
const MOST_PER_FLUSH: usize = 256;

/// The longest a write answered at its commit waits for the durable commit that makes it
/// durable, when no write that waits for the disk comes first to bring it.
const MOST_UNSYNCED: Duration = Duration::from_millis(50);

/// A write run on the writer thread; what it gives back (unless it was answered at its commit)
/// is told the flush's outcome.
type Job = Box<dyn FnOnce(&Database) -> Option<Done> + Send>;
type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

/// When a write's caller hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answered {
    /// Once on disk: mail, accounts, links, everything a caller must not lose.
    Durable,
    /// Once committed: every reader sees it at once, and it is on disk with the next durable
    /// commit, which the next write that waits for the disk brings, or within
    /// [`MOST_UNSYNCED`]. Only an OS crash, a power loss or the process dying in that window
    /// takes it back, with every write after it: the file is always a prefix of the writes in
    /// order. For what a client can simply do again (flag changes, `\Recent` claims,
    /// expunges): Dovecot's default (`mail_fsync = optimized`) never fsyncs those at all.
    Committed,
}

pub(super) struct Writer {
    /// `None` only while dropping: closing the queue is what ends the thread.
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn start(db: Arc<Database>) -> StoreResult<Self> {
        let (jobs, queue) = channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("pushmail-redb-writer".into())
            .spawn(move || write_batches(&db, &queue))
            .map_err(|e| StoreError::Backend(format!("embedded store writer: {e}")))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `work` in a write transaction of its own; answers when `answer_at` says.
    pub async fn run<T: Send + 'static>(
        &self,
        answer_at: Answered,
        work: impl FnOnce(&WriteTransaction) -> TxResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (answer, answered) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |db: &Database| -> Option<Done> {
            let result = (|| -> TxResult<T> {
                let mut txn = db.begin_write()?;
                txn.set_durability(Durability::None)
                    .map_err(|e| StoreError::Backend(format!("embedded store: {e}")))?;
                let result = work(&txn)?;
                txn.commit()?;
                Ok(result)
            })();
            if answer_at == Answered::Committed {
                let _ = answer.send(result.map_err(StoreError::from));
                return None;
            }
            Some(Box::new(move |flushed: Result<(), String>| {
                let result = match (result, flushed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Err(fail), _) => Err(StoreError::from(fail)),
                    (Ok(_), Err(why)) => Err(StoreError::Backend(format!(
                        "embedded store: durable commit failed: {why}"
                    ))),
                };
                let _ = answer.send(result);
            }))
        });
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            return Err(StoreError::Backend("embedded store writer stopped".into()));
        }
        // Dropped unanswered only if the write panicked (caught on the writer thread).
        answered
            .await
            .map_err(|_| StoreError::Backend("embedded store write failed (panic)".into()))?
    }
}

impl Drop for Writer {
    /// The thread ends when its queue closes; waiting for it lets the file be opened again at
    /// once (redb locks it while open).
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_batches(db: &Database, queue: &Receiver<Job>) {
    // Since when writes answered at their commit wait for a durable one.
    let mut unsynced_since: Option<Instant> = None;
    loop {
        let first = match unsynced_since {
            None => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(since) => queue
                .recv_timeout((since + MOST_UNSYNCED).saturating_duration_since(Instant::now())),
        };
        let first = match first {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                sync(db, Vec::new());
                unsynced_since = None;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                if unsynced_since.is_some() {
                    sync(db, Vec::new());
                }
                return;
            }
        };
        let mut waiting = Vec::new();
        let mut ran = 0;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            // A panic in one write ends that write (its caller hears of it), not the thread.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || job(db))) {
                Ok(Some(finished)) => waiting.push(finished),
                Ok(None) => {
                    unsynced_since.get_or_insert_with(Instant::now);
                }
                Err(_) => {}
            }
            ran += 1;
            if ran < MOST_PER_FLUSH {
                next = queue.try_recv().ok();
            }
        }
        // A write waiting for the disk brings the others' durable commit with it; without one,
        // they wait at most MOST_UNSYNCED (the timeout above).
        if !waiting.is_empty()
            || unsynced_since.is_some_and(|since| since.elapsed() >= MOST_UNSYNCED)
        {
            sync(db, waiting);
            unsynced_since = None;
        }
    }
}

/// The durable commit: every write before it on disk, then those waiting for it answered.
fn sync(db: &Database, waiting: Vec<Done>) {
    let flushed = flush(db).map_err(|fail| StoreError::from(fail).to_string());
    if let Err(why) = &flushed {
        // Those answered at their commit cannot be told: said here.
        tracing::error!(%why, "embedded store: durable commit failed");
    }
    for finished in waiting {
        finished(flushed.clone());
    }
}

/// An empty durable commit: every non-durable commit before it is on disk when it returns.
fn flush(db: &Database) -> TxResult<()> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| Fail::Store(StoreError::Backend(format!("embedded store: {e}"))))?;
    txn.commit()?;
    Ok(())
}
