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

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability, WriteTransaction};

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

pub(super) struct Writer {
    /// `None` only while dropping: closing the queue is what ends the thread.
    jobs: Option<Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Runs the writes to `db`, whose file's syncs `syncs` tells of.
    pub fn start(db: Arc<Database>, syncs: Syncs) -> StoreResult<Self> {
        let (jobs, queue) = channel::<Box<dyn Job>>();
        let thread = std::thread::Builder::new()
            .name("pushmail-redb-writer".into())
            .spawn(move || write_passes(&db, &syncs, &queue))
            .map_err(|e| StoreError::Backend(format!("embedded store writer: {e}")))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `work` (storing `bytes` of mail) in the next pass; answers when `answered` says.
    pub async fn run<T: Send + 'static>(
        &self,
        answered: Answered,
        bytes: usize,
        work: impl Fn(&WriteTransaction) -> TxResult<T> + Send + 'static,
    ) -> StoreResult<T> {
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
            .is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            return Err(StoreError::Backend("embedded store writer stopped".into()));
        }
        // Dropped unanswered only if the write panicked (caught on the writer thread).
        answer_heard
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

fn write_passes(db: &Database, syncs: &Syncs, queue: &Receiver<Box<dyn Job>>) {
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
                sync(db, syncs, Vec::new());
                unsynced_since = None;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                if unsynced_since.is_some() {
                    sync(db, syncs, Vec::new());
                }
                return;
            }
        };
        let Some(waiting) = run_pass(db, syncs, queue, first) else {
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
            sync(db, syncs, waiting);
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
    queue: &Receiver<Box<dyn Job>>,
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
        if pass.len() < MOST_PER_PASS && bytes < MOST_BYTES_PER_PASS {
            next = queue.try_recv().ok();
        }
    }
    if let (Ok(mut txn), false) = (together, failed) {
        let durable = pass.iter().all(|job| job.answered() == Answered::Durable)
            && txn.set_durability(Durability::Immediate).is_ok();
        let committed = txn
            .commit()
            .map_err(|e| StoreError::from(Fail::from(e)).to_string());
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
                let committed = txn.commit().map_err(|e| StoreError::from(Fail::from(e)));
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

/// A write transaction committed without an fsync.
fn begin(db: &Database) -> TxResult<WriteTransaction> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::None)
        .map_err(|e| Fail::Store(StoreError::Backend(format!("embedded store: {e}"))))?;
    Ok(txn)
}

/// The durable commit: every write before it on disk, then those waiting for it answered.
fn sync(db: &Database, syncs: &Syncs, waiting: Vec<Waiting>) {
    let flushed = flush(db).map_err(|fail| StoreError::from(fail).to_string());
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
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use redb::{ReadableDatabase, TableDefinition};

    use super::*;

    const NUMBERS: TableDefinition<&str, u64> = TableDefinition::new("numbers");
    const WRITES: usize = 40;

    /// What each write does besides writing its number: the one that fails and the one that
    /// panics write theirs first, so a pass kept whole would show them.
    #[derive(Clone, Copy)]
    enum Outcome {
        Written,
        Fails,
        Panics,
    }

    fn outcome(n: usize) -> Outcome {
        match n {
            7 => Outcome::Fails,
            23 => Outcome::Panics,
            _ => Outcome::Written,
        }
    }

    /// Writes racing into one pass (the first holds the writer until all are queued): the one
    /// that fails and the one that panics are told so and leave nothing; every other write is
    /// stored and answered, whichever way it is answered.
    #[test]
    fn one_failing_write_in_a_pass_undoes_no_other() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db, syncs) =
            super::super::pipelined_file::open_database(&dir.path().join("store.redb"))
                .expect("db");
        let db = Arc::new(db);
        let writer = Arc::new(Writer::start(db.clone(), syncs).expect("writer"));
        let queued = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(AtomicBool::new(false));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime");
        let answers = runtime.block_on(async {
            let mut tasks = Vec::new();
            for n in 0..WRITES {
                let (writer, queued, held) = (writer.clone(), queued.clone(), held.clone());
                let answered = if n % 2 == 0 {
                    Answered::Durable
                } else {
                    Answered::Committed
                };
                let sent = queued.clone();
                tasks.push(tokio::spawn(async move {
                    let work = move |txn: &WriteTransaction| -> TxResult<usize> {
                        // Only the first run of the first write waits, for the others to queue.
                        if n == 0 && !held.swap(true, Ordering::SeqCst) {
                            while queued.load(Ordering::SeqCst) < WRITES {
                                std::thread::yield_now();
                            }
                        }
                        txn.open_table(NUMBERS)?
                            .insert(format!("{n:03}").as_str(), n as u64)?;
                        match outcome(n) {
                            Outcome::Written => Ok(n),
                            Outcome::Fails => Err(Fail::Store(StoreError::Corrupt("no".into()))),
                            Outcome::Panics => panic!("write {n} panics"),
                        }
                    };
                    let answer = writer.run(answered, 0, work);
                    tokio::pin!(answer);
                    // Polled once (which queues the write), then counted as queued.
                    tokio::select! {
                        biased;
                        done = &mut answer => {
                            sent.fetch_add(1, Ordering::SeqCst);
                            done
                        }
                        () = std::future::ready(()) => {
                            sent.fetch_add(1, Ordering::SeqCst);
                            answer.await
                        }
                    }
                }));
            }
            let mut answers = Vec::new();
            for task in tasks {
                answers.push(task.await.expect("task"));
            }
            answers
        });
        let read = db.begin_read().expect("read");
        let table = read.open_table(NUMBERS).expect("table");
        for (n, answer) in answers.into_iter().enumerate() {
            let stored = table.get(format!("{n:03}").as_str()).expect("get");
            match outcome(n) {
                Outcome::Written => {
                    assert_eq!(answer.expect("answered"), n);
                    assert_eq!(stored.map(|v| v.value()), Some(n as u64));
                }
                Outcome::Fails | Outcome::Panics => {
                    assert!(answer.is_err(), "write {n} answered Ok");
                    assert!(stored.is_none(), "write {n} left its number");
                }
            }
        }
    }
}
