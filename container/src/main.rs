//! pushmail on one machine: the Subscribe URL and the admin API served from the same routers as
//! the Lambdas, on an embedded store (default) or DynamoDB, with the activation sweep running
//! in-process; and the operator's commands (bootstrap, seed, sign). The IMAP/SMTP
//! listeners and the notice dispatcher join this process.

mod commands;
mod hints;
mod mail;
mod probe;
mod serve;
mod tls;

use clap::{Parser, Subcommand};
use pushmail_runtime::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "pushmail",
    version,
    about = "pushmail on one machine: the Subscribe URL and the admin API (with no command: serve them)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(flatten)]
    serve: serve::ServeOptions,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a server-wide admin token, print it (only now) and exit.
    Bootstrap(commands::Bootstrap),
    /// Turn push on server-wide and for an account's domain, add a push secret, and create the
    /// account (or reset its password).
    Seed(commands::SeedArgs),
    /// Print the X-Push-Timestamp and X-Push-Signature headers for the body on standard input.
    Sign(commands::Sign),
    /// Check a deployment (or this machine's process) end to end: SUBSCRIBE, a mail over SMTP,
    /// its NEW_MAIL notice and IMAP EXISTS, UNSUBSCRIBE; each step timed, exit status 1 if one
    /// failed.
    Probe(probe::Probe),
}

/// mimalloc in every build, v2: the listener allocates per command on every worker, and
/// mimalloc's per-thread heaps take no lock for it, where musl's allocator (the image's static
/// build) takes one for every allocation of every thread and glibc's arenas were contended by the
/// workers and the store's writer (a fifth less CPU per IMAP command: docs/benchmarks.md). Not
/// v3: it holds freed memory for a second before it gives it back. SMTP DATA keeps messages in
/// chunks that never move, so what the allocator holds under big messages stays with the DATA
/// budget (`tests/process_memory.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long a store call still blocking a thread may delay the exit once everything else stopped.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        match cli.command {
            None => serve::run(cli.settings, cli.serve).await,
            Some(Command::Bootstrap(args)) => commands::bootstrap(args).await,
            Some(Command::Seed(args)) => commands::seed(args).await,
            Some(Command::Sign(args)) => commands::sign(args),
            Some(Command::Probe(args)) => probe::probe(args).await,
        }
    });
    // Dropping the runtime would wait for blocking tasks without end: a stopped process exits.
    runtime.shutdown_timeout(EXIT_GRACE);
    result
}
