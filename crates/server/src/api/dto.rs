//! The request and response bodies and query strings of the API, with their OpenAPI schemas.

use super::ApiError;
use crate::serve::FileStatus;
use bulkhead_core::store::{RunStatus, RunSummary};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A workflow as the API lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowInfo {
    /// Its name.
    pub name: String,
    /// `description:`.
    pub description: Option<String>,
    /// The file it comes from.
    pub file: String,
    /// SHA-256 of the active version's file.
    pub hash: String,
    /// Number of tasks.
    pub tasks: usize,
    /// Cron expressions.
    pub schedule: Vec<String>,
    /// Time zone of the schedule.
    pub timezone: Option<String>,
    /// Catch-up policy.
    pub catchup: Option<String>,
    /// Next scheduled time (RFC 3339).
    pub next_fire_at: Option<String>,
    /// Why the file's latest version does not load (the active version is the last good one).
    pub error: Option<String>,
    /// The next (at most five) scheduled times, in the schedule's time zone (RFC 3339 with its
    /// offset).
    pub next_fires: Vec<String>,
    /// The declared run parameters, by name, in the order written (`params:`; empty: the
    /// workflow takes any parameters).
    #[schema(value_type = Object)]
    pub params: indexmap::IndexMap<String, ParamInfo>,
    /// Its latest runs, newest first (at most [`RECENT_RUNS`]).
    pub recent: Vec<RunBrief>,
    /// Of the ended runs among `recent`, the share that succeeded (0 to 1); `null` when none
    /// has ended.
    pub success_rate: Option<f64>,
}

/// Runs listed per workflow in [`WorkflowInfo::recent`].
pub const RECENT_RUNS: usize = 20;

/// A run parameter as a workflow declares it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParamInfo {
    /// `string`, `integer`, `number` or `boolean`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value when a run gives none.
    #[schema(value_type = Object)]
    pub default: Option<serde_json::Value>,
    /// What it means.
    pub description: Option<String>,
    /// Every run must give it.
    pub required: bool,
    /// The only values allowed, if set.
    #[serde(rename = "enum")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub allowed: Option<Vec<serde_json::Value>>,
}

impl From<&bulkhead_core::workflow::params::ParamSpec> for ParamInfo {
    fn from(p: &bulkhead_core::workflow::params::ParamSpec) -> Self {
        ParamInfo {
            kind: p.kind.as_str().to_string(),
            default: p.default.clone(),
            description: p.description.clone(),
            required: p.required,
            allowed: p.allowed.clone(),
        }
    }
}

/// One run in a workflow's strip of recent runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunBrief {
    /// The run's id.
    pub run_id: String,
    /// Its status.
    pub status: String,
    /// When it started or is due (RFC 3339).
    pub at: Option<String>,
}

/// `GET /api/workflows`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowList {
    /// Active workflows.
    pub workflows: Vec<WorkflowInfo>,
    /// Workflow files whose latest version does not load.
    pub broken_files: Vec<FileStatus>,
}

/// `POST /api/runs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// The name of a loaded workflow (400 if none has it).
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.-]+$")]
    pub workflow: String,
    /// Run parameters (an object; null or absent: none).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
    /// When to run (RFC 3339); now if absent. At most 5 minutes in the past (clock skew) and
    /// 366 days ahead.
    #[schema(format = DateTime)]
    pub at: Option<String>,
}

/// A `POST /api/runs` body, decoded and checked (all but whether the workflow is loaded).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedTrigger {
    /// The workflow's name.
    pub workflow: String,
    /// The run parameters (an object).
    pub params: serde_json::Value,
    /// When it is due (ms since the epoch); `None`: now.
    pub due_at: Option<i64>,
}

impl DecodedTrigger {
    /// Decodes `body` as a [`TriggerRequest`] at time `now_ms`; every refusal is a 400 that
    /// names the field (or says the body is not one).
    pub fn decode(body: &[u8], now_ms: i64) -> Result<DecodedTrigger, ApiError> {
        let req: TriggerRequest = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
        let params = match req.params {
            None | Some(serde_json::Value::Null) => serde_json::json!({}),
            Some(p @ serde_json::Value::Object(_)) => p,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "field `params`: must be a JSON object",
                ))
            }
        };
        let due_at = match &req.at {
            None => None,
            Some(at) => Some(
                bulkhead_core::trigger::due_time(at, now_ms)
                    .map_err(|e| ApiError::bad_request(format!("field `at`: {e}")))?,
            ),
        };
        Ok(DecodedTrigger {
            workflow: req.workflow,
            params,
            due_at,
        })
    }
}

/// `201` answer to `POST /api/runs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Triggered {
    /// The id the run will have.
    pub run_id: String,
    /// The workflow.
    pub workflow: String,
    /// When it is due (RFC 3339).
    pub due_at: String,
}

/// `GET /api/runs` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs with this status.
    #[param(value_type = Option<RunStatus>)]
    pub status: Option<String>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (a run id).
    pub cursor: Option<String>,
    /// Only runs created (or, not started yet, triggered) before this time (RFC 3339). Run ids
    /// are UUIDv7, whose first 48 bits are their creation time: this is a cursor at that time.
    #[param(format = DateTime)]
    pub until: Option<String>,
}

/// `GET /api/runs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// Runs, newest first.
    pub runs: Vec<RunSummary>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `GET /api/runs/{run_id}` query: without it, every task; with it, one page of tasks in file
/// order.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Only tasks after this one (`next_task_after` of the previous page).
    pub task_after: Option<String>,
    /// At most this many tasks.
    #[param(minimum = 1, maximum = 10000)]
    pub task_limit: Option<usize>,
}

/// `GET /api/runs/{run_id}/tasks/{task}/logs` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// At most this many bytes of each attempt's log, its end (default 4 MiB).
    #[param(minimum = 1, maximum = 67108864)]
    pub max_bytes: Option<usize>,
}

/// One attempt's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptLogBody {
    /// Attempt number.
    pub attempt: u32,
    /// Its stderr (its last `max_bytes` bytes if `truncated`).
    pub log: String,
    /// Whether the beginning of the log was left out (see `max_bytes`).
    pub truncated: bool,
    /// The attempt is running on this host: `log` is what it has written so far.
    pub running: bool,
}

/// `GET /api/runs/{run_id}/tasks/{task}/logs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskLogs {
    /// The run.
    pub run_id: String,
    /// The task.
    pub task: String,
    /// Its status.
    pub status: String,
    /// Its output: any JSON value, null unless it succeeded.
    #[schema(value_type = serde_json::Value)]
    pub output: bulkhead_core::contract::OutputJson,
    /// Every attempt's log.
    pub attempts: Vec<AttemptLogBody>,
}

/// Answer to cancel and retry. `status` is `cancelling` (the host running the run was asked),
/// `cancelled` (it was not running, or not started: it never will), or `retrying`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The run.
    pub run_id: String,
    /// What happens now.
    pub status: String,
}

/// One host of `GET /api/hosts`: a `bulkhead serve` process on this store whose heartbeat is
/// recent.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostInfo {
    /// Its owner id (`host:pid:nonce`), as the leases of its runs name it.
    pub owner: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Its last heartbeat (RFC 3339; the database's clock on PostgreSQL).
    pub last_seen: String,
    /// Attempts it may run at once.
    pub slots: u32,
    /// Attempts running now.
    pub slots_in_use: u32,
    /// Runs it executes now.
    pub runs: u32,
}

/// `GET /api/hosts`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostList {
    /// The hosts alive (a heartbeat in the last 15 s), by owner id.
    pub hosts: Vec<HostInfo>,
}

impl From<bulkhead_core::store::HostBeat> for HostInfo {
    fn from(b: bulkhead_core::store::HostBeat) -> HostInfo {
        HostInfo {
            owner: b.owner,
            started_at: bulkhead_core::store::rfc3339(b.started_at),
            last_seen: bulkhead_core::store::rfc3339(b.last_seen),
            slots: b.slots,
            slots_in_use: b.slots_in_use,
            runs: b.runs,
        }
    }
}
