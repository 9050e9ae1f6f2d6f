//! Account passwords as argon2id hashes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

/// Memory one argon2 computation holds while it runs, in KiB (OWASP's first argon2id choice).
pub const HASH_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2 computations run at once unless configured otherwise: 4 × 19 MiB = 76 MiB at most.
pub const DEFAULT_HASH_CONCURRENCY: usize = 4;
/// How long a check may wait for a free slot before it is refused as busy: long enough for a
/// burst of first logins (a mail client's reconnect after an outage, 100 accounts at once takes
/// about 2 s on 2 cores) to be served rather than refused.
const HASH_QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Checks that may wait for a slot, per slot; more are refused at once. A waiting check holds a
/// few hundred bytes, not the 19 MiB of a running one.
const HASH_QUEUE_PER_SLOT: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Failed(String),
    /// Every slot is taken and the queue is full or did not move in time: try again shortly.
    #[error("the server is busy checking passwords; try again in a second")]
    Busy,
}

/// The slots for argon2 computations: each holds [`HASH_MEMORY_KIB`] while it runs, so their
/// number bounds the memory an unauthenticated flood of logins can make the process use. They
/// run on as many threads of their own: the allocator keeps a thread's freed 19 MiB for that
/// thread's next use, so on the (512-thread) blocking pool the memory kept would grow with the
/// number of threads that ever hashed, not with the slots (a flood measured 393 MiB that way).
struct HashGate {
    slots: Arc<Semaphore>,
    capacity: usize,
    waiting: AtomicUsize,
    workers: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

static GATE: OnceLock<HashGate> = OnceLock::new();

/// Sets how many argon2 computations may run at once (before the first one; later calls are
/// ignored). The process's memory for hashing is at most `concurrency` × 19 MiB.
pub fn set_hash_concurrency(concurrency: usize) {
    let _ = GATE.set(HashGate::new(concurrency));
}

impl HashGate {
    fn new(concurrency: usize) -> Self {
        let capacity = concurrency.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for index in 0..capacity {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("pushmail-argon2-{index}"))
                .spawn(move || {
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A job reports its own result; a panic in one must not end the thread.
                            Ok(job) => {
                                drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)))
                            }
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "a password-hashing thread could not start");
            }
        }
        Self {
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            waiting: AtomicUsize::new(0),
            workers: std::sync::Mutex::new(jobs),
        }
    }

    fn get() -> &'static Self {
        GATE.get_or_init(|| Self::new(DEFAULT_HASH_CONCURRENCY))
    }

    /// Runs `work` on a hashing thread once a slot is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst)
                    >= self.capacity * HASH_QUEUE_PER_SLOT
                {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(HashError::Busy);
                }
                let waited =
                    tokio::time::timeout(HASH_QUEUE_WAIT, self.slots.clone().acquire_owned()).await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                match waited {
                    Ok(Ok(permit)) => permit,
                    _ => return Err(HashError::Busy),
                }
            }
        };
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _slot = permit;
            let _ = done.send(work());
        });
        let sent = match self.workers.lock() {
            Ok(workers) => workers.send(job).is_ok(),
            Err(_) => false,
        };
        if !sent {
            return Err(HashError::Failed("the hashing threads are gone".into()));
        }
        result
            .await
            .map_err(|_| HashError::Failed("the hashing thread stopped".into()))
    }
}

fn hasher() -> Argon2<'static> {
    // OWASP's first argon2id choice: 19 MiB, 2 passes, 1 lane.
    let params =
        Params::new(HASH_MEMORY_KIB, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string (`$argon2id$v=19$...`) for the password, with a fresh random salt; the argon2
/// memory is this thread's reused buffer (see [`verify_password`]).
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError::Failed(e.to_string());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| failed(&e))?;
    let argon2 = hasher();
    let params = argon2.params().clone();
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut output, blocks)
    })
    .map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

/// A PHC string for the password, computed on the blocking pool (argon2 takes tens of
/// milliseconds of CPU, which must not stall the async workers) in one of the hashing slots.
pub async fn hash_password_off_thread(password: &str) -> Result<String, HashError> {
    let password = password.to_owned();
    HashGate::get()
        .run(move || hash_password(&password))
        .await?
}

/// Checks a password against the account's stored hash, or spends the same work when there is
/// no account; on the blocking pool, in one of the hashing slots.
pub async fn verify_password_off_thread(
    password: &str,
    stored_hash: Option<String>,
) -> Result<bool, HashError> {
    let password = password.to_owned();
    HashGate::get()
        .run(move || match stored_hash {
            Some(hash) => verify_password(&password, &hash),
            None => {
                verify_against_nothing(&password);
                false
            }
        })
        .await
}

/// Checks a password against a stored hash. A hash that does not parse never matches.
///
/// The argon2 memory (19 MiB) comes from a buffer kept per thread and reused, not from a fresh
/// allocation each time: the allocator did not give the freed, oddly aligned 19 MiB back for
/// the next check, and a flood of wrong logins grew the process by 19 MiB a check.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    computed_hash_matches(password, stored_hash).unwrap_or(false)
}

/// Stored hashes are pushmail's own; one asking for far more memory is refused, not computed.
const MAX_VERIFY_MEMORY_KIB: u32 = 4 * HASH_MEMORY_KIB;

fn computed_hash_matches(password: &str, stored_hash: &str) -> Option<bool> {
    let hash = PasswordHash::new(stored_hash).ok()?;
    let params = Params::try_from(&hash).ok()?;
    if params.m_cost() > MAX_VERIFY_MEMORY_KIB {
        return None;
    }
    let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
    let version = match hash.version {
        Some(version) => Version::try_from(version).ok()?,
        None => Version::default(),
    };
    let mut salt = [0u8; 64];
    let salt = hash.salt?.decode_b64(&mut salt).ok()?;
    let expected = hash.hash?;
    let mut computed = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    with_memory(params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, blocks)
    })
    .ok()?;
    // `Output`'s equality is constant-time.
    Some(Output::new(&computed).ok()? == expected)
}

thread_local! {
    /// This thread's argon2 memory, grown to the largest cost seen and kept.
    static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_memory<T>(blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        work(&mut memory[..blocks])
    })
}

/// Spends the same work as a real check, for an account that does not exist, so that an
/// unknown address and a wrong password cannot be told apart by the time they take.
pub fn verify_against_nothing(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("pushmail-no-such-account").unwrap_or_default());
    let _ = verify_password(password, dummy);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_agree_with_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash_password("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(hasher().verify_password(b"correct horse", &parsed).is_ok());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = hasher()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("correct horse", &theirs));
        assert!(!verify_password("correct hors", &theirs));
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct hors", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_gate_runs_at_most_its_capacity_at_once_and_refuses_past_its_queue() {
        let gate = std::sync::Arc::new(HashGate::new(2));
        let running = std::sync::Arc::new(AtomicUsize::new(0));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (gate, running, most) = (gate.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    gate.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        let mut busy = 0;
        for task in tasks {
            if matches!(task.await.unwrap(), Err(HashError::Busy)) {
                busy += 1;
            }
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
        // 2 slots + 64 waiting places: of 200 at once, the rest are refused straight away.
        assert!(busy >= 200 - 2 - 64, "{busy} refused");
    }
}
