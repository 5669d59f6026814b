use super::*;

fn ms(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

fn hourly(catchup: Catchup) -> Schedule {
    Schedule::new(&["@hourly".to_string()], None, catchup).unwrap()
}

#[test]
fn parses_five_fields_and_shortcuts_only() {
    assert!(parse_cron("0 2 * * *").is_ok());
    assert!(parse_cron("@daily").is_ok());
    assert!(parse_cron("*/15 9-17 * * MON-FRI").is_ok());
    assert!(parse_cron("0 0 2 * * *")
        .unwrap_err()
        .contains("has 6 fields"));
    assert!(parse_cron("@sometimes")
        .unwrap_err()
        .contains("not a shortcut"));
    assert!(parse_cron("61 * * * *").is_err());
    assert!(parse_timezone("Europe/Berln")
        .unwrap_err()
        .contains("did you mean `Europe/Berlin`"));
}

#[test]
fn next_fire_in_a_time_zone() {
    let s = Schedule::new(
        &["0 2 * * *".into()],
        Some("Europe/Berlin"),
        Catchup::Latest,
    )
    .unwrap();
    // 02:00 in Berlin in winter is 01:00 UTC.
    assert_eq!(
        s.next_after(ms("2026-01-10T12:00:00Z")),
        Some(ms("2026-01-11T01:00:00Z"))
    );
}

/// Fires of `expr` in `zone` between two UTC times, as RFC 3339 UTC text.
fn fires(expr: &str, zone: &str, from: &str, to: &str) -> Vec<String> {
    let s = Schedule::new(&[expr.into()], Some(zone), Catchup::All).unwrap();
    s.between(ms(from), ms(to))
        .into_iter()
        .map(crate::store::rfc3339)
        .collect()
}

#[test]
fn spring_forward_runs_a_skipped_fixed_time_once_at_the_first_valid_instant() {
    // Berlin skips 02:00-03:00 local on 2026-03-29 (01:00Z is 03:00 CEST).
    let day = ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z");
    assert_eq!(
        fires("30 2 * * *", "Europe/Berlin", day.0, day.1),
        vec!["2026-03-29T01:00:00.000Z"]
    );
    assert_eq!(
        fires("0 2 * * *", "Europe/Berlin", day.0, day.1),
        vec!["2026-03-29T01:00:00.000Z"]
    );
    // New York skips 02:00-03:00 local on 2026-03-08 (07:00Z is 03:00 EDT).
    assert_eq!(
        fires(
            "15 2 * * *",
            "America/New_York",
            "2026-03-08T05:00:00Z",
            "2026-03-09T04:00:00Z"
        ),
        vec!["2026-03-08T07:00:00.000Z"]
    );
    // Hourly jobs fire once an hour that exists: the local day has 23.
    assert_eq!(fires("0 * * * *", "Europe/Berlin", day.0, day.1).len(), 23);
}

#[test]
fn fall_back_fires_fixed_times_once_and_hourly_jobs_in_both_hours() {
    // Berlin repeats 02:00-03:00 local on 2026-10-25: 00:00Z-01:00Z (CEST), 01:00Z-02:00Z (CET).
    let day = ("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z");
    assert_eq!(
        fires("30 2 * * *", "Europe/Berlin", day.0, day.1),
        vec!["2026-10-25T00:30:00.000Z"]
    );
    assert_eq!(
        fires("*/30 2 * * *", "Europe/Berlin", day.0, day.1),
        vec!["2026-10-25T00:00:00.000Z", "2026-10-25T00:30:00.000Z"],
        "a fixed hour with several minutes: each minute once"
    );
    let hourly = fires("30 * * * *", "Europe/Berlin", day.0, day.1);
    assert_eq!(hourly.len(), 25, "the local day has 25 hours: {hourly:?}");
    assert!(hourly.contains(&"2026-10-25T00:30:00.000Z".to_string()));
    assert!(hourly.contains(&"2026-10-25T01:30:00.000Z".to_string()));
    assert_eq!(fires("@hourly", "Europe/Berlin", day.0, day.1).len(), 25);
    // New York repeats 01:00-02:00 local on 2026-11-01.
    assert_eq!(
        fires(
            "30 1 * * *",
            "America/New_York",
            "2026-11-01T04:00:00Z",
            "2026-11-02T05:00:00Z"
        ),
        vec!["2026-11-01T05:30:00.000Z"]
    );
    // Days without a change are untouched.
    assert_eq!(
        fires(
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-26T00:00:00Z",
            "2026-10-28T00:00:00Z"
        ),
        vec!["2026-10-26T01:30:00.000Z", "2026-10-27T01:30:00.000Z"]
    );
}

#[test]
fn catch_up_after_five_missed_hours() {
    let last = ms("2026-05-01T10:00:00Z");
    let now = ms("2026-05-01T15:30:00Z");
    assert_eq!(
        hourly(Catchup::None).due(Some(last), now),
        Vec::<i64>::new()
    );
    assert_eq!(
        hourly(Catchup::Latest).due(Some(last), now),
        vec![ms("2026-05-01T15:00:00Z")]
    );
    let all = hourly(Catchup::All).due(Some(last), now);
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], ms("2026-05-01T11:00:00Z"));
}

#[test]
fn on_time_fires_always_fire_and_a_new_schedule_owes_nothing() {
    let last = ms("2026-05-01T10:00:00Z");
    let now = ms("2026-05-01T11:00:00.200Z");
    for c in [Catchup::None, Catchup::Latest, Catchup::All] {
        assert_eq!(
            hourly(c).due(Some(last), now),
            vec![ms("2026-05-01T11:00:00Z")],
            "{c:?}"
        );
    }
    assert!(hourly(Catchup::All).due(None, now).is_empty());
}

#[test]
fn catch_up_is_bounded() {
    let s = Schedule::new(&["* * * * *".into()], None, Catchup::All).unwrap();
    let fires = s.due(Some(ms("2026-01-01T00:00:00Z")), ms("2026-01-10T00:00:00Z"));
    assert!(fires.len() <= MAX_CATCHUP + 1, "{}", fires.len());
    assert_eq!(fires.last(), Some(&ms("2026-01-10T00:00:00Z")));
}

#[test]
fn the_shifted_clock_moves() {
    let c = ShiftedClock::starting_at(ms("2030-01-01T00:00:00Z"));
    let a = c.now_ms();
    assert!((a - ms("2030-01-01T00:00:00Z")).abs() < 1000);
    c.advance(3_600_000);
    assert!(c.now_ms() - a >= 3_600_000);
}

mod oracle {
    //! An oracle independent of the cron parser: chrono-tz's own calendar. A job at a fixed
    //! local time (`M H * * *`) fires exactly once on every local day, whatever daylight saving
    //! does that day: at H:M when that time exists (the first of the two when it is repeated),
    //! otherwise at the first instant after the gap.
    use super::*;
    use chrono::{NaiveDate, TimeZone};
    use proptest::prelude::*;

    const ZONES: [&str; 6] = [
        "Europe/Berlin",
        "America/New_York",
        "Australia/Sydney",
        "America/Santiago",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn a_fixed_time_job_fires_exactly_once_every_local_day(
            zone in proptest::sample::select(&ZONES[..]),
            hour in 0u32..24,
            minute in prop_oneof![Just(0u32), Just(15), Just(30), Just(59), 0u32..60],
            start_day in 0i64..730,
        ) {
            let tz: chrono_tz::Tz = zone.parse().unwrap();
            let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(start_day as u64);
            let days = 200u64;
            // From local midnight of the first day to local midnight after the last.
            let midnight = |d: NaiveDate| {
                let t = d.and_hms_opt(0, 0, 0).unwrap();
                tz.from_local_datetime(&t).earliest().unwrap_or_else(|| {
                    tz.from_local_datetime(&(t + chrono::Duration::hours(1))).earliest().unwrap()
                })
            };
            let from = midnight(first).timestamp_millis() - 1;
            let to = midnight(first + chrono::Days::new(days)).timestamp_millis() - 1;
            let s = Schedule::new(&[format!("{minute} {hour} * * *")], Some(zone), Catchup::All).unwrap();
            let fires = s.between(from, to);
            let mut per_day = std::collections::BTreeMap::<NaiveDate, Vec<i64>>::new();
            for f in &fires {
                let local = tz.timestamp_millis_opt(*f).unwrap();
                per_day.entry(local.date_naive()).or_default().push(*f);
            }
            for i in 0..days {
                let day = first + chrono::Days::new(i);
                let got = per_day.get(&day).cloned().unwrap_or_default();
                prop_assert_eq!(got.len(), 1, "{} on {}: fires {:?}", zone, day, got);
                let wanted = day.and_hms_opt(hour, minute, 0).unwrap();
                match tz.from_local_datetime(&wanted) {
                    chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                        prop_assert_eq!(got[0], t.timestamp_millis(), "{} on {}", zone, day);
                    }
                    chrono::LocalResult::None => {
                        // In the gap: after the wanted wall time, within the gap's length.
                        let local = tz.timestamp_millis_opt(got[0]).unwrap().naive_local();
                        prop_assert!(local > wanted && local - wanted <= chrono::Duration::hours(1), "{} on {}: {}", zone, day, local);
                    }
                }
            }
            prop_assert_eq!(fires.len() as u64, days, "no fire outside the days");
        }
    }
}
