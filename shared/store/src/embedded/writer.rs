//! Group commit for the embedded store. redb serialises write transactions and a durable commit
//! is an fsync, so one commit per write would bound every session's STORE, APPEND and EXPUNGE
//! to the disk's fsyncs per second, one after another. Instead one thread runs the writes: each
//! in its own transaction committed without an fsync (`Durability::None`; one write's failure
//! never touches another's), then one durable commit for every write it ran meanwhile, which
//! makes them all durable (redb: a non-durable commit is persisted by the next durable one).
//! A write is answered once that durable commit is done ([`Answered::Durable`]), except the
//! few a client can simply make again, answered at their own commit ([`Answered::Committed`]).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use redb::{Database, Durability, WriteTransaction};

use super::{Fail, TxResult};
use crate::{StoreError, StoreResult};

/// The most writes one durable commit covers: a bound on how long the first waits.
const MOST_PER_FLUSH: usize = 256;

/// A write run on the writer thread; what it gives back is told the flush's outcome.
type Job = Box<dyn FnOnce(&Database) -> Done + Send>;
type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

/// When a write's caller hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answered {
    /// Once on disk: mail, accounts, links, everything a caller must not lose.
    Durable,
    /// Once committed: every reader sees it at once, and it is on disk with the durable commit
    /// that ends the writer's pass, right after. Only an OS crash or a power loss in that window
    /// (one fsync) takes it back, with every write after it: the file is always a prefix of the
    /// writes in order. For what a client can simply do again (flag changes, `\Recent` claims,
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
        let job: Job = Box::new(move |db: &Database| -> Done {
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
                return Box::new(|_flushed: Result<(), String>| {});
            }
            Box::new(move |flushed: Result<(), String>| {
                let result = match (result, flushed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Err(fail), _) => Err(StoreError::from(fail)),
                    (Ok(_), Err(why)) => Err(StoreError::Backend(format!(
                        "embedded store: durable commit failed: {why}"
                    ))),
                };
                let _ = answer.send(result);
            })
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
    while let Ok(first) = queue.recv() {
        let mut done = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            // A panic in one write ends that write (its caller hears of it), not the thread.
            if let Ok(finished) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || job(db)))
            {
                done.push(finished);
            }
            if done.len() < MOST_PER_FLUSH {
                next = queue.try_recv().ok();
            }
        }
        let flushed = flush(db).map_err(|fail| StoreError::from(fail).to_string());
        if let Err(why) = &flushed {
            // Those answered at their commit cannot be told: said here.
            tracing::error!(%why, "embedded store: durable commit failed");
        }
        for finished in done {
            finished(flushed.clone());
        }
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
