//! What an attempt may use (limits) and what it is given (grants). Plain data: the defaults are
//! written here, in one place, and documented in docs/limits.md.

use std::path::PathBuf;
use std::time::Duration;

/// The largest linear memory a plugin may be given (wasm32 addresses 4 GiB).
pub const MAX_MEMORY: u64 = 4 << 30;

/// The largest fuel budget (wasmtime keeps fuel in a signed 64-bit counter).
pub const MAX_FUEL: u64 = i64::MAX as u64;

/// Per-attempt resource limits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// CPU budget in wasmtime fuel units (about one per wasm instruction).
    pub fuel: u64,
    /// Cap on linear memory, in bytes.
    pub memory: u64,
    /// Wall-clock limit for the whole attempt.
    pub timeout: Duration,
    /// Cap on stdout (the task's output), in bytes. Going over fails the attempt.
    pub max_output: u64,
    /// Cap on stderr (the attempt's log), in bytes. Going over drops the rest, with a marker.
    pub max_logs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000_000,
            memory: 64 << 20,
            timeout: Duration::from_secs(30),
            max_output: 1 << 20,
            max_logs: 1 << 20,
        }
    }
}

/// Host resources granted to an attempt. The default grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grants {
    /// Environment variables, exactly these and no others.
    pub env: Vec<(String, String)>,
    /// Host directories visible to the plugin.
    pub mounts: Vec<Mount>,
}

/// A host directory made visible at a guest path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// Absolute host path of the directory.
    pub host: PathBuf,
    /// Absolute path inside the sandbox, e.g. `/data`.
    pub guest: String,
    /// Whether the plugin may create, change and delete files under it.
    pub writable: bool,
    /// Device and inode of the directory when the workflow was validated: every attempt checks
    /// it still opens that directory.
    pub identity: (u64, u64),
}
