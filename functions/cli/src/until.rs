//! `--until TIME`: the end of a stay-up, as people write it. Times without an offset are
//! read in the schedules' time zone (`ScheduleTimezone`), where the pauses happen.

use common::Error;
use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

fn refused(text: &str, why: &str) -> Error {
    Error::invalid_input(format!(
        "--until {text:?}: {why} (write 2026-12-01T18:00+01:00, 2026-12-01 18:00, 18:00 or +3h)"
    ))
}

/// The instant `text` names, which must be after `now`; whole seconds.
pub fn parse_until(text: &str, zone: &TimeZone, now: Timestamp) -> Result<Timestamp, Error> {
    let trimmed = text.trim();
    let at = if let Some(span) = trimmed.strip_prefix('+') {
        let span: Span = span
            .parse()
            .map_err(|e| refused(text, &format!("not a duration ({e})")))?;
        now.to_zoned(zone.clone())
            .checked_add(span)
            .map_err(|e| refused(text, &e.to_string()))?
            .timestamp()
    } else if let Ok(at) = trimmed.parse::<Timestamp>() {
        at
    } else if let Ok(civil) = trimmed.replacen(' ', "T", 1).parse::<DateTime>() {
        civil
            .to_zoned(zone.clone())
            .map_err(|e| refused(text, &e.to_string()))?
            .timestamp()
    } else if let Ok(time) = trimmed.parse::<Time>() {
        // A time of day: its next occurrence.
        let today = now.to_zoned(zone.clone()).date();
        let mut at = today.to_datetime(time).to_zoned(zone.clone());
        if at.as_ref().is_ok_and(|z| z.timestamp() <= now) {
            at = today
                .tomorrow()
                .map_err(|e| refused(text, &e.to_string()))?
                .to_datetime(time)
                .to_zoned(zone.clone());
        }
        at.map_err(|e| refused(text, &e.to_string()))?.timestamp()
    } else {
        return Err(refused(text, "not a time"));
    };
    let at = Timestamp::from_second(at.as_second()).map_err(|e| refused(text, &e.to_string()))?;
    if at <= now {
        return Err(refused(text, &format!("{at} has passed")));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Result<String, Error> {
        let zone = TimeZone::get("Europe/Berlin").unwrap();
        let now: Timestamp = "2026-11-30T16:30:00Z".parse().unwrap(); // 17:30 in Berlin
        parse_until(text, &zone, now).map(|t| t.to_string())
    }

    #[test]
    fn every_form_names_one_instant_in_utc() {
        assert_eq!(
            at("2026-12-01T18:00:00+01:00").unwrap(),
            "2026-12-01T17:00:00Z"
        );
        assert_eq!(at("2026-12-01T17:00:00Z").unwrap(), "2026-12-01T17:00:00Z");
        assert_eq!(
            at("2026-12-01 18:00").unwrap(),
            "2026-12-01T17:00:00Z",
            "schedule zone"
        );
        assert_eq!(at("22:00").unwrap(), "2026-11-30T21:00:00Z", "later today");
        assert_eq!(
            at("09:00").unwrap(),
            "2026-12-01T08:00:00Z",
            "tomorrow morning"
        );
        assert_eq!(at("+3h").unwrap(), "2026-11-30T19:30:00Z");
        assert_eq!(at("+2d").unwrap(), "2026-12-02T16:30:00Z");
    }

    #[test]
    fn past_and_unreadable_times_are_refused_with_the_forms() {
        let past = at("2026-11-30 08:00").unwrap_err().to_string();
        assert!(
            past.contains("has passed") && past.contains("+3h"),
            "{past}"
        );
        let bad = at("tomorrow").unwrap_err().to_string();
        assert!(
            bad.contains("\"tomorrow\"") && bad.contains("not a time"),
            "{bad}"
        );
        assert!(at("+soon")
            .unwrap_err()
            .to_string()
            .contains("not a duration"));
    }
}
