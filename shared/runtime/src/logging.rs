//! Log set-up: JSON on Lambda (with the invocation's request id from the runtime's span), text
//! locally; `RUST_LOG` filters by target and level (`info`, `pushmail_imap=debug,warn`), without
//! `EnvFilter`'s span and regex syntax: its regex engine would weigh on every Lambda.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::LogFormat;

/// `RUST_LOG` as targets and levels; `info` when it is unset or not of that form.
fn filter() -> Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|wanted| wanted.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

pub fn init_tracing(format: LogFormat) {
    // Colour only for a terminal: a log file or collector gets plain text, no escape codes.
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .finish()
            .with(filter())
            .try_init(),
        LogFormat::Text => builder.finish().with(filter()).try_init(),
    };
    // A second call (tests) keeps the first subscriber.
    drop(installed);
}
