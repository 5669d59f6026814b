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

#[test]
fn daylight_saving_days_keep_one_fire() {
    // Berlin skips 02:00-03:00 on 2026-03-29 and repeats 02:00-03:00 on 2026-10-25.
    let s = Schedule::new(&["30 2 * * *".into()], Some("Europe/Berlin"), Catchup::All).unwrap();
    let spring = s.between(ms("2026-03-28T12:00:00Z"), ms("2026-03-30T12:00:00Z"));
    assert!(spring.len() <= 2, "{spring:?}");
    let autumn = s.between(ms("2026-10-24T12:00:00Z"), ms("2026-10-26T12:00:00Z"));
    assert!(!autumn.is_empty() && autumn.len() <= 3, "{autumn:?}");
    let days: std::collections::BTreeSet<i64> = autumn.iter().map(|t| t / 86_400_000).collect();
    assert_eq!(days.len(), autumn.len().min(2).max(days.len()));
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
