//! The store's file, with its fsyncs on a thread of their own. A durable commit of redb writes
//! its pages and then syncs the file; the sync is most of the commit's time (the disk's flush,
//! about 0.7 ms here), and redb's one writer would wait through it with every write queued
//! behind. Here `sync_data` only asks for the sync and returns: the writer goes on with the next
//! pass (a non-durable commit writes nothing to the file), and those waiting for the disk are
//! answered by the sync thread once the sync is done ([`Syncs::after_sync`]).
//!
//! Order on the disk is as redb's own: no write reaches the file until the sync asked for before
//! it is done (a write waits for it), so the file is at every moment what a synchronous sync
//! would have left, and a crash finds the last durable commit or the one being synced, as with
//! redb's own file. A failed sync fails every write and sync after it: what the disk holds is
//! then unknown, and going on would build on it.

use std::fmt;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use redb::backends::FileBackend;
use redb::{BackendError, Database, StorageBackend};

use super::TxResult;
use crate::StoreError;

/// Opens (or creates) the redb file at `path` with its syncs on a thread of their own.
pub(super) fn open_database(path: &Path) -> TxResult<(Database, Syncs)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .and_then(|file| FileBackend::new(file).map_err(std::io::Error::other))
        .and_then(PipelinedFile::new)
        .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
    let (file, syncs) = file;
    Ok((Database::builder().create_with_backend(file)?, syncs))
}

/// Told once the sync it waited for is done, or failed (why).
type AfterSync = Box<dyn FnOnce(Result<(), String>) + Send>;

#[derive(Default)]
struct State {
    /// Syncs asked for, and done, since the file was opened.
    asked: u64,
    done: u64,
    /// Why a sync failed; every later write and sync fails with it.
    failed: Option<String>,
    /// Those told when sync number `.0` is done.
    waiting: Vec<(u64, AfterSync)>,
    closing: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    /// Until no sync is under way, or one failed; the state then.
    fn wait_idle(&self) -> MutexGuard<'_, State> {
        let mut state = self.state();
        while state.failed.is_none() && state.done < state.asked {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still holds a consistent state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The writer's side: who is told when the syncs asked for so far are done.
#[derive(Clone)]
pub(super) struct Syncs(Arc<Shared>);

impl Syncs {
    /// Waits until no sync is under way (or one failed): a write then reaches the file at once.
    pub fn wait_idle(&self) {
        drop(self.0.wait_idle());
    }

    /// Tells `then` once every sync asked for until now is done (at once if they are).
    pub fn after_sync(&self, then: impl FnOnce(Result<(), String>) + Send + 'static) {
        let mut state = self.0.state();
        if let Some(why) = &state.failed {
            let why = why.clone();
            drop(state);
            then(Err(why));
        } else if state.done >= state.asked {
            drop(state);
            then(Ok(()));
        } else {
            let asked = state.asked;
            state.waiting.push((asked, Box::new(then)));
        }
    }
}

/// `B`: redb's own file backend; another in tests.
struct PipelinedFile<B: StorageBackend> {
    file: Arc<B>,
    shared: Arc<Shared>,
    syncer: Mutex<Option<JoinHandle<()>>>,
}

impl<B: StorageBackend> fmt::Debug for PipelinedFile<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelinedFile").finish_non_exhaustive()
    }
}

impl<B: StorageBackend> PipelinedFile<B> {
    fn new(file: B) -> std::io::Result<(Self, Syncs)> {
        let file = Arc::new(file);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let syncer = {
            let (file, shared) = (file.clone(), shared.clone());
            std::thread::Builder::new()
                .name("pushmail-redb-sync".into())
                .spawn(move || sync_when_asked(file.as_ref(), &shared))?
        };
        let syncs = Syncs(shared.clone());
        let pipelined = Self {
            file,
            shared,
            syncer: Mutex::new(Some(syncer)),
        };
        Ok((pipelined, syncs))
    }

    /// Waits until no sync is under way; the error of a failed one.
    fn synced(&self) -> std::io::Result<()> {
        match &self.shared.wait_idle().failed {
            Some(why) => Err(std::io::Error::other(format!(
                "an earlier sync failed: {why}"
            ))),
            None => Ok(()),
        }
    }
}

impl<B: StorageBackend> Drop for PipelinedFile<B> {
    /// redb closes the file before dropping it; should it not, the sync thread still ends
    /// (after any sync asked for).
    fn drop(&mut self) {
        self.shared.state().closing = true;
        self.shared.changed.notify_all();
    }
}

/// The sync thread: syncs whenever asked, then tells those waiting for it.
fn sync_when_asked(file: &impl StorageBackend, shared: &Shared) {
    let mut state = shared.state();
    loop {
        if state.done < state.asked && state.failed.is_none() {
            let asked = state.asked;
            drop(state);
            let synced = file.sync_data().map_err(|e| e.to_string());
            state = shared.state();
            state.done = asked;
            if let Err(why) = &synced {
                tracing::error!(%why, "embedded store: sync failed; no write goes on");
                state.failed = Some(why.clone());
            }
            let failed = state.failed.clone();
            let (told, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.waiting)
                .into_iter()
                .partition(|(after, _)| *after <= asked || failed.is_some());
            state.waiting = waiting;
            shared.changed.notify_all();
            drop(state);
            for (_, then) in told {
                then(failed.clone().map_or(Ok(()), Err));
            }
            state = shared.state();
            continue;
        }
        if state.closing {
            return;
        }
        state = shared
            .changed
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
}

impl<B: StorageBackend> StorageBackend for PipelinedFile<B> {
    fn len(&self) -> std::io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.synced()?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        let mut state = self.shared.state();
        if let Some(why) = &state.failed {
            return Err(std::io::Error::other(format!(
                "an earlier sync failed: {why}"
            )));
        }
        state.asked += 1;
        self.shared.changed.notify_all();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.synced()?;
        self.file.write(offset, data)
    }

    /// The last sync done and told, then the file's locks let go.
    fn close(&self) -> std::io::Result<()> {
        self.shared.state().closing = true;
        self.shared.changed.notify_all();
        let syncer = self
            .syncer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(syncer) = syncer {
            let _ = syncer.join();
        }
        let synced = self.synced();
        self.file.close()?;
        synced
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{Receiver, Sender, channel};
    use std::time::Duration;

    use redb::backends::InMemoryBackend;

    use super::*;

    /// In memory, with each sync held until the test lets it go (or fails it), and the writes
    /// that reached it counted.
    #[derive(Debug)]
    struct HeldSyncs {
        memory: InMemoryBackend,
        writes: Mutex<Vec<u64>>,
        release: Mutex<Receiver<Result<(), String>>>,
    }

    impl HeldSyncs {
        fn new() -> (Self, Sender<Result<(), String>>) {
            let (release, released) = channel();
            let memory = InMemoryBackend::new();
            memory.set_len(4096).expect("room");
            let backend = Self {
                memory,
                writes: Mutex::new(Vec::new()),
                release: Mutex::new(released),
            };
            (backend, release)
        }
    }

    impl StorageBackend for HeldSyncs {
        fn len(&self) -> std::io::Result<u64> {
            self.memory.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
            self.memory.read(offset, out)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.memory.set_len(len)
        }
        fn sync_data(&self) -> std::io::Result<()> {
            let released = self.release.lock().expect("lock").recv();
            released
                .map_err(std::io::Error::other)?
                .map_err(std::io::Error::other)
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.writes.lock().expect("lock").push(offset);
            self.memory.write(offset, data)
        }
    }

    fn told(heard: &Receiver<Result<(), String>>) -> Option<Result<(), String>> {
        heard.recv_timeout(Duration::from_millis(200)).ok()
    }

    #[test]
    fn no_write_reaches_the_file_before_the_sync_asked_ahead_of_it_is_done() {
        let (backend, release) = HeldSyncs::new();
        let (file, syncs) = PipelinedFile::new(backend).expect("pipelined");
        let file = Arc::new(file);
        file.write(0, &[1; 64]).expect("write");
        file.sync_data().expect("sync asked");
        let (tell, heard) = channel();
        syncs.after_sync(move |synced| tell.send(synced).expect("send"));
        // The writer goes on: its next write waits for the sync.
        let writer = {
            let file = file.clone();
            std::thread::spawn(move || file.write(64, &[2; 64]))
        };
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            *file.file.writes.lock().expect("lock"),
            [0],
            "held behind the sync"
        );
        assert_eq!(told(&heard), None, "not told before the sync is done");
        release.send(Ok(())).expect("release");
        assert_eq!(told(&heard), Some(Ok(())));
        writer.join().expect("writer").expect("write");
        assert_eq!(*file.file.writes.lock().expect("lock"), [0, 64]);
        file.close().expect("close");
    }

    #[test]
    fn a_failed_sync_fails_those_waiting_and_every_write_and_sync_after_it() {
        let (backend, release) = HeldSyncs::new();
        let (file, syncs) = PipelinedFile::new(backend).expect("pipelined");
        file.write(0, &[1; 64]).expect("write");
        file.sync_data().expect("sync asked");
        let (tell, heard) = channel();
        let waiting = tell.clone();
        syncs.after_sync(move |synced| waiting.send(synced).expect("send"));
        release.send(Err("disk gone".into())).expect("release");
        assert!(matches!(told(&heard), Some(Err(why)) if why.contains("disk gone")));
        assert!(file.write(64, &[2; 64]).is_err());
        assert!(file.set_len(1 << 20).is_err());
        assert!(file.sync_data().is_err());
        syncs.after_sync(move |synced| tell.send(synced).expect("send"));
        assert!(
            matches!(told(&heard), Some(Err(_))),
            "told at once, and not told Ok"
        );
        assert_eq!(*file.file.writes.lock().expect("lock"), [0]);
        assert!(file.close().is_err());
    }

    #[test]
    fn those_waiting_are_told_once_the_sync_asked_for_is_done_and_writes_keep_their_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.path().join("file"))
            .expect("file");
        let file = FileBackend::new(file).expect("backend");
        let (file, syncs) = PipelinedFile::new(file).expect("pipelined");
        let (told, heard) = std::sync::mpsc::channel();
        // Nothing asked: told at once.
        let now = told.clone();
        syncs.after_sync(move |synced| now.send((0, synced)).expect("send"));
        assert_eq!(heard.recv().expect("told"), (0, Ok(())));
        for round in 1..=50u8 {
            file.write(u64::from(round) * 4096, &[round; 4096])
                .expect("write");
            file.sync_data().expect("sync asked");
            let told = told.clone();
            let shared = file.shared.clone();
            syncs.after_sync(move |synced| {
                // Told only once the sync asked for this round is done.
                let done = shared.state().done;
                told.send((done, synced)).expect("send");
            });
        }
        let mut last = 0;
        for _ in 1..=50 {
            let (done, synced) = heard.recv().expect("told");
            assert_eq!(synced, Ok(()));
            assert!(done >= last);
            last = done;
        }
        assert_eq!(last, 50);
        file.close().expect("close");
        let mut out = vec![0u8; 4096];
        for round in 1..=50u8 {
            file.file
                .read(u64::from(round) * 4096, &mut out)
                .expect("read");
            assert!(out.iter().all(|byte| *byte == round));
        }
    }
}
