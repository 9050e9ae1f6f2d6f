//! pushmail's settings and wiring, shared by the Lambda mains and the one process: one
//! settings type, AWS clients loaded once, the store, mailer and services built in one place,
//! logging, and the demo seed.

pub mod aws;
pub mod logging;
pub mod seed;
pub mod settings;
pub mod wire;

pub use settings::{Settings, on_lambda};
pub use wire::{Services, open, open_on_aws};
