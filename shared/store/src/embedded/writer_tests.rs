//! The writer: one write's failure undoes no other; a write answered at its commit runs on its
//! caller's thread and is synced soon after.

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

/// A store file in a fresh folder (kept while the test runs), and its writer.
fn writer_on_a_fresh_file() -> (tempfile::TempDir, Arc<Database>, Writer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (db, syncs) =
        super::super::pipelined_file::open_database(&dir.path().join("store.redb")).expect("db");
    let db = Arc::new(db);
    let writer = Writer::start(db.clone(), syncs, Default::default()).expect("writer");
    (dir, db, writer)
}

#[test]
fn a_write_answered_at_its_commit_runs_on_its_callers_thread_and_is_synced_soon_after() {
    let (_dir, db, writer) = writer_on_a_fresh_file();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let caller = std::thread::current().id();
    let ran_on = runtime
        .block_on(
            writer.run(Answered::Committed, 0, |txn: &WriteTransaction| {
                txn.open_table(NUMBERS)?.insert("here", 1)?;
                Ok(std::thread::current().id())
            }),
        )
        .expect("written");
    assert_eq!(ran_on, caller, "no round trip to the writer thread");
    let read = db.begin_read().expect("read");
    let stored = read
        .open_table(NUMBERS)
        .expect("table")
        .get("here")
        .expect("get");
    assert_eq!(stored.map(|v| v.value()), Some(1), "seen at once");
    // The writer thread was told, and brings the durable commit within MOST_UNSYNCED.
    let deadline = Instant::now() + Duration::from_secs(5);
    while writer.turn.unsynced.load(Ordering::Acquire) {
        assert!(Instant::now() < deadline, "never synced");
        std::thread::sleep(Duration::from_millis(5));
    }
    // A panic in one fails that write alone, and leaves nothing.
    let panics = |txn: &WriteTransaction| -> TxResult<()> {
        txn.open_table(NUMBERS)?.insert("panics", 2)?;
        panic!("a write panics")
    };
    let failed = runtime.block_on(writer.run(Answered::Committed, 0, panics));
    assert!(failed.is_err());
    let read = db.begin_read().expect("read");
    let table = read.open_table(NUMBERS).expect("table");
    assert!(table.get("panics").expect("get").is_none());
}

/// Writes racing into one pass (the first holds the writer until all are queued): the one
/// that fails and the one that panics are told so and leave nothing; every other write is
/// stored and answered, whichever way it is answered.
#[test]
fn one_failing_write_in_a_pass_undoes_no_other() {
    let (_dir, db, writer) = writer_on_a_fresh_file();
    let writer = Arc::new(writer);
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
