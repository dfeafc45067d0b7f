//! When the pause and resume schedules fire next: EventBridge Scheduler expressions
//! (`cron(minutes hours day-of-month month day-of-week year)`, `at(...)`, `rate(...)`) read in
//! the schedules' IANA time zone, as Scheduler reads them. EventBridge Scheduler has no call
//! that answers "next firing", so it is computed here.
//!
//! The cron forms the template's schedules use are understood: numbers, names (`JAN`,
//! `MON`), `*`, `?`, ranges, lists and steps; day-of-week counts 1 = SUN ... 7 = SAT.
//! `L`, `W` and `#` days and `rate(...)` (which counts from the schedule's creation) give no
//! answer (`None`), and the CLI shows the expression instead.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// How far ahead to look: a yearly schedule fires within this.
const HORIZON_DAYS: i32 = 5 * 366;

/// The allowed values of one cron field, `allowed[v - min]`.
#[derive(Debug, Clone)]
struct Field {
    min: u8,
    allowed: Vec<bool>,
}

impl Field {
    fn has(&self, value: i64) -> bool {
        value >= self.min as i64
            && self
                .allowed
                .get((value - self.min as i64) as usize)
                .copied()
                .unwrap_or(false)
    }
}

/// A parsed `cron(...)` expression.
#[derive(Debug, Clone)]
pub struct Cron {
    minutes: Field,
    hours: Field,
    days: Option<Field>,
    months: Field,
    weekdays: Option<Field>,
    years: Option<(i64, i64, i64)>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn value(text: &str, names: &[&str], min: u8) -> Option<u8> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Some(i as u8 + min);
    }
    text.parse().ok()
}

/// `*`, `?`, `a`, `a-b`, `*/n`, `a/n`, `a-b/n`, comma-separated. `None` for what is not
/// understood (`L`, `W`, `#`, out-of-range values).
fn field(text: &str, min: u8, max: u8, names: &[&str]) -> Option<Field> {
    let mut allowed = vec![false; (max - min + 1) as usize];
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, step.parse::<u8>().ok().filter(|s| *s > 0)?),
            None => (item, 1),
        };
        let (from, to) = match range {
            "*" | "?" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a, names, min)?, value(b, names, min)?),
                None => {
                    let a = value(range, names, min)?;
                    (a, if item.contains('/') { max } else { a })
                }
            },
        };
        if from < min || to > max || from > to {
            return None;
        }
        for v in (from..=to).step_by(step as usize) {
            allowed[(v - min) as usize] = true;
        }
    }
    Some(Field { min, allowed })
}

impl Cron {
    /// The six fields inside `cron(...)`.
    pub fn parse(fields: &str) -> Option<Cron> {
        let parts: Vec<&str> = fields.split_whitespace().collect();
        let [minutes, hours, days, months, weekdays, years] = parts.as_slice() else {
            return None;
        };
        let years = match *years {
            "*" => None,
            text => {
                let (range, step) = text.split_once('/').unwrap_or((text, "1"));
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                Some((a.parse().ok()?, b.parse().ok()?, step.parse().ok()?))
            }
        };
        Some(Cron {
            minutes: field(minutes, 0, 59, &[])?,
            hours: field(hours, 0, 23, &[])?,
            days: (*days != "?").then(|| field(days, 1, 31, &[])).flatten(),
            months: field(months, 1, 12, &MONTHS)?,
            weekdays: (*weekdays != "?")
                .then(|| field(weekdays, 1, 7, &WEEKDAYS))
                .flatten(),
            years,
        })
        .filter(|c| {
            // A field that was given but not understood (`L`, `W`, `#`) leaves no answer.
            (*days == "?" || c.days.is_some()) && (*weekdays == "?" || c.weekdays.is_some())
        })
    }

    fn runs_on(&self, date: Date) -> bool {
        let year_ok = self.years.is_none_or(|(a, b, step)| {
            let y = date.year() as i64;
            y >= a && y <= b && (y - a) % step.max(1) == 0
        });
        year_ok
            && self.months.has(date.month() as i64)
            && self.days.as_ref().is_none_or(|d| d.has(date.day() as i64))
            && self
                .weekdays
                .as_ref()
                .is_none_or(|w| w.has(date.weekday().to_sunday_one_offset() as i64))
    }

    /// The first firing after `now`, in `zone`.
    pub fn next_after(&self, now: &Zoned) -> Option<Zoned> {
        let zone = now.time_zone().clone();
        let mut date = now.date();
        for _ in 0..HORIZON_DAYS {
            if self.runs_on(date) {
                for hour in 0..24i8 {
                    if !self.hours.has(hour as i64) {
                        continue;
                    }
                    for minute in 0..60i8 {
                        if !self.minutes.has(minute as i64) {
                            continue;
                        }
                        let at = date.at(hour, minute, 0, 0).to_zoned(zone.clone()).ok()?;
                        if at.timestamp() > now.timestamp() {
                            return Some(at);
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

/// The next firing of a Scheduler expression after `now`, in `zone` (`None` when it cannot
/// be told: see the module's comment).
pub fn next_firing(expression: &str, zone: &TimeZone, now: Timestamp) -> Option<Zoned> {
    let now = now.to_zoned(zone.clone());
    let expression = expression.trim();
    if let Some(fields) = expression
        .strip_prefix("cron(")
        .and_then(|e| e.strip_suffix(')'))
    {
        return Cron::parse(fields)?.next_after(&now);
    }
    if let Some(at) = expression
        .strip_prefix("at(")
        .and_then(|e| e.strip_suffix(')'))
    {
        let at = at.parse::<DateTime>().ok()?.to_zoned(zone.clone()).ok()?;
        return (at.timestamp() > now.timestamp()).then_some(at);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    fn next(expression: &str, now: &str) -> Option<String> {
        let now: Timestamp = now.parse().unwrap();
        next_firing(expression, &berlin(), now).map(|z| z.to_string())
    }

    #[test]
    fn weekday_evenings_skip_the_weekend_in_the_schedules_zone() {
        // Friday 2026-11-27 21:00 in Berlin (20:00Z): tonight's 20:00 has passed.
        let at = next("cron(0 20 ? * MON-FRI *)", "2026-11-27T20:00:00Z").unwrap();
        assert_eq!(at, "2026-11-30T20:00:00+01:00[Europe/Berlin]");
        let morning = next("cron(0 7 ? * MON-FRI *)", "2026-11-30T05:00:00Z").unwrap();
        assert_eq!(
            morning, "2026-11-30T07:00:00+01:00[Europe/Berlin]",
            "later the same day"
        );
    }

    #[test]
    fn summer_time_keeps_the_local_hour() {
        // 2026-03-29: Berlin moves to +02:00; 07:00 local is 05:00Z from then on.
        let at = next("cron(0 7 * * ? *)", "2026-03-28T12:00:00Z").unwrap();
        assert_eq!(at, "2026-03-29T07:00:00+02:00[Europe/Berlin]");
    }

    #[test]
    fn names_lists_steps_days_of_month_and_years() {
        assert_eq!(
            next("cron(15,45 9-17/4 ? JAN,DEC SUN *)", "2026-12-01T00:00:00Z").unwrap(),
            "2026-12-06T09:15:00+01:00[Europe/Berlin]"
        );
        assert_eq!(
            next("cron(0 0 1 * ? 2027)", "2026-12-01T00:00:00Z").unwrap(),
            "2027-01-01T00:00:00+01:00[Europe/Berlin]"
        );
        assert_eq!(
            next("cron(*/20 * * * ? *)", "2026-12-01T00:05:00Z").unwrap(),
            "2026-12-01T01:20:00+01:00[Europe/Berlin]"
        );
    }

    #[test]
    fn one_time_schedules_and_what_cannot_be_told() {
        assert_eq!(
            next("at(2026-12-24T18:00:00)", "2026-12-01T00:00:00Z").unwrap(),
            "2026-12-24T18:00:00+01:00[Europe/Berlin]"
        );
        assert_eq!(
            next("at(2026-01-01T00:00:00)", "2026-12-01T00:00:00Z"),
            None,
            "past"
        );
        for unknown in [
            "rate(1 day)",
            "cron(0 20 L * ? *)",
            "cron(0 20 ? * 6#3 *)",
            "cron(0 20 * *)",
            "cron(0 25 * * ? *)",
            "cron(0 20 ? * MOO *)",
        ] {
            assert_eq!(next(unknown, "2026-12-01T00:00:00Z"), None, "{unknown}");
        }
        assert_eq!(
            next("cron(0 0 1 * ? 2020)", "2026-12-01T00:00:00Z"),
            None,
            "no year left"
        );
    }
}
