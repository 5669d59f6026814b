//! ABI v2: a plugin that is a WebAssembly component of the `bulkhead:plugin` world
//! (`wit/plugin.wit`). One attempt is a fresh instance and one call of its `run` export, under the
//! same limits as an ABI v1 command; the task is the fields of the ABI v1 input document, and
//! `log` calls become structured records of the attempt's log.

use crate::attempt;
use crate::classify;
use crate::pipes::{CappedPipe, Overflow};
use bulkhead_core::contract::{AttemptOutcome, Failure, FailureKind, Grants, Limits};
use bytes::Bytes;
use serde_json::value::RawValue;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

mod bindings {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../../wit",
        exports: { default: async },
    });
}

use bindings::bulkhead::plugin::types::{ErrorKind, Level};

/// The data of one component attempt's store.
pub struct ComponentState {
    ctx: WasiCtx,
    table: ResourceTable,
    limiter: attempt::MemoryLimiter,
    log: CappedPipe,
    http_ctx: WasiHttpCtx,
    http: super::http::HttpHooks,
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http,
        }
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

impl attempt::Limited for ComponentState {
    fn limiter(&mut self) -> &mut attempt::MemoryLimiter {
        &mut self.limiter
    }
    fn limiter_ref(&self) -> &attempt::MemoryLimiter {
        &self.limiter
    }
}

impl bindings::bulkhead::plugin::types::Host for ComponentState {}

impl bindings::bulkhead::plugin::log::Host for ComponentState {
    fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        self.log.append(&log_record(level, &message, &fields));
    }
}

/// One log call as the JSON line an ABI v1 plugin would write to stderr: `level`, `msg`, then
/// the fields (a field may not replace `level` or `msg`).
fn log_record(level: Level, message: &str, fields: &[(String, String)]) -> Vec<u8> {
    let mut record = serde_json::Map::new();
    let level = match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    };
    record.insert("level".into(), level.into());
    record.insert("msg".into(), message.into());
    for (k, v) in fields {
        if k != "level" && k != "msg" {
            record.insert(k.clone(), v.clone().into());
        }
    }
    let mut line = serde_json::Value::Object(record).to_string().into_bytes();
    line.push(b'\n');
    line
}

/// The linker of every component: WASI 0.2 (with the sandbox's denials), `wasi:http` (every
/// request checked against the task's grant: denied when there is none) and `log`.
pub(super) fn linker(engine: &Engine) -> wasmtime::Result<Linker<ComponentState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    bindings::Plugin::add_to_linker::<_, HasSelf<ComponentState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// A component linked and checked against the `plugin` world.
pub(super) type Pre = bindings::PluginPre<ComponentState>;

/// Links `component`: refused, naming the import, when it imports what the host does not give.
pub(super) fn prepare(
    linker: &Linker<ComponentState>,
    component: &Component,
) -> Result<Pre, String> {
    let pre = linker.instantiate_pre(component).map_err(|e| {
        format!(
            "cannot be linked: {} (a component may import only `bulkhead:plugin/log`, WASI 0.2 and `wasi:http`)",
            classify::root_message(&e)
        )
    })?;
    bindings::PluginPre::new(pre).map_err(|e| {
        format!(
            "does not export the `bulkhead:plugin/plugin` world's `run`: {}",
            classify::root_message(&e)
        )
    })
}

/// What a component imports, by name (`wasi:cli/environment@0.2.6`, `bulkhead:plugin/log@0.1.0`).
pub(super) fn imports(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The ABI v1 input document, read into the fields of the WIT `task`.
type Doc = bulkhead_abi::Input<String, Option<Box<RawValue>>, Box<RawValue>, Box<RawValue>>;

fn task(input: &[Bytes]) -> Result<bindings::bulkhead::plugin::types::Task, Failure> {
    let bytes: Vec<u8> = input.iter().flat_map(|b| b.iter().copied()).collect();
    let doc: Doc = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::new(
            FailureKind::Host,
            format!("the host wrote an input document the component ABI cannot read: {e}"),
        )
    })?;
    Ok(bindings::bulkhead::plugin::types::Task {
        workflow: doc.workflow,
        run_id: doc.run_id,
        task: doc.task,
        attempt: doc.attempt,
        idempotency_key: doc.idempotency_key,
        params: doc.params.get().to_string(),
        run_params: doc
            .run_params
            .map_or_else(|| "null".to_string(), |v| v.get().to_string()),
        inputs: doc.inputs.get().to_string(),
    })
}

pub(super) async fn run(
    engine: &Engine,
    pre: &Pre,
    input: Vec<Bytes>,
    limits: &Limits,
    grants: &Grants,
    tap: Option<&crate::pipes::LogTap>,
) -> AttemptOutcome {
    let task = match task(&input) {
        Ok(t) => t,
        Err(f) => return AttemptOutcome::failed(f),
    };
    drop(input);
    // stdout is not the output here (`run` returns it): it is logged, like stderr.
    let log = CappedPipe::new(limits.max_logs, Overflow::Truncate);
    if let Some(tap) = tap {
        tap.attach(&log);
    }
    let ctx = match attempt::wasi_builder(grants, &log, &log) {
        Ok(mut b) => b.build(),
        Err(f) => return AttemptOutcome::failed(f),
    };
    let mut store = Store::new(
        engine,
        ComponentState {
            ctx,
            table: ResourceTable::new(),
            limiter: attempt::MemoryLimiter::new(limits.memory, COMPONENT_INSTANCES),
            log: log.clone(),
            http_ctx: WasiHttpCtx::new(),
            http: super::http::HttpHooks::new(grants.http.clone(), log.clone()),
        },
    );
    let budget = match attempt::limit(&mut store, limits) {
        Ok(b) => b,
        Err(f) => return AttemptOutcome::failed(f),
    };
    let call = async {
        let plugin = pre.instantiate_async(&mut store).await?;
        plugin.call_run(&mut store, &task).await
    };
    let result = attempt::within(&budget, call).await;
    let spent = attempt::spent(&store, &budget);
    drop(store);

    let log = attempt::finish_log(&log, limits.max_logs);
    let (call, returned) = match result {
        Ok(r) => (Ok(()), Some(r)),
        Err(e) => (Err(e), None),
    };
    let ended = classify::Ended {
        result: call,
        stdout_overflow: false,
        memory_refused: spent.refused,
        limits,
        log: &log,
    };
    let result = classify::classify(ended).and_then(|()| match returned {
        Some(Ok(output)) if output.len() as u64 > limits.max_output => Err(Failure::new(
            FailureKind::OutputTooLarge,
            format!(
                "returned {} bytes of output, more than {} (limits.max_output)",
                output.len(),
                limits.max_output
            ),
        )),
        Some(Ok(output)) => classify::parse_output(output.into_bytes()),
        Some(Err(e)) => Err(Failure::new(
            match e.kind {
                ErrorKind::Transient => FailureKind::Transient,
                ErrorKind::Permanent => FailureKind::Exit,
            },
            e.message,
        )),
        None => Err(Failure::new(FailureKind::Host, "the call returned nothing")),
    });
    AttemptOutcome {
        result,
        duration: spent.duration,
        fuel_used: spent.fuel_used,
        peak_memory: spent.peak_memory,
        log,
    }
}

/// Core instances a component may create in its store (its modules, shims and adapters).
const COMPONENT_INSTANCES: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_call_is_the_record_an_abi_v1_plugin_would_write() {
        let line = log_record(
            Level::Warn,
            "dropping row",
            &[("row".into(), "3".into()), ("level".into(), "error".into())],
        );
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["level"], "warn", "a field may not replace the level");
        assert_eq!(v["msg"], "dropping row");
        assert_eq!(v["row"], "3");
        assert_eq!(line.last(), Some(&b'\n'));
    }

    #[test]
    fn the_task_carries_the_input_documents_fields_with_json_as_text() {
        let doc = br#"{"abi":1,"workflow":"w","run_id":"r","task":"t","attempt":2,"idempotency_key":"r:t","params":{"a": [1, 2]},"inputs":{"up":3}}"#;
        let t = task(&[
            Bytes::from_static(&doc[..20]),
            Bytes::from_static(&doc[20..]),
        ])
        .unwrap();
        assert_eq!((t.workflow.as_str(), t.attempt), ("w", 2));
        assert_eq!(t.params, r#"{"a": [1, 2]}"#);
        assert_eq!(t.run_params, "null");
        assert_eq!(t.inputs, r#"{"up":3}"#);
    }
}
