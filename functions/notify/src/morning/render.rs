//! The digest as a person reads it on a phone: plain text, short lines (a label, then the
//! figure), the total saving first.

use super::prices::{saving, Prices};
use super::{Night, Outcome};
use crate::message::iso8601;

/// Lines longer than this wrap on a phone's mail app in portrait.
pub const WIDTH: usize = 44;

/// `11-30 20:04 UTC`.
fn when(millis: i64) -> String {
    let t = iso8601(millis);
    format!("{} {} UTC", &t[5..10], &t[11..16])
}

/// `1.2 MB`, `850 KB`, `12 B`.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{} KB", b >> 10),
        b => format!("{b} B"),
    }
}

/// `4 min 10 s`, `35 s`.
fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// `11.0 h`; under an hour `25 min` (a wake soon after a pause).
fn hours(h: f64) -> String {
    if h < 1.0 {
        format!("{} min", (h * 60.0).round())
    } else {
        format!("{h:.1} h")
    }
}

fn money(usd: f64) -> String {
    format!("${usd:.2}")
}

/// `label   value`, the value wrapped under itself when long.
fn line(out: &mut Vec<String>, label: &str, value: &str) {
    let indent = 9;
    let mut first = true;
    let mut current = String::new();
    for word in value.split(' ') {
        if !current.is_empty() && indent + current.len() + 1 + word.len() > WIDTH {
            out.push(row(label, &current, first));
            first = false;
            current.clear();
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    out.push(row(label, &current, first));
}

fn row(label: &str, value: &str, first: bool) -> String {
    format!(" {:<8}{value}", if first { label } else { "" })
}

/// What one night saved, if the class has a price here.
pub fn night_saving(night: &Night, prices: &Prices) -> Option<(f64, f64)> {
    saving(night.size.as_ref()?, night.hours(), prices)
}

/// The subject (within SNS's 100 characters) and the body.
pub fn digest(date: &str, stack: &str, nights: &[Night], prices: &Prices) -> (String, String) {
    let resumed = nights
        .iter()
        .filter(|n| n.outcome == Outcome::Resumed)
        .count();
    let failed = nights
        .iter()
        .filter(|n| matches!(n.outcome, Outcome::Failed { .. }))
        .count();
    let savings: Vec<Option<(f64, f64)>> = nights
        .iter()
        .map(|n| night_saving(n, prices).filter(|_| n.hours() > 0.0))
        .collect();
    // Folded from 0.0: an empty f64 sum is -0.0, which prints "$-0.00".
    let total = savings.iter().flatten().fold(0.0, |sum, (_, s)| sum + s);
    let unpriced = nights
        .iter()
        .zip(&savings)
        .filter(|(n, s)| n.hours() > 0.0 && s.is_none())
        .count();
    let mut counts = vec![format!("{resumed} resumed")];
    if failed > 0 {
        counts.push(format!("{failed} FAILED"));
    }
    let subject = format!(
        "[mwaa-ops] Morning {date}: {}, saved ~{}",
        counts.join(", "),
        money(total)
    );
    let mut out = vec![
        format!("mwaa-ops ({stack}), night to {date}"),
        format!("Saved about {} overnight.", money(total)),
    ];
    if unpriced > 0 {
        out.push(format!(
            "{unpriced} without a price in {} (see below).",
            prices.region
        ));
    }
    for (night, saved) in nights.iter().zip(&savings) {
        out.push(String::new());
        environment(&mut out, night, *saved, prices);
    }
    out.push(String::new());
    out.push("Saving = hours deleted x hourly price".into());
    out.push("(class, extra workers, schedulers,".into());
    out.push("web servers). Prices:".into());
    if prices.source.is_empty() {
        out.push(format!("none for {}: set DigestPrices.", prices.region));
    } else {
        let mut sources = vec![];
        line(&mut sources, "", &prices.source);
        out.extend(sources.into_iter().map(|l| l.trim_start().to_owned()));
    }
    (subject, out.join("\n"))
}

fn environment(out: &mut Vec<String>, night: &Night, saved: Option<(f64, f64)>, prices: &Prices) {
    match &night.outcome {
        Outcome::Resumed => out.push(format!("{}: resumed", night.environment)),
        Outcome::NotResumed(reason) => {
            out.push(format!("{}: not paused", night.environment));
            line(out, "why", reason);
            return;
        }
        Outcome::Failed {
            status,
            step,
            error,
        } => {
            out.push(format!(
                "{}: {status} at {}",
                night.environment,
                step.as_deref().unwrap_or("an unknown step")
            ));
            if let Some(error) = error {
                line(out, "error", error);
            }
        }
    }
    if let Some(paused) = night.paused_ms.filter(|_| night.hours() > 0.0) {
        line(out, "paused", &when(paused));
        line(out, "resumed", &when(night.resumed_ms));
        line(out, "down", &hours(night.hours()));
    }
    match (saved, &night.size) {
        (Some((hourly, total)), Some(size)) => {
            line(out, "saved", &format!("~{}", money(total)));
            line(
                out,
                "",
                &format!(
                    "{} x {}/h {}",
                    hours(night.hours()),
                    money(hourly),
                    size.class
                ),
            );
        }
        (None, Some(size)) if night.hours() > 0.0 => line(
            out,
            "saved",
            &format!("unknown: no price for {} in {}", size.class, prices.region),
        ),
        _ => {}
    }
    line(
        out,
        "held",
        &format!(
            "{} arrivals: {} run, {} set aside",
            night.held, night.replayed, night.set_aside
        ),
    );
    if let Some(export) = &night.export {
        line(
            out,
            "export",
            &format!("{} rows, {}", export.rows, size(export.bytes)),
        );
        if let Some(seconds) = export.seconds {
            line(out, "", &format!("in {}", duration(seconds)));
        }
    }
    if let Some(on) = night.dags_on {
        line(out, "DAGs", &format!("{on} on again"));
    }
    if !night.dags_missing.is_empty() {
        let mut shown: Vec<&str> = night
            .dags_missing
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        let more = night.dags_missing.len().saturating_sub(5);
        let extra = format!("and {more} more");
        if more > 0 {
            shown.push(&extra);
        }
        line(
            out,
            "missing",
            &format!("{} DAGs: {}", night.dags_missing.len(), shown.join(", ")),
        );
    }
}
