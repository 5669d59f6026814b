//! `GET /api/events` and `GET /api/runs/{run_id}/events`: live events as Server-Sent Events.
//! Each event's name is its `kind` and its data the [`LiveEvent`] as JSON. A client that falls
//! behind gets a `lagged` event (reload what you show) and the stream goes on; a stopping
//! server ends every stream, and browsers reconnect by themselves.

use super::Api;
use crate::serve::LiveEvent;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Query of `GET /api/events`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events of this run.
    pub run: Option<String>,
    /// Only events of this workflow's runs (the events of a run this host resumed after a
    /// restart name no workflow, and are left out).
    pub workflow: Option<String>,
}

#[utoipa::path(get, path = "/api/events", params(EventsQuery), responses((status = 200, description = "An endless stream of live events (Server-Sent Events): the event name is the `kind` (`run_triggered`, `attempt_started`, `attempt_finished`, `task_skipped`, `run_cancelling`, `run_finished`, or `lagged` when this client fell behind and should reload), the data a LiveEvent as JSON. Comments keep the connection alive. Events of runs on this host only.", content_type = "text/event-stream", body = LiveEvent), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = super::ErrorBody)))]
pub(super) async fn events(
    State(api): State<Api>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, super::ApiError> {
    let Query(q) = query
        .map_err(|e| super::ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    Ok(stream(api, q.run, q.workflow))
}

#[utoipa::path(get, path = "/api/runs/{run_id}/events", params(("run_id" = String, Path, description = "The run's id")), responses((status = 200, description = "The live events of one run (Server-Sent Events; as `/api/events?run=`)", content_type = "text/event-stream", body = LiveEvent), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = super::ErrorBody)))]
pub(super) async fn run_events(
    State(api): State<Api>,
    Path(run_id): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    stream(api, Some(run_id), None)
}

fn stream(
    api: Api,
    run: Option<String>,
    workflow: Option<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = api.server.live.subscribe();
    let drain = api.server.stop.drain.clone();
    let wanted = move |e: &LiveEvent| {
        run.as_ref().is_none_or(|r| *r == e.run_id)
            && workflow
                .as_ref()
                .is_none_or(|w| e.workflow.as_deref() == Some(w.as_str()))
    };
    let events = futures_util::stream::unfold((rx, drain), move |(mut rx, drain)| {
        let wanted = wanted.clone();
        async move {
            loop {
                let next = tokio::select! {
                    _ = drain.cancelled() => return None,
                    next = rx.recv() => next,
                };
                let event = match next {
                    Ok(e) if wanted(&e) => to_sse(&e),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => Event::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{n}}}")),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(event), (rx, drain)));
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn to_sse(e: &Arc<LiveEvent>) -> Event {
    let data = serde_json::to_string(&**e).unwrap_or_else(|_| "{}".to_string());
    Event::default().event(e.kind).data(data)
}
