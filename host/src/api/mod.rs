//! The HTTP API of `bulkhead serve` (DESIGN.md section 5): JSON under `/api`, `/healthz`,
//! `/metrics` (Prometheus) and `/api/openapi.json`. Errors map to responses in one place
//! ([`ApiError`]) and never carry internal details.

use crate::report::RunReport;
use crate::serve::{FileStatus, PluginStatus, Server};
use crate::store::{RunFilter, RunStatus, RunSummary, StoreError};
mod guard;

use crate::store::CancelOutcome;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 << 10;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct Api {
    server: Arc<Server>,
    token: Option<Arc<str>>,
    /// Reads need the token too.
    token_for_reads: bool,
    /// The address the server listens on (no-token mode serves only requests for it).
    listen: std::net::SocketAddr,
}

/// An error response: `{"error": "..."}` with a status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, and how to fix it.
    pub error: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownRun(id) => ApiError::not_found(format!("no run `{id}`")),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            // Never the holder's name: it carries the host name and process id.
            StoreError::Held { run_id, until, .. } => ApiError::new(
                StatusCode::CONFLICT,
                format!("run `{run_id}` is being run by a host until {until}; try again later"),
            ),
            other => {
                tracing::error!(error = %other, "state store error while serving a request");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

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
}

/// `GET /api/runs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// Runs, newest first.
    pub runs: Vec<RunSummary>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// One attempt's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptLogBody {
    /// Attempt number.
    pub attempt: u32,
    /// Its stderr.
    pub log: String,
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
    pub output: serde_json::Value,
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

#[derive(OpenApi)]
#[openapi(
    info(title = "Bulkhead API", description = "Trigger, watch and remediate runs of sandboxed WebAssembly workflows."),
    paths(list_workflows, list_plugins, create_run, list_runs, get_run, task_logs, cancel_run, retry_task, healthz, metrics),
    components(schemas(ErrorBody, WorkflowInfo, WorkflowList, FileStatus, PluginStatus, TriggerRequest, Triggered, RunPage, RunSummary, TaskLogs, AttemptLogBody, Accepted, RunReport)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// Who may call the API.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The bearer token mutating calls need (none: loopback only, see `guard`).
    pub token: Option<String>,
    /// Whether reads need the token too (all but `/healthz` and the UI's files).
    pub token_for_reads: bool,
}

/// The router of a server listening on `listen` (the bound address).
pub fn router(server: Arc<Server>, access: Access, listen: std::net::SocketAddr) -> Router {
    let api = Api {
        server,
        token: access.token.map(Arc::from),
        token_for_reads: access.token_for_reads,
        listen,
    };
    Router::new()
        .route("/", get(ui))
        .route("/ui.js", get(ui_js))
        .route("/ui.css", get(ui_css))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(
            "/api/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], openapi_json()) }),
        )
        .route("/api/workflows", get(list_workflows))
        .route("/api/plugins", get(list_plugins))
        .route("/api/runs", get(list_runs).post(create_run))
        .route("/api/runs/{run_id}", get(get_run))
        .route("/api/runs/{run_id}/tasks/{task}/logs", get(task_logs))
        .route("/api/runs/{run_id}/cancel", post(cancel_run))
        .route("/api/runs/{run_id}/tasks/{task}/retry", post(retry_task))
        .fallback(|| async { ApiError::not_found("no such endpoint (see /api/openapi.json)") })
        .layer(middleware::from_fn_with_state(
            api.clone(),
            guard::authorize,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(guard::json_errors))
        .with_state(api)
}

/// The content security policy of the UI: no inline script or style, nothing from elsewhere,
/// never framed (clickjacking).
const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The web UI: one page over this API (workflows, plugins, runs, a run's tasks and logs,
/// trigger, cancel, retry). Everything the server sends is rendered as text, never as HTML.
async fn ui() -> impl IntoResponse {
    asset("text/html; charset=utf-8", include_str!("ui.html"))
}

async fn ui_js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", include_str!("ui.js"))
}

async fn ui_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", include_str!("ui.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, UI_CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The server is up", body = Object), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format 0.0.4, or OpenMetrics 1.0 when the Accept header asks for `application/openmetrics-text`", content((String = "text/plain"), (String = "application/openmetrics-text"))), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn metrics(State(api): State<Api>, headers: HeaderMap) -> impl IntoResponse {
    match api.server.store.pending_triggers().await {
        Ok(n) => {
            api.server.metrics.pending_triggers.set(n as i64);
        }
        Err(e) => tracing::warn!(error = %e, "cannot count pending triggers for /metrics"),
    }
    let openmetrics = api.server.metrics.render();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if crate::metrics::wants_openmetrics(accept) {
        (
            [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
            openmetrics,
        )
    } else {
        (
            [(header::CONTENT_TYPE, crate::metrics::TEXT_CONTENT_TYPE)],
            crate::metrics::to_text_format(&openmetrics),
        )
    }
}

#[utoipa::path(get, path = "/api/workflows", responses((status = 200, description = "Loaded workflows and broken workflow files", body = WorkflowList), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn list_workflows(State(api): State<Api>) -> Json<WorkflowList> {
    let now = api.server.clock.now_ms();
    let catalog = api
        .server
        .catalog
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let error_of = |name: &str| {
        catalog
            .files
            .values()
            .find(|f| f.workflow.as_deref() == Some(name))
            .and_then(|f| f.error.clone())
    };
    let workflows = catalog
        .workflows
        .iter()
        .map(|(name, l)| {
            let wf = &l.workflow;
            let s = wf.schedule.as_ref();
            WorkflowInfo {
                name: name.clone(),
                description: wf.description.clone(),
                file: wf.file.display().to_string(),
                hash: wf.hash.clone(),
                tasks: wf.tasks.len(),
                schedule: s.map(|s| s.expressions.clone()).unwrap_or_default(),
                timezone: s.map(|s| s.timezone.name().to_string()),
                catchup: s.map(|s| format!("{:?}", s.catchup).to_lowercase()),
                next_fire_at: s.and_then(|s| s.next_after(now)).map(crate::store::rfc3339),
                error: error_of(name),
            }
        })
        .collect();
    let broken_files = catalog
        .files
        .values()
        .filter(|f| f.error.is_some())
        .cloned()
        .collect();
    Json(WorkflowList {
        workflows,
        broken_files,
    })
}

#[utoipa::path(get, path = "/api/plugins", responses((status = 200, description = "Plugins of the plugin folder", body = [PluginStatus]), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn list_plugins(State(api): State<Api>) -> Json<Vec<PluginStatus>> {
    let catalog = api.server.catalog.read().unwrap_or_else(|e| e.into_inner());
    Json(catalog.plugins.values().cloned().collect())
}

#[utoipa::path(post, path = "/api/runs", request_body = TriggerRequest, security(("bearer" = [])),
    responses((status = 201, description = "The run is recorded; it starts when due", body = Triggered,
        headers(("Location" = String, description = "The run: `/api/runs/{run_id}`"))), (status = 400, description = "The body or a field is invalid (named in the error)", body = ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody), (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody), (status = 415, description = "The body is not `application/json`", body = ErrorBody), (status = 503, description = "The server is shutting down", body = ErrorBody)))]
async fn create_run(
    State(api): State<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(
    StatusCode,
    [(header::HeaderName, String); 1],
    Json<Triggered>,
)> {
    if !guard::is_json(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON, sent with `Content-Type: application/json`",
        ));
    }
    let req: TriggerRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    if api.server.stop.drain.is_cancelled() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        ));
    }
    if api.server.workflow(&req.workflow).is_none() {
        let names: Vec<String> = api
            .server
            .catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .workflows
            .keys()
            .cloned()
            .collect();
        let hint = crate::suggest::did_you_mean(&req.workflow, names.iter().map(String::as_str));
        return Err(ApiError::bad_request(format!(
            "field `workflow`: no workflow named `{}` is loaded{hint}",
            req.workflow
        )));
    }
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
            crate::trigger::due_time(at, api.server.clock.now_ms())
                .map_err(|e| ApiError::bad_request(format!("field `at`: {e}")))?,
        ),
    };
    let run_id = api.server.trigger(&req.workflow, params, due_at).await?;
    let due = due_at.unwrap_or_else(|| api.server.clock.now_ms());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/runs/{run_id}"))],
        Json(Triggered {
            run_id,
            workflow: req.workflow,
            due_at: crate::store::rfc3339(due),
        }),
    ))
}

#[utoipa::path(get, path = "/api/runs", params(RunsQuery), responses((status = 200, description = "A page of runs, newest first", body = RunPage), (status = 400, description = "A query parameter is invalid (named in the error)", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn list_runs(
    State(api): State<Api>,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<RunPage>> {
    let Query(q) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "query parameter `status`: `{s}` is not one of pending, running, interrupted, succeeded, failed, cancelled"
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(50) as usize;
    if limit == 0 || limit > 500 {
        return Err(ApiError::bad_request(
            "query parameter `limit`: must be between 1 and 500",
        ));
    }
    if let Some(c) = &q.cursor {
        if uuid::Uuid::try_parse(c).is_err() {
            return Err(ApiError::bad_request(format!(
                "query parameter `cursor`: `{c}` is not a run id; pass the `next_cursor` of the previous page"
            )));
        }
    }
    let mut runs = api
        .server
        .store
        .list(&RunFilter {
            workflow: q.workflow,
            status,
            limit: limit + 1,
            before: q.cursor,
        })
        .await?;
    let next_cursor = if runs.len() > limit {
        runs.truncate(limit);
        runs.last().map(|r| r.run_id.clone())
    } else {
        None
    };
    Ok(Json(RunPage { runs, next_cursor }))
}

#[utoipa::path(get, path = "/api/runs/{run_id}", params(("run_id" = String, Path, description = "The run's id")), responses((status = 200, description = "The run report", body = RunReport), (status = 404, description = "No such run (or task)", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn get_run(State(api): State<Api>, Path(run_id): Path<String>) -> ApiResult<Json<RunReport>> {
    let trigger = || api.server.store.trigger_of_run(&run_id);
    match api.server.store.load(&run_id).await {
        Ok(run) => {
            let mut report = RunReport::from_stored(&run);
            report.due_at = trigger().await?.map(|t| crate::store::rfc3339(t.due_at));
            Ok(Json(report))
        }
        Err(StoreError::UnknownRun(_)) => match trigger().await? {
            Some(t) if t.stands_for_a_run(api.server.clock.now_ms()) => {
                Ok(Json(RunReport::not_started(&t)))
            }
            _ => Err(ApiError::not_found(format!("no run `{run_id}`"))),
        },
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/runs/{run_id}/tasks/{task}/logs", params(("run_id" = String, Path, description = "The run's id"), ("task" = String, Path, description = "The task's id")), responses((status = 200, description = "The task's status, output and every attempt's log", body = TaskLogs), (status = 404, description = "No such run (or task)", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn task_logs(
    State(api): State<Api>,
    Path((run_id, task)): Path<(String, String)>,
) -> ApiResult<Json<TaskLogs>> {
    let run = api.server.store.load(&run_id).await?;
    let Some(t) = run.tasks.iter().find(|t| t.task == task) else {
        return Err(ApiError::not_found(format!(
            "run `{run_id}` has no task `{task}`"
        )));
    };
    let logs = api.server.store.logs(&run_id, Some(&task), None).await?;
    Ok(Json(TaskLogs {
        run_id,
        task,
        status: t.state.as_str().to_string(),
        output: t.output.clone().unwrap_or(serde_json::Value::Null),
        attempts: logs
            .into_iter()
            .map(|l| AttemptLogBody {
                attempt: l.attempt,
                log: l.log,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/api/runs/{run_id}/cancel", params(("run_id" = String, Path, description = "The run's id")), security(("bearer" = [])),
    responses((status = 202, description = "Cancelled, or its host was asked to cancel it", body = Accepted), (status = 401, description = "Missing or wrong bearer token", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody), (status = 404, description = "No such run (or task)", body = ErrorBody), (status = 409, description = "The run already ended, or is starting right now", body = ErrorBody), (status = 415, description = "The body is not `application/json`", body = ErrorBody)))]
async fn cancel_run(
    State(api): State<Api>,
    Path(run_id): Path<String>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let outcome = api
        .server
        .store
        .request_cancel(&run_id, crate::store::now_ms())
        .await?;
    let status = match outcome {
        CancelOutcome::Asked => "cancelling",
        CancelOutcome::Cancelled => "cancelled",
        CancelOutcome::AlreadyEnded(status) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "run `{run_id}` already ended ({}); there is nothing to cancel",
                    status.as_str()
                ),
            ))
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            run_id,
            status: status.into(),
        }),
    ))
}

#[utoipa::path(post, path = "/api/runs/{run_id}/tasks/{task}/retry", params(("run_id" = String, Path, description = "The run's id"), ("task" = String, Path, description = "The task's id")), security(("bearer" = [])),
    responses((status = 202, description = "The task runs again, with the dependents it skipped", body = Accepted), (status = 401, description = "Missing or wrong bearer token", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody), (status = 404, description = "No such run (or task)", body = ErrorBody), (status = 409, description = "The task is not failed or cancelled, or the run is still going", body = ErrorBody), (status = 415, description = "The body is not `application/json`", body = ErrorBody), (status = 503, description = "The server is shutting down", body = ErrorBody)))]
async fn retry_task(
    State(api): State<Api>,
    Path((run_id, task)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    if api.server.stop.drain.is_cancelled() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        ));
    }
    let run = api.server.store.load(&run_id).await?;
    let Some(t) = run.tasks.iter().find(|t| t.task == task) else {
        return Err(ApiError::not_found(format!(
            "run `{run_id}` has no task `{task}`"
        )));
    };
    if !run.status.is_final() || api.server.host.is_active(&run_id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "run `{run_id}` is {}; a task can be retried once the run has ended",
                match api.server.host.is_active(&run_id) {
                    true => "still finishing",
                    false => run.status.as_str(),
                }
            ),
        ));
    }
    if !matches!(
        t.state,
        crate::store::TaskState::Failed | crate::store::TaskState::Cancelled
    ) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "task `{task}` is {}, not failed; only a failed or cancelled task can be retried",
                t.state.as_str()
            ),
        ));
    }
    api.server.spawn_retry(run_id.clone(), task);
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            run_id,
            status: "retrying".into(),
        }),
    ))
}
