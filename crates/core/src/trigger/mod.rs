//! Time-based triggers: cron schedules with time zones and catch-up, and the clock they read.
//!
//! Pure where it can be: given a schedule, the last fire recorded and "now", [`Schedule::due`]
//! says which scheduled times to fire. The clock is a trait so tests move time by hand.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};

/// The most fires one catch-up produces (a host down for a year with a per-minute schedule would
/// otherwise start half a million runs).
pub const MAX_CATCHUP: usize = 1000;

/// A fire counts as on time (not missed) when it is found within this long after its time.
pub const ON_TIME_MS: i64 = 60_000;

/// What to do with fires missed while no host was running.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Catchup {
    /// Skip them.
    None,
    /// One run for the most recent one (the default).
    Latest,
    /// One run for each (at most 1000).
    All,
}

/// A validated schedule: one or more cron expressions in a time zone.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(into = "ScheduleSpec", try_from = "ScheduleSpec")]
pub struct Schedule {
    crons: Vec<Cron>,
    /// The expressions as written.
    pub expressions: Vec<String>,
    /// The time zone the expressions are read in.
    pub timezone: Tz,
    /// Catch-up policy.
    pub catchup: Catchup,
}

/// `@hourly`-style shortcuts and what they mean.
const SHORTCUTS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// Parses one standard 5-field cron expression or shortcut.
pub fn parse_cron(text: &str) -> Result<Cron, String> {
    let trimmed = text.trim();
    let expanded = match SHORTCUTS
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(trimmed))
    {
        Some((_, e)) => *e,
        None if trimmed.starts_with('@') => {
            let names: Vec<&str> = SHORTCUTS.iter().map(|(s, _)| *s).collect();
            return Err(format!(
                "`{trimmed}` is not a shortcut (use one of {})",
                names.join(", ")
            ));
        }
        None => trimmed,
    };
    let fields = expanded.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "`{trimmed}` has {fields} fields; a cron expression has 5: minute hour day-of-month month day-of-week (e.g. `0 2 * * *`)"
        ));
    }
    Cron::from_str(expanded).map_err(|e| format!("`{trimmed}` is not a cron expression: {e}"))
}

/// Parses an IANA time zone name such as `Europe/Berlin`.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    Tz::from_str(name).map_err(|_| {
        let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
        let hint = crate::suggest::did_you_mean(name, names);
        format!("`{name}` is not an IANA time zone{hint}; write e.g. `Europe/Berlin` or `UTC`")
    })
}

/// How a [`Schedule`] is stored with a run: its parts as written; read back through
/// [`Schedule::new`], which is pure (no clock, no files).
#[derive(serde::Serialize, serde::Deserialize)]
struct ScheduleSpec {
    expressions: Vec<String>,
    timezone: String,
    catchup: Catchup,
}

impl From<Schedule> for ScheduleSpec {
    fn from(s: Schedule) -> Self {
        ScheduleSpec {
            expressions: s.expressions,
            timezone: s.timezone.name().to_string(),
            catchup: s.catchup,
        }
    }
}

impl TryFrom<ScheduleSpec> for Schedule {
    type Error = String;
    fn try_from(s: ScheduleSpec) -> Result<Schedule, String> {
        Schedule::new(&s.expressions, Some(&s.timezone), s.catchup)
    }
}

impl Schedule {
    /// A schedule from its parts.
    pub fn new(
        expressions: &[String],
        timezone: Option<&str>,
        catchup: Catchup,
    ) -> Result<Schedule, String> {
        let crons = expressions
            .iter()
            .map(|e| parse_cron(e))
            .collect::<Result<Vec<_>, _>>()?;
        let timezone = match timezone {
            Some(name) => parse_timezone(name)?,
            None => Tz::UTC,
        };
        Ok(Schedule {
            crons,
            expressions: expressions.to_vec(),
            timezone,
            catchup,
        })
    }

    fn at(&self, ms: i64) -> Option<DateTime<Tz>> {
        self.timezone.timestamp_millis_opt(ms).single()
    }

    /// The first scheduled time strictly after `after_ms`, in ms since the epoch.
    ///
    /// Daylight saving follows cron's rules: a fixed time skipped by a spring-forward runs once
    /// at the first valid instant after the gap; in an hour repeated by a fall-back, a job whose
    /// hour is fixed fires in the first pass only, while a job with a wildcard hour (`*`,
    /// `*/2`, `@hourly`) fires in both.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        self.crons
            .iter()
            .zip(&self.expressions)
            .filter_map(|(c, e)| self.next_of(c, hour_is_fixed(e), after_ms))
            .min()
    }

    fn next_of(&self, cron: &Cron, fixed_hour: bool, after_ms: i64) -> Option<i64> {
        let mut after = after_ms;
        loop {
            let t = cron
                .find_next_occurrence(&self.at(after)?, false)
                .ok()?
                .timestamp_millis();
            if fixed_hour && self.is_second_pass(t) {
                after = t;
                continue;
            }
            return Some(t);
        }
    }

    /// Whether the local time at `t` happened once already (the second pass of a repeated hour).
    fn is_second_pass(&self, t: i64) -> bool {
        let Some(local) = self.at(t) else {
            return false;
        };
        match self.timezone.from_local_datetime(&local.naive_local()) {
            chrono::LocalResult::Ambiguous(first, _) => first.timestamp_millis() != t,
            _ => false,
        }
    }

    /// Scheduled times in `(after_ms, now_ms]`, oldest first, at most `MAX_CATCHUP` (the newest).
    pub fn between(&self, after_ms: i64, now_ms: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut t = after_ms;
        while let Some(next) = self.next_after(t) {
            if next > now_ms {
                break;
            }
            out.push(next);
            if out.len() > MAX_CATCHUP {
                out.remove(0);
            }
            t = next;
        }
        out
    }

    /// The scheduled times to fire now, given the last time considered (`None`: the schedule is
    /// new, so nothing before now is owed). Fires found late (the host was down) follow `catchup`.
    pub fn due(&self, last_ms: Option<i64>, now_ms: i64) -> Vec<i64> {
        let Some(last) = last_ms else {
            return Vec::new();
        };
        let all = self.between(last, now_ms);
        let (on_time, missed): (Vec<i64>, Vec<i64>) =
            all.into_iter().partition(|t| now_ms - t <= ON_TIME_MS);
        let mut fire = match self.catchup {
            Catchup::None => Vec::new(),
            Catchup::Latest if on_time.is_empty() => missed.last().copied().into_iter().collect(),
            Catchup::Latest => Vec::new(),
            Catchup::All => missed,
        };
        fire.extend(on_time);
        fire
    }
}

/// A source of "now", in milliseconds since the epoch.
pub trait Clock: Send + Sync {
    /// Now.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis()
    }
}

/// A clock that starts at a given time and runs at real speed; tests also move it by hand.
#[derive(Debug)]
pub struct ShiftedClock {
    offset: AtomicI64,
}

impl ShiftedClock {
    /// A clock that reads `start_ms` now.
    pub fn starting_at(start_ms: i64) -> Self {
        ShiftedClock {
            offset: AtomicI64::new(start_ms - SystemClock.now_ms()),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        self.offset.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.offset.load(Ordering::SeqCst)
    }
}

/// Whether a cron expression names its hours (`30 2 * * *`, `@daily`) rather than matching
/// every hour (`30 * * * *`, `0 */2 * * *`, `@hourly`).
fn hour_is_fixed(expression: &str) -> bool {
    let e = expression.trim();
    if e.starts_with('@') {
        return e != "@hourly";
    }
    e.split_whitespace()
        .nth(1)
        .is_some_and(|hour| !hour.starts_with('*'))
}

/// How far in the past a one-off run's `at` may be: clock skew between the caller and the
/// server. Anything older is refused rather than run at once by surprise.
pub const AT_PAST_TOLERANCE_MS: i64 = 5 * 60_000;

/// How far ahead a one-off run may be scheduled (a year and a day).
pub const AT_MAX_AHEAD_MS: i64 = 366 * 86_400_000;

/// The due time of a one-off run asked for `at` (RFC 3339), checked against `now_ms`: at most
/// [`AT_PAST_TOLERANCE_MS`] in the past and [`AT_MAX_AHEAD_MS`] ahead. The error says why, for
/// a user to read after the name of the field.
pub fn due_time(at: &str, now_ms: i64) -> Result<i64, String> {
    let t = DateTime::parse_from_rfc3339(at)
        .map_err(|e| {
            format!("`{at}` is not an RFC 3339 time ({e}); write e.g. 2026-11-23T02:00:00Z")
        })?
        .timestamp_millis();
    if t < now_ms - AT_PAST_TOLERANCE_MS {
        return Err(format!(
            "`{at}` is more than 5 minutes in the past (the server's time is {}); leave it out to run now",
            crate::store::rfc3339(now_ms)
        ));
    }
    if t > now_ms + AT_MAX_AHEAD_MS {
        return Err(format!(
            "`{at}` is more than a year ahead; a one-off run can be scheduled at most 366 days ahead"
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
