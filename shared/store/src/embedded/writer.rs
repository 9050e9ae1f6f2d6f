//! Group commit for the embedded store. redb serialises write transactions, a commit costs far
//! more than most writes (its pages' checksums, the table roots) and a durable commit is an
//! fsync, so one commit per write would bound every session's STORE, APPEND and EXPUNGE to the
//! disk's commits per second, one after another. Instead one thread runs the writes, as a pass:
//! every write waiting (up to [`MOST_PER_PASS`], or [`MOST_BYTES_PER_PASS`] of mail) runs in one
//! transaction, committed without an fsync (`Durability::None`); then one durable commit makes
//! them all durable (redb: a non-durable commit is persisted by the next durable one). A pass
//! whose writes all wait for the disk is itself committed durably: one commit, not two.
//!
//! One write's failure never touches another's: if a write fails or panics, the pass's
//! transaction is dropped unwritten and its writes run again, each in a transaction of its own
//! (a write is `Fn`, so it can run twice; it writes only through the transaction it is given).
//!
//! A write is answered once that durable commit is done ([`Answered::Durable`]), except the
//! few a client can simply make again, answered at their pass's commit ([`Answered::Committed`]);
//! a pass of those alone waits for the next pass's durable commit, at most [`MOST_UNSYNCED`].
//!
//! One of those few runs on its caller's thread when no pass runs or waits ([`Turn`]): a commit
//! without an fsync writes nothing to the file, so it costs its caller only the write itself,
//! not the two thread wake-ups of a round trip to the writer thread (most IMAP commands that
//! write are such: flag changes, `\Recent` claims, expunges). The writer thread still makes it
//! durable within [`MOST_UNSYNCED`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability, WriteTransaction};

use super::latest_changes::LatestChanges;
use super::pipelined_file::Syncs;
use super::{Fail, TxResult};
use crate::{StoreError, StoreResult};

/// The most writes one pass (one transaction, then one durable commit) runs: a bound on how
/// long the first waits.
const MOST_PER_PASS: usize = 256;

/// The most bytes of mail one pass stores (as its writes declare them): what a transaction holds
/// in memory until its commit.
const MOST_BYTES_PER_PASS: usize = 32 << 20;

/// The longest a write answered at its commit waits for the durable commit that makes it
/// durable, when no write that waits for the disk comes first to bring it.
const MOST_UNSYNCED: Duration = Duration::from_millis(50);

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

/// A write waiting on the writer thread, its result type erased.
trait Job: Send {
    fn answered(&self) -> Answered;
    /// Bytes of mail it stores, as its caller declared them.
    fn bytes(&self) -> usize;
    /// Runs the write in `txn`, keeping what it gave (a later run replaces it); false if it
    /// failed.
    fn run(&mut self, txn: &WriteTransaction) -> bool;
    /// Tells the caller what the write gave, unless `committed` (the commit, or the durable
    /// commit it waited for) failed.
    fn answer(self: Box<Self>, committed: Result<(), String>);
}

struct Pending<T, W> {
    work: W,
    result: Option<TxResult<T>>,
    answer: tokio::sync::oneshot::Sender<StoreResult<T>>,
    answered: Answered,
    bytes: usize,
}

impl<T, W> Job for Pending<T, W>
where
    T: Send,
    W: Fn(&WriteTransaction) -> TxResult<T> + Send,
{
    fn answered(&self) -> Answered {
        self.answered
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn run(&mut self, txn: &WriteTransaction) -> bool {
        let result = (self.work)(txn);
        let ran = result.is_ok();
        self.result = Some(result);
        ran
    }

    fn answer(self: Box<Self>, committed: Result<(), String>) {
        let result = match (self.result, committed) {
            (Some(Err(fail)), _) => Err(StoreError::from(fail)),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(why)) => Err(StoreError::Backend(format!(
                "embedded store: commit failed: {why}"
            ))),
            (None, Err(why)) => Err(StoreError::Backend(format!("embedded store: {why}"))),
            (None, Ok(())) => Err(StoreError::Backend("embedded store: write not run".into())),
        };
        let _ = self.answer.send(result);
    }
}

/// What the writer thread is sent.
enum Message {
    Job(Box<dyn Job>),
    /// A write ran on its caller's thread, committed without an fsync: the next durable commit
    /// is due within [`MOST_UNSYNCED`].
    Unsynced,
}

/// Who may begin a write transaction: the writer thread for a pass, or a caller with a write
/// answered at its commit while no pass runs or waits.
#[derive(Default)]
struct Turn {
    held: Mutex<()>,
    /// The writer thread waits for the turn: callers leave it to it.
    writer_waiting: AtomicBool,
    /// A write on a caller's thread was committed since the last durable commit.
    unsynced: AtomicBool,
}

impl Turn {
    /// The writer thread's turn, once the caller holding it is done.
    fn take(&self) -> MutexGuard<'_, ()> {
        self.writer_waiting.store(true, Ordering::Release);
        let held = self
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.writer_waiting.store(false, Ordering::Release);
        held
    }
}

pub(super) struct Writer {
    /// `None` only while dropping: closing the queue is what ends the thread.
    jobs: Option<Sender<Message>>,
    thread: Option<JoinHandle<()>>,
    db: Arc<Database>,
    turn: Arc<Turn>,
    latest: Arc<LatestChanges>,
}

impl Writer {
    /// Runs the writes to `db`, whose file's syncs `syncs` tells of; each commit's changes are
    /// published to `latest` before its writes are answered.
    pub fn start(db: Arc<Database>, syncs: Syncs, latest: Arc<LatestChanges>) -> StoreResult<Self> {
        let (jobs, queue) = channel::<Message>();
        let turn = Arc::new(Turn::default());
        let thread = {
            let (db, turn, latest) = (db.clone(), turn.clone(), latest.clone());
            std::thread::Builder::new()
                .name("pushmail-redb-writer".into())
                .spawn(move || write_passes(&db, &syncs, &turn, &latest, &queue))
                .map_err(|e| StoreError::Backend(format!("embedded store writer: {e}")))?
        };
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
            db,
            turn,
            latest,
        })
    }

    /// Runs `work` (storing `bytes` of mail) in the next pass; answers when `answered` says.
    pub async fn run<T: Send + 'static>(
        &self,
        answered: Answered,
        bytes: usize,
        work: impl Fn(&WriteTransaction) -> TxResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        if answered == Answered::Committed
            && bytes == 0
            && let Some(result) = self.run_here(&work)
        {
            return result;
        }
        let (answer, answer_heard) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let job = Box::new(Pending {
            work,
            result: None,
            answer,
            answered,
            bytes,
        });
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(Message::Job(job)).is_ok());
        if !sent {
            return Err(StoreError::Backend("embedded store writer stopped".into()));
        }
        // Dropped unanswered only if the write panicked (caught on the writer thread).
        answer_heard
            .await
            .map_err(|_| StoreError::Backend("embedded store write failed (panic)".into()))?
    }

    /// Runs a write answered at its commit on this thread, in a transaction of its own, if the
    /// turn is free and the writer thread is not waiting for it; `None` otherwise.
    fn run_here<T>(
        &self,
        work: &impl Fn(&WriteTransaction) -> TxResult<T>,
    ) -> Option<StoreResult<T>> {
        if self.turn.writer_waiting.load(Ordering::Acquire) {
            return None;
        }
        let held = self.turn.held.try_lock().ok()?;
        let txn = match begin(&self.db) {
            Ok(txn) => txn,
            Err(fail) => return Some(Err(StoreError::from(fail))),
        };
        // A panic fails this write (its transaction dropped unwritten), not its caller's thread.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&txn)));
        let result = match ran {
            Ok(Ok(value)) => match commit(txn, &self.latest) {
                Ok(()) => {
                    // Told while the turn is held: no durable commit can come between.
                    if !self.turn.unsynced.swap(true, Ordering::AcqRel)
                        && let Some(jobs) = &self.jobs
                    {
                        let _ = jobs.send(Message::Unsynced);
                    }
                    Ok(value)
                }
                Err(e) => Err(StoreError::from(Fail::from(e))),
            },
            Ok(Err(fail)) => Err(StoreError::from(fail)),
            Err(_) => Err(StoreError::Backend(
                "embedded store write failed (panic)".into(),
            )),
        };
        drop(held);
        Some(result)
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

fn write_passes(
    db: &Database,
    syncs: &Syncs,
    turn: &Turn,
    latest: &LatestChanges,
    queue: &Receiver<Message>,
) {
    // Since when writes answered at their commit wait for a durable one.
    let mut unsynced_since: Option<Instant> = None;
    loop {
        let first = match unsynced_since {
            None => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(since) => queue
                .recv_timeout((since + MOST_UNSYNCED).saturating_duration_since(Instant::now())),
        };
        let first = match first {
            Ok(Message::Job(job)) => job,
            Ok(Message::Unsynced) => {
                unsynced_since.get_or_insert_with(Instant::now);
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {
                sync(db, syncs, turn, Vec::new());
                unsynced_since = None;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                if unsynced_since.is_some() || turn.unsynced.load(Ordering::Acquire) {
                    sync(db, syncs, turn, Vec::new());
                }
                return;
            }
        };
        // A durable commit's writes wait for the sync under way: waited for before the turn is
        // taken, so writes on callers' threads go on meanwhile.
        if first.answered() == Answered::Durable {
            syncs.wait_idle();
        }
        let passed = {
            let _turn = turn.take();
            run_pass(db, syncs, turn, latest, queue, first)
        };
        let Some(waiting) = passed else {
            // Committed durably itself: so is every write before it.
            unsynced_since = None;
            continue;
        };
        unsynced_since.get_or_insert_with(Instant::now);
        // A write waiting for the disk brings the others' durable commit with it; without one,
        // they wait at most MOST_UNSYNCED (the timeout above).
        if !waiting.is_empty()
            || unsynced_since.is_some_and(|since| since.elapsed() >= MOST_UNSYNCED)
        {
            sync(db, syncs, turn, waiting);
            unsynced_since = None;
        }
    }
}

/// What a write waiting for the durable commit is told with it: its own commit's outcome first.
type Waiting = (Box<dyn Job>, Result<(), String>);

/// Runs `first` and the writes queued behind it in one transaction, as they come (up to the
/// pass's bounds); answers those answered at their commit; gives back those that wait for the
/// durable commit. A pass of writes that all wait for the disk is committed durably itself, one
/// commit instead of two, and answered at once: then `None`.
fn run_pass(
    db: &Database,
    syncs: &Syncs,
    turn: &Turn,
    latest: &LatestChanges,
    queue: &Receiver<Message>,
    first: Box<dyn Job>,
) -> Option<Vec<Waiting>> {
    let mut pass: Vec<Box<dyn Job>> = Vec::new();
    let mut bytes = 0;
    let mut next = Some(first);
    let together = begin(db);
    let mut failed = together.is_err();
    while let Some(mut job) = next.take() {
        bytes += job.bytes();
        if let Ok(txn) = &together
            && !failed
        {
            // A panic ends that write (its caller hears of it), not the thread, nor the others.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(txn))) {
                Ok(true) => pass.push(job),
                Ok(false) => {
                    failed = true;
                    pass.push(job);
                }
                Err(_) => failed = true,
            }
        } else {
            pass.push(job);
        }
        while next.is_none() && pass.len() < MOST_PER_PASS && bytes < MOST_BYTES_PER_PASS {
            match queue.try_recv() {
                Ok(Message::Job(job)) => next = Some(job),
                // Committed before this pass began: its commit, or the sync after, covers it.
                Ok(Message::Unsynced) => continue,
                Err(_) => break,
            }
        }
    }
    if let (Ok(mut txn), false) = (together, failed) {
        let durable = pass.iter().all(|job| job.answered() == Answered::Durable)
            && txn.set_durability(Durability::Immediate).is_ok();
        if durable {
            turn.unsynced.store(false, Ordering::Release);
        }
        let committed =
            commit(txn, latest).map_err(|e| StoreError::from(Fail::from(e)).to_string());
        if durable {
            answer_after_sync(syncs, pass.into_iter().map(|job| (job, committed.clone())));
            return None;
        }
        return Some(answer_committed(
            pass.into_iter().map(|job| (job, committed.clone())),
        ));
    }
    // One write failed: none of the pass's is kept; each runs again on its own.
    let alone = pass.into_iter().filter_map(|mut job| {
        let txn = match begin(db) {
            Ok(txn) => txn,
            Err(fail) => return Some((job, Err(StoreError::from(fail).to_string()))),
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&txn))) {
            Ok(true) => {
                let committed = commit(txn, latest).map_err(|e| StoreError::from(Fail::from(e)));
                Some((job, committed.map_err(|e| e.to_string())))
            }
            // Dropped unwritten; the write's own failure is what its caller hears.
            Ok(false) => Some((job, Ok(()))),
            Err(_) => None,
        }
    });
    Some(answer_committed(alone.collect::<Vec<_>>()))
}

/// Answers the writes answered at their commit; gives back the others.
fn answer_committed(ran: impl IntoIterator<Item = Waiting>) -> Vec<Waiting> {
    let mut waiting = Vec::new();
    for (job, committed) in ran {
        match job.answered() {
            Answered::Committed => job.answer(committed),
            Answered::Durable => waiting.push((job, committed)),
        }
    }
    waiting
}

/// Commits `txn`, then publishes the changes its writes logged (whatever the outcome: a figure
/// too high costs a read, one missing would lose a change), before any of them is answered.
fn commit(txn: WriteTransaction, latest: &LatestChanges) -> Result<(), redb::CommitError> {
    let committed = txn.commit();
    latest.publish();
    committed
}

/// A write transaction committed without an fsync.
fn begin(db: &Database) -> TxResult<WriteTransaction> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::None)
        .map_err(|e| Fail::Store(StoreError::Backend(format!("embedded store: {e}"))))?;
    Ok(txn)
}

/// The durable commit: every write before it on disk, then those waiting for it answered.
/// Takes the turn once the sync under way is done (so the commit's writes need not wait for it
/// with the turn held).
fn sync(db: &Database, syncs: &Syncs, turn: &Turn, waiting: Vec<Waiting>) {
    syncs.wait_idle();
    let flushed = {
        let _turn = turn.take();
        // The turn held: no write on a caller's thread comes between this and the commit.
        turn.unsynced.store(false, Ordering::Release);
        flush(db).map_err(|fail| StoreError::from(fail).to_string())
    };
    if let Err(why) = &flushed {
        // Those answered at their commit cannot be told: said here.
        tracing::error!(%why, "embedded store: durable commit failed");
    }
    answer_after_sync(
        syncs,
        waiting
            .into_iter()
            .map(|(job, committed)| (job, committed.and(flushed.clone()))),
    );
}

/// Answers `waiting` once the file's sync under way is done (the sync thread does, so the
/// writer goes on meanwhile: `pipelined_file.rs`); at once those whose commit failed.
fn answer_after_sync(syncs: &Syncs, waiting: impl IntoIterator<Item = Waiting>) {
    let (committed, failed): (Vec<Waiting>, Vec<Waiting>) = waiting
        .into_iter()
        .partition(|(_, committed)| committed.is_ok());
    for (job, why) in failed {
        job.answer(why);
    }
    if committed.is_empty() {
        return;
    }
    syncs.after_sync(move |synced| {
        for (job, committed) in committed {
            job.answer(committed.and(synced.clone()));
        }
    });
}

/// An empty durable commit: every non-durable commit before it is on disk when it returns.
fn flush(db: &Database) -> TxResult<()> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| Fail::Store(StoreError::Backend(format!("embedded store: {e}"))))?;
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
