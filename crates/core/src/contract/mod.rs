//! The data the executor and the sandbox exchange: what an attempt may use ([`Limits`]), what it
//! is given ([`Grants`]) and what came of it ([`AttemptOutcome`], [`Failure`]). Plain data, with
//! no wasmtime in it, so the executor and the sandbox agree on it without knowing each other.

mod limits;
mod outcome;
mod output;

pub use bulkhead_abi::FailureKind;
pub use limits::{Grants, HttpGrant, Limits, Mount, Origin, MAX_FUEL, MAX_MEMORY};
pub use outcome::{AttemptOutcome, Failure};
pub use output::OutputJson;
