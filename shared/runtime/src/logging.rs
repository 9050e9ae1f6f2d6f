//! Log set-up: JSON on Lambda (with the invocation's request id from the runtime's span), text
//! locally; `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a terminal: a log file or collector gets plain text, no escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second call (tests) keeps the first subscriber.
    drop(installed);
}
