//! The HTTP API of `bulkhead serve` (DESIGN.md section 5): JSON under `/api`, `/healthz`,
//! `/metrics` (Prometheus) and `/api/openapi.json`. Errors map to responses in one place
//! ([`ApiError`]) and never carry internal details.

use crate::report::RunReport;
use crate::serve::{FileStatus, PluginStatus, Server};
use crate::store::{RunFilter, RunStatus, RunSummary, StoreError};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
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
            StoreError::Held { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
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
    /// The workflow's name.
    pub workflow: String,
    /// Run parameters (an object).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Option<serde_json::Value>,
    /// When to run (RFC 3339); now if absent.
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
pub struct RunsQuery {
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs with this status.
    pub status: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
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
    /// Its output.
    #[schema(value_type = Object)]
    pub output: serde_json::Value,
    /// Every attempt's log.
    pub attempts: Vec<AttemptLogBody>,
}

/// Answer to cancel and retry.
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

/// The router.
pub fn router(server: Arc<Server>, token: Option<String>) -> Router {
    let api = Api {
        server,
        token: token.map(Arc::from),
    };
    Router::new()
        .route("/", get(ui))
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
        .layer(middleware::from_fn_with_state(api.clone(), authorize))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

/// Mutating calls need `Authorization: Bearer TOKEN` when a token is configured.
async fn authorize(
    State(api): State<Api>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let (true, Some(token)) = (mutating, &api.token) {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
                .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The web UI: one page over this API (workflows, plugins, runs, a run's tasks and logs,
/// trigger, cancel, retry). Everything the server sends is rendered as text, never as HTML.
async fn ui() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
            ),
        ],
        include_str!("ui.html"),
    )
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The server is up")))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(api): State<Api>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api.server.metrics.render(),
    )
}

#[utoipa::path(get, path = "/api/workflows", responses((status = 200, body = WorkflowList)))]
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

#[utoipa::path(get, path = "/api/plugins", responses((status = 200, body = [PluginStatus])))]
async fn list_plugins(State(api): State<Api>) -> Json<Vec<PluginStatus>> {
    let catalog = api.server.catalog.read().unwrap_or_else(|e| e.into_inner());
    Json(catalog.plugins.values().cloned().collect())
}

#[utoipa::path(post, path = "/api/runs", request_body = TriggerRequest, security(("bearer" = [])),
    responses((status = 201, body = Triggered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn create_run(
    State(api): State<Api>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Triggered>)> {
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
            chrono::DateTime::parse_from_rfc3339(at)
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "field `at`: `{at}` is not an RFC 3339 time ({e})"
                    ))
                })?
                .timestamp_millis(),
        ),
    };
    let run_id = api.server.trigger(&req.workflow, params, due_at).await?;
    let due = due_at.unwrap_or_else(|| api.server.clock.now_ms());
    Ok((
        StatusCode::CREATED,
        Json(Triggered {
            run_id,
            workflow: req.workflow,
            due_at: crate::store::rfc3339(due),
        }),
    ))
}

#[utoipa::path(get, path = "/api/runs", params(RunsQuery), responses((status = 200, body = RunPage), (status = 400, body = ErrorBody)))]
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
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(ApiError::bad_request(
            "query parameter `limit`: must be between 1 and 500",
        ));
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

#[utoipa::path(get, path = "/api/runs/{run_id}", responses((status = 200, body = RunReport), (status = 404, body = ErrorBody)))]
async fn get_run(State(api): State<Api>, Path(run_id): Path<String>) -> ApiResult<Json<RunReport>> {
    match api.server.store.load(&run_id).await {
        Ok(run) => Ok(Json(RunReport::from_stored(&run))),
        Err(StoreError::UnknownRun(_)) => match api.server.store.trigger_of_run(&run_id).await? {
            Some(t) => Ok(Json(RunReport::pending(&t.run_id, &t.workflow, t.due_at))),
            None => Err(ApiError::not_found(format!("no run `{run_id}`"))),
        },
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/runs/{run_id}/tasks/{task}/logs", responses((status = 200, body = TaskLogs), (status = 404, body = ErrorBody)))]
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

#[utoipa::path(post, path = "/api/runs/{run_id}/cancel", security(("bearer" = [])),
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn cancel_run(
    State(api): State<Api>,
    Path(run_id): Path<String>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let status = api
        .server
        .store
        .request_cancel(&run_id, crate::store::now_ms())
        .await?;
    let status = match status {
        RunStatus::Running => "cancelling",
        other => other.as_str(),
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            run_id,
            status: status.into(),
        }),
    ))
}

#[utoipa::path(post, path = "/api/runs/{run_id}/tasks/{task}/retry", security(("bearer" = [])),
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry_task(
    State(api): State<Api>,
    Path((run_id, task)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let run = api.server.store.load(&run_id).await?;
    let Some(t) = run.tasks.iter().find(|t| t.task == task) else {
        return Err(ApiError::not_found(format!(
            "run `{run_id}` has no task `{task}`"
        )));
    };
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
