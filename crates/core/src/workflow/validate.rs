//! Raw workflow -> validated [`Workflow`]. Collects every problem instead of stopping at the first,
//! so one `bulkhead validate` shows all that is wrong with a file.

use super::error::{Problem, WorkflowError};
use super::raw::{RawHttp, RawLimits, RawMount, RawRetry, RawTask, RawWorkflow};
use super::retry::RetryPolicy;
use super::units::{parse_duration, parse_size, SizeSpec};
use super::{PluginRef, Task, Workflow};
use crate::contract::{Grants, HttpGrant, Limits, Mount, Origin, MAX_MEMORY};
use crate::suggest::did_you_mean;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn parse(text: &str, file: &Path) -> Result<Workflow, WorkflowError> {
    let invalid = |problems| WorkflowError::Invalid {
        file: file.to_path_buf(),
        problems,
    };
    let raw: RawWorkflow = match streamed(text) {
        Ok(raw) => raw,
        Err(_) => {
            // The reference path explains what is wrong: the duplicate-key scan names both
            // lines, serde_yaml names the field's path. It also decides in the rare case where
            // the streaming parser refuses what serde_yaml reads.
            let duplicates = super::duplicates::duplicate_keys(text);
            if !duplicates.is_empty() {
                return Err(invalid(duplicates));
            }
            serde_yaml::from_str(text).map_err(|e| invalid(vec![yaml_problem(&e)]))?
        }
    };
    let mut v = Validator {
        dir: file.parent().unwrap_or(Path::new(".")),
        problems: Vec::new(),
        shared: Shared::default(),
    };
    let workflow = v.workflow(raw, text, file);
    if v.problems.is_empty() {
        Ok(workflow)
    } else {
        Err(invalid(v.problems))
    }
}

/// Reads a workflow file in one streaming pass (serde-saphyr: no event list or tree of the whole
/// document in memory, so a file of a million tasks costs a small multiple of its size), with
/// serde_yaml's reading of scalars (YAML 1.2 booleans, `012` and `1_000` are strings) and every
/// duplicate key refused. Any error sends the file down the reference path for its message.
pub(super) fn streamed(text: &str) -> Result<RawWorkflow, String> {
    // An integer too long for 64 bits is a float to serde-saphyr and an error to serde_yaml.
    if has_long_digit_run(text) {
        return Err("a number of 19 digits or more: read by the reference path".into());
    }
    // Events, nodes and scalar bytes grow with the text (aliases have their own limits), so
    // the budget follows the file's size instead of capping large workflows.
    let size = text.len().saturating_mul(2).saturating_add(1024);
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        legacy_octal_numbers: false,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_events: size,
            max_nodes: size,
            max_total_scalar_bytes: size,
            max_documents: 1,
        },
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| e.to_string())
}

/// Whether `text` holds 19 or more consecutive ASCII digits.
fn has_long_digit_run(text: &str) -> bool {
    let mut run = 0;
    text.bytes().any(|b| {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        run >= 19
    })
}

/// Turns a serde_yaml error into a problem with its location, the field path and a suggestion.
fn yaml_problem(err: &serde_yaml::Error) -> Problem {
    let full = err.to_string();
    let location = err.location().map(|l| (l.line(), l.column()));
    // serde_yaml appends " at line L column C"; we report the location separately.
    let message = match full.find(" at line ") {
        Some(i) => &full[..i],
        None => full.as_str(),
    };
    // Messages look like "tasks.b.retry: unknown field `x`, expected one of `a`, `b`".
    let (path, detail) = match message.split_once(": ") {
        Some((p, d)) if !p.contains(' ') => (Some(p), d),
        _ => (None, message),
    };
    let (task, field) = match path {
        Some(p) => match p.strip_prefix("tasks.") {
            Some(rest) => match rest.split_once('.') {
                Some((t, f)) => (Some(t), Some(f)),
                None => (Some(rest), None),
            },
            None => (None, Some(p)),
        },
        None => (None, None),
    };
    let mut problem = Problem::new(task, field, detail.to_string());
    problem.location = location;
    if let Some(hint) = unknown_name_hint(detail) {
        problem = problem.hint(hint);
    } else if detail.contains("did not match any variant of untagged enum SizeSpec") {
        problem = problem.hint("a size is a number of bytes or a string such as `64MiB` or `1MB`");
    }
    problem
}

/// For "unknown field `neds`, expected one of `plugin`, `needs`": "did you mean `needs`?".
fn unknown_name_hint(detail: &str) -> Option<String> {
    let rest = detail
        .strip_prefix("unknown field `")
        .or_else(|| detail.strip_prefix("unknown variant `"))?;
    let (word, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let suggestion = did_you_mean(word, expected.iter().copied());
    Some(match suggestion.is_empty() {
        false => suggestion
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .to_string(),
        true if expected.is_empty() => "remove it".to_string(),
        true => format!("expected one of: {}", expected.join(", ")),
    })
}

struct Validator<'a> {
    dir: &'a Path,
    problems: Vec<Problem>,
    /// The last settings made: tasks written alike share one copy (a million tasks with the
    /// defaults hold one retry policy, not a million).
    shared: Shared,
}

#[derive(Default)]
struct Shared {
    retry: Option<Arc<RetryPolicy>>,
    limits: Option<Arc<Limits>>,
    grants: Option<Arc<Grants>>,
}

/// `value` as the `last` one if they are equal, else a new shared copy that becomes `last`.
fn share<T: PartialEq>(last: &mut Option<Arc<T>>, value: T) -> Arc<T> {
    match last {
        Some(l) if **l == value => l.clone(),
        _ => {
            let made = Arc::new(value);
            *last = Some(made.clone());
            made
        }
    }
}

impl Validator<'_> {
    fn report(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    fn workflow(&mut self, raw: RawWorkflow, text: &str, file: &Path) -> Workflow {
        self.version(raw.version.as_ref());
        if !valid_id(&raw.name) {
            self.report(
                Problem::new(
                    None,
                    Some("name"),
                    format!("`{}` is not a valid workflow name", raw.name),
                )
                .hint("use letters, digits, `_`, `-` and `.`"),
            );
        }
        if raw.concurrency == Some(0) {
            self.report(
                Problem::new(None, Some("concurrency"), "must be at least 1")
                    .hint("leave it out to let `--max-parallel` alone bound the run"),
            );
        }
        if raw.max_active_runs == Some(0) {
            self.report(
                Problem::new(None, Some("max_active_runs"), "must be at least 1")
                    .hint("leave it out to let runs of this workflow start without a bound"),
            );
        }
        if raw.tasks.is_empty() {
            self.report(Problem::new(
                None,
                Some("tasks"),
                "a workflow needs at least one task",
            ));
        }
        let expressions = match raw.schedule {
            None => Vec::new(),
            Some(super::raw::OneOrMany::One(s)) => vec![s],
            Some(super::raw::OneOrMany::Many(v)) => v,
        };
        let schedule = self.schedule(&expressions, raw.timezone.as_deref(), raw.catchup);
        let mut params = super::params::Params::new();
        for (name, p) in &raw.params {
            match super::params::check(name, p) {
                Ok(spec) => {
                    params.insert(name.clone(), spec);
                }
                Err(problems) => {
                    for (field, message, hint) in problems {
                        self.report(Problem::new(None, Some(&field), message).hint(hint));
                    }
                }
            }
        }
        let ids: HashMap<&str, usize> = raw
            .tasks
            .keys()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let mut tasks = Vec::with_capacity(raw.tasks.len());
        for (id, task) in &raw.tasks {
            tasks.push(self.task(id, task, &raw.defaults.limits, &raw.defaults.retry, &ids));
        }
        self.cycles(&tasks);
        self.nested_mounts(&tasks);
        Workflow {
            name: raw.name,
            description: raw.description,
            file: file.to_path_buf(),
            hash: hex::encode(Sha256::digest(text.as_bytes())),
            concurrency: raw.concurrency,
            max_active_runs: raw.max_active_runs,
            schedule,
            params,
            tasks,
        }
    }

    fn schedule(
        &mut self,
        expressions: &[String],
        timezone: Option<&str>,
        catchup: Option<crate::trigger::Catchup>,
    ) -> Option<crate::trigger::Schedule> {
        use crate::trigger::{parse_cron, parse_timezone, Catchup, Schedule};
        let mut ok = true;
        for e in expressions {
            if let Err(message) = parse_cron(e) {
                ok = false;
                self.report(Problem::new(None, Some("schedule"), message));
            }
        }
        if let Some(tz) = timezone {
            if let Err(message) = parse_timezone(tz) {
                ok = false;
                self.report(Problem::new(None, Some("timezone"), message));
            }
        }
        if expressions.is_empty() {
            if timezone.is_some() || catchup.is_some() {
                self.report(
                    Problem::new(
                        None,
                        Some("timezone"),
                        "`timezone` and `catchup` need a `schedule`",
                    )
                    .hint("add `schedule:` or remove them"),
                );
            }
            return None;
        }
        if !ok {
            return None;
        }
        Schedule::new(expressions, timezone, catchup.unwrap_or(Catchup::Latest)).ok()
    }

    fn version(&mut self, version: Option<&serde_yaml::Value>) {
        match version {
            None => {}
            Some(v) if v.as_u64() == Some(1) => {}
            Some(v) => {
                let shown = serde_yaml::to_string(v).unwrap_or_default();
                self.report(
                    Problem::new(
                        None,
                        Some("version"),
                        format!("unsupported version `{}`", shown.trim()),
                    )
                    .hint("this Bulkhead reads `version: 1`"),
                )
            }
        }
    }

    fn task(
        &mut self,
        id: &str,
        raw: &RawTask,
        default_limits: &RawLimits,
        default_retry: &RawRetry,
        ids: &HashMap<&str, usize>,
    ) -> Task {
        if !valid_id(id) {
            self.report(
                Problem::new(Some(id), None, format!("`{id}` is not a valid task id"))
                    .hint("use letters, digits, `_`, `-` and `.`"),
            );
        }
        let retry = self.retry(id, &merge_retry(default_retry, &raw.retry));
        let limits = self.limits(id, &merge_limits(default_limits, &raw.limits));
        let grants = self.grants(id, raw);
        Task {
            id: id.to_string(),
            description: raw.description.clone(),
            plugin: self.plugin(id, &raw.plugin),
            params: raw.params.clone(),
            needs: self.needs(id, &raw.needs, ids),
            retry: share(&mut self.shared.retry, retry),
            limits: share(&mut self.shared.limits, limits),
            grants: share(&mut self.shared.grants, grants),
            optional: raw.optional,
            priority: raw.priority,
        }
    }

    fn plugin(&mut self, task: &str, name: &str) -> PluginRef {
        if name.ends_with(".wasm") {
            return PluginRef::Path(self.dir.join(name));
        }
        if !valid_id(name) {
            self.report(
                Problem::new(Some(task), Some("plugin"), format!("`{name}` is not a plugin name"))
                    .hint("name a plugin in the plugin folder (its file stem) or a path ending in `.wasm`"),
            );
        }
        PluginRef::Name(name.to_string())
    }

    fn needs(&mut self, task: &str, needs: &[String], ids: &HashMap<&str, usize>) -> Vec<usize> {
        let mut out = Vec::with_capacity(needs.len());
        for need in needs {
            if need == task {
                self.report(
                    Problem::new(
                        Some(task),
                        Some("needs"),
                        format!("task `{task}` needs itself"),
                    )
                    .hint(format!("remove `{task}` from its own `needs`")),
                );
            } else if let Some(&i) = ids.get(need.as_str()) {
                if out.contains(&i) {
                    self.report(
                        Problem::new(
                            Some(task),
                            Some("needs"),
                            format!("`{need}` is listed twice"),
                        )
                        .hint("list each dependency once"),
                    );
                } else {
                    out.push(i);
                }
            } else {
                let mut known: Vec<&str> = ids.keys().copied().filter(|k| *k != task).collect();
                known.sort_unstable();
                let hint = did_you_mean(need, known.iter().copied());
                self.report(
                    Problem::new(
                        Some(task),
                        Some("needs"),
                        format!("unknown dependency `{need}`{hint}"),
                    )
                    .hint(format!("known tasks: {}", known.join(", "))),
                );
            }
        }
        out
    }

    /// A size field: `default` when absent, else parsed and within `min..=max` (a problem and
    /// the default otherwise).
    fn size(
        &mut self,
        task: &str,
        field: &str,
        spec: &Option<SizeSpec>,
        default: u64,
        min: u64,
        max: u64,
    ) -> u64 {
        let Some(spec) = spec else { return default };
        match parse_size(spec) {
            Ok(n) if (min..=max).contains(&n) => n,
            Ok(n) => {
                self.report(Problem::new(
                    Some(task),
                    Some(field),
                    format!("{n} bytes is out of range; it must be between {min} and {max}"),
                ));
                default
            }
            Err(e) => {
                self.report(Problem::new(Some(task), Some(field), e));
                default
            }
        }
    }

    /// A timeout field: `default` when absent, else a duration longer than zero and at most 24h.
    fn timeout(
        &mut self,
        task: &str,
        field: &str,
        raw: &Option<String>,
        default: Duration,
    ) -> Duration {
        let Some(text) = raw else { return default };
        match parse_duration(text) {
            Ok(t) if !t.is_zero() && t <= MAX_TIMEOUT => t,
            Ok(t) if t > MAX_TIMEOUT => {
                self.report(Problem::new(
                    Some(task),
                    Some(field),
                    format!(
                        "`{}` is longer than the longest attempt allowed (24h)",
                        humantime::format_duration(t)
                    ),
                ));
                default
            }
            Ok(_) => {
                self.report(Problem::new(
                    Some(task),
                    Some(field),
                    "must be longer than zero",
                ));
                default
            }
            Err(e) => {
                self.report(Problem::new(Some(task), Some(field), e));
                default
            }
        }
    }

    fn limits(&mut self, task: &str, raw: &RawLimits) -> Limits {
        let d = Limits::default();
        let memory = self.size(
            task,
            "limits.memory",
            &raw.memory,
            d.memory,
            64 << 10,
            MAX_MEMORY,
        );
        let max_output = self.size(
            task,
            "limits.max_output",
            &raw.max_output,
            d.max_output,
            1,
            1 << 30,
        );
        let max_logs = self.size(
            task,
            "limits.max_logs",
            &raw.max_logs,
            d.max_logs,
            0,
            1 << 30,
        );
        let timeout = self.timeout(task, "limits.timeout", &raw.timeout, d.timeout);
        let fuel = match raw.fuel {
            Some(0) => {
                self.report(Problem::new(
                    Some(task),
                    Some("limits.fuel"),
                    "must be at least 1",
                ));
                d.fuel
            }
            Some(f) if f > crate::contract::MAX_FUEL => {
                self.report(Problem::new(
                    Some(task),
                    Some("limits.fuel"),
                    format!(
                        "{f} is more than the most fuel an attempt can have ({})",
                        crate::contract::MAX_FUEL
                    ),
                ));
                d.fuel
            }
            Some(f) => f,
            None => d.fuel,
        };
        Limits {
            fuel,
            memory,
            timeout,
            max_output,
            max_logs,
        }
    }

    fn retry(&mut self, task: &str, raw: &RawRetry) -> RetryPolicy {
        let d = RetryPolicy::default();
        let mut duration = |field: &str, text: &Option<String>, default| match text {
            None => default,
            Some(t) => match parse_duration(t) {
                Ok(d) if d <= MAX_DELAY => d,
                Ok(d) => {
                    self.report(Problem::new(
                        Some(task),
                        Some(&format!("retry.{field}")),
                        format!(
                            "`{}` is longer than the longest delay allowed (7days)",
                            humantime::format_duration(d)
                        ),
                    ));
                    default
                }
                Err(e) => {
                    self.report(Problem::new(Some(task), Some(&format!("retry.{field}")), e));
                    default
                }
            },
        };
        let initial_delay = duration("initial_delay", &raw.initial_delay, d.initial_delay);
        let max_delay = duration("max_delay", &raw.max_delay, d.max_delay);
        let max_attempts = match raw.max_attempts {
            Some(0) => {
                self.report(
                    Problem::new(Some(task), Some("retry.max_attempts"), "must be at least 1")
                        .hint("it counts attempts in all, the first included"),
                );
                1
            }
            Some(n) => n,
            None => d.max_attempts,
        };
        let multiplier = match raw.multiplier {
            Some(m) if !(m.is_finite() && m >= 1.0) => {
                self.report(Problem::new(
                    Some(task),
                    Some("retry.multiplier"),
                    format!("`{m}` must be a number of at least 1"),
                ));
                d.multiplier
            }
            Some(m) => m,
            None => d.multiplier,
        };
        RetryPolicy {
            max_attempts,
            backoff: raw.backoff.unwrap_or(d.backoff),
            initial_delay,
            multiplier,
            max_delay,
            jitter: raw.jitter.unwrap_or(d.jitter),
            on: raw.on.clone().unwrap_or(d.on),
        }
    }

    fn grants(&mut self, task: &str, raw: &RawTask) -> Grants {
        let mut env = Vec::with_capacity(raw.env.len());
        for (key, value) in &raw.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
                self.report(
                    Problem::new(
                        Some(task),
                        Some("env"),
                        format!("`{key}` is not a valid variable"),
                    )
                    .hint("names are non-empty and contain no `=`; values contain no NUL"),
                );
            } else {
                env.push((key.clone(), value.clone()));
            }
        }
        let mut mounts = Vec::with_capacity(raw.mounts.len());
        let mut guests = HashSet::new();
        for (i, m) in raw.mounts.iter().enumerate() {
            if let Some(mount) = self.mount(task, i, m) {
                if guests.insert(mount.guest.clone()) {
                    mounts.push(mount);
                } else {
                    self.report(Problem::new(
                        Some(task),
                        Some(&format!("mounts[{i}].guest")),
                        format!("`{}` is mounted twice", m.guest),
                    ));
                }
            }
        }
        let http = raw.http.as_ref().map(|h| self.http(task, h));
        Grants { env, mounts, http }
    }

    fn http(&mut self, task: &str, raw: &RawHttp) -> HttpGrant {
        let mut allow = Vec::with_capacity(raw.allow.len());
        for (i, text) in raw.allow.iter().enumerate() {
            match Origin::parse(text) {
                Ok(o) if allow.contains(&o) => self.report(Problem::new(
                    Some(task),
                    Some(&format!("http.allow[{i}]")),
                    format!("`{text}` is allowed twice"),
                )),
                Ok(o) => allow.push(o),
                Err(e) => self.report(Problem::new(
                    Some(task),
                    Some(&format!("http.allow[{i}]")),
                    e,
                )),
            }
        }
        if raw.allow.is_empty() {
            self.report(
                Problem::new(Some(task), Some("http.allow"), "is empty: it would grant nothing")
                    .hint("name the origins, e.g. `allow: [\"https://api.example.com\"]`, or remove `http:`"),
            );
        }
        let max_requests = match raw.max_requests {
            Some(0) => {
                self.report(Problem::new(
                    Some(task),
                    Some("http.max_requests"),
                    "must be at least 1",
                ));
                HttpGrant::DEFAULT_MAX_REQUESTS
            }
            Some(n) => n,
            None => HttpGrant::DEFAULT_MAX_REQUESTS,
        };
        let max_response = self.size(
            task,
            "http.max_response",
            &raw.max_response,
            HttpGrant::DEFAULT_MAX_RESPONSE,
            1,
            1 << 30,
        );
        let timeout = self.timeout(
            task,
            "http.timeout",
            &raw.timeout,
            HttpGrant::DEFAULT_TIMEOUT,
        );
        HttpGrant {
            allow,
            max_requests,
            max_response,
            timeout,
        }
    }

    fn mount(&mut self, task: &str, i: usize, m: &RawMount) -> Option<Mount> {
        if !m.guest.starts_with('/') || m.guest.split('/').any(|c| c == "..") {
            self.report(
                Problem::new(
                    Some(task),
                    Some(&format!("mounts[{i}].guest")),
                    format!("`{}` is not an absolute guest path", m.guest),
                )
                .hint("write it like `/data`"),
            );
            return None;
        }
        let host = self.dir.join(&m.host);
        let canonical = std::fs::canonicalize(&host);
        match canonical.and_then(|c| std::fs::metadata(&c).map(|meta| (c, meta))) {
            Ok((canonical, meta)) if meta.is_dir() => Some(Mount {
                host: canonical,
                guest: match m.guest.trim_end_matches('/') {
                    "" => "/".to_string(),
                    trimmed => trimmed.to_string(),
                },
                writable: m.writable,
                identity: {
                    use std::os::unix::fs::MetadataExt;
                    (meta.dev(), meta.ino())
                },
            }),
            Ok(_) => {
                self.report(Problem::new(
                    Some(task),
                    Some(&format!("mounts[{i}].host")),
                    format!("{} is not a directory", host.display()),
                ));
                None
            }
            Err(e) => {
                self.report(
                    Problem::new(
                        Some(task),
                        Some(&format!("mounts[{i}].host")),
                        format!("cannot use {}: {e}", host.display()),
                    )
                    .hint("host paths are relative to the workflow file's folder; create the folder first"),
                );
                None
            }
        }
    }

    /// Refuses a mount whose host folder lies strictly inside another mount's folder (in the
    /// same task or another) when either is writable: a plugin with write access to the outer
    /// folder could move the inner one away and put a link to anywhere in its place, and a
    /// writable inner one would then write there. The same folder mounted twice is fine: no
    /// mount can reach the other's root. Linear in the number of mounts after sorting.
    fn nested_mounts(&mut self, tasks: &[Task]) {
        let mut all: Vec<(&Path, bool, &str, usize)> = tasks
            .iter()
            .flat_map(|t| {
                t.grants
                    .mounts
                    .iter()
                    .enumerate()
                    .map(move |(i, m)| (m.host.as_path(), m.writable, t.id.as_str(), i))
            })
            .collect();
        // Component-wise order: a folder comes right before everything inside it.
        all.sort_by(|a, b| a.0.cmp(b.0));
        let mut outer: Vec<(&Path, bool, &str, usize)> = Vec::new();
        let mut reported = HashSet::new();
        for m in all {
            while outer.last().is_some_and(|o| !m.0.starts_with(o.0)) {
                outer.pop();
            }
            let strict: Vec<_> = outer.iter().filter(|o| o.0 != m.0).collect();
            if let Some(o) = strict.iter().rev().find(|o| o.1 || m.1) {
                if reported.insert((m.2, m.3)) {
                    let rw = |w: bool| if w { "writable" } else { "read-only" };
                    self.report(
                        Problem::new(
                            Some(m.2),
                            Some(&format!("mounts[{}].host", m.3)),
                            format!(
                                "{} ({}) lies inside {} ({}), mounted by task `{}`; nested mounts are refused when either is writable",
                                m.0.display(),
                                rw(m.1),
                                o.0.display(),
                                rw(o.1),
                                o.2
                            ),
                        )
                        .hint("mount sibling folders instead (e.g. `in/` read-only and `out/` writable)"),
                    );
                }
            }
            if outer.last().is_none_or(|o| o.0 != m.0 || (m.1 && !o.1)) {
                outer.push(m);
            }
        }
    }

    /// Reports each dependency cycle once, e.g. `alpha -> beta -> gamma -> alpha`.
    fn cycles(&mut self, tasks: &[Task]) {
        for cycle in crate::plan::find_cycles(tasks.iter().map(|t| t.needs.as_slice())) {
            let names: Vec<&str> = cycle.iter().map(|&i| tasks[i].id.as_str()).collect();
            let first = names[0];
            self.report(
                Problem::new(
                    Some(first),
                    Some("needs"),
                    format!("dependency cycle: {} -> {first}", names.join(" -> ")),
                )
                .hint("each task in the cycle needs the next; remove one of these `needs`"),
            );
        }
    }
}

fn merge_limits(base: &RawLimits, over: &RawLimits) -> RawLimits {
    RawLimits {
        fuel: over.fuel.or(base.fuel),
        memory: over.memory.clone().or_else(|| base.memory.clone()),
        timeout: over.timeout.clone().or_else(|| base.timeout.clone()),
        max_output: over.max_output.clone().or_else(|| base.max_output.clone()),
        max_logs: over.max_logs.clone().or_else(|| base.max_logs.clone()),
    }
}

fn merge_retry(base: &RawRetry, over: &RawRetry) -> RawRetry {
    RawRetry {
        max_attempts: over.max_attempts.or(base.max_attempts),
        backoff: over.backoff.or(base.backoff),
        initial_delay: over
            .initial_delay
            .clone()
            .or_else(|| base.initial_delay.clone()),
        multiplier: over.multiplier.or(base.multiplier),
        max_delay: over.max_delay.clone().or_else(|| base.max_delay.clone()),
        jitter: over.jitter.or(base.jitter),
        on: over.on.clone().or_else(|| base.on.clone()),
    }
}

/// The longest `timeout` of an attempt: every deadline must stay far from overflowing.
pub const MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The longest retry delay (`initial_delay`, `max_delay`).
pub const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Ids and names: letters, digits, `_`, `-`, `.`; not empty, not `.` or `..` (they would read
/// as paths wherever an id is used as one).
pub(crate) fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
