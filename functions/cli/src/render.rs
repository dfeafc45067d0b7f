//! What people read: aligned tables and times in the schedules' time zone. Scripts use
//! `--json` instead, which prints the same facts as one JSON document.

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `2026-11-30 20:00 CET`: minutes are what people plan with.
pub fn local(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned(zone.clone())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// `-` for nothing.
pub fn or_dash(cell: Option<String>) -> String {
    cell.filter(|c| !c.is_empty()).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_whatever_the_cell_widths() {
        let text = table(
            &["ENVIRONMENT", "STATE", "HELD"],
            &[
                vec!["dev-a".into(), "AVAILABLE".into(), "0".into()],
                vec!["dev-analytics-long".into(), "PAUSED".into(), "12".into()],
            ],
        );
        assert_eq!(
            text,
            "ENVIRONMENT         STATE      HELD\n\
             dev-a               AVAILABLE  0\n\
             dev-analytics-long  PAUSED     12\n"
        );
    }

    #[test]
    fn times_are_shown_in_the_schedules_zone() {
        let t: Timestamp = "2026-11-30T19:00:00Z".parse().unwrap();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(local(t, &berlin), "2026-11-30 20:00 CET");
        assert_eq!(or_dash(None), "-");
        assert_eq!(or_dash(Some(String::new())), "-");
    }
}
