//! What an hour of an MWAA environment costs, to estimate what a night paused saved.
//!
//! MWAA bills an environment by the hour for its class (one worker, the included schedulers
//! and web servers), and each worker, scheduler or web server beyond those by the hour
//! too. A deleted environment bills nothing, so a night paused saves
//! `hours x (environment + extra workers x worker + extra schedulers x scheduler + extra web
//! servers x web server)` at the class's prices. The metadata database's storage is left
//! out (cents a month).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Where [`BUILT_IN`] comes from and when it was read, printed under every digest's saving
/// (the page: <https://aws.amazon.com/managed-workflows-for-apache-airflow/pricing/>; its
/// address is too long for a phone's line).
pub const SOURCE: &str = "AWS's MWAA pricing page, us-east-1, read 2026-11-30";

/// An hour of one environment class, in USD.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassPrice {
    pub environment: f64,
    pub worker: f64,
    pub scheduler: f64,
    pub webserver: f64,
}

const fn price(environment: f64, worker: f64) -> ClassPrice {
    // The pricing page lists one price for an additional worker, scheduler or web server
    // of a class.
    ClassPrice {
        environment,
        worker,
        scheduler: worker,
        webserver: worker,
    }
}

/// Region -> class -> hourly prices, from [`SOURCE`] (mw1.small's also in AWS's own
/// start/stop article: $357.80 a month always on). Regions and classes not listed have no
/// built-in price: the template's `DigestPrices` gives them (or corrects these).
pub const BUILT_IN: &[(&str, &[(&str, ClassPrice)])] = &[(
    "us-east-1",
    &[
        ("mw1.small", price(0.49, 0.055)),
        ("mw1.medium", price(0.74, 0.11)),
        ("mw1.large", price(0.99, 0.22)),
    ],
)];

/// The prices the digest uses: the built-in ones of the stack's region, with the
/// `DIGEST_PRICES` override (`{"mw1.small": {"environment": 0.49, "worker": 0.055,
/// "scheduler": 0.055, "webserver": 0.055}, ...}`) on top.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    pub region: String,
    pub classes: BTreeMap<String, ClassPrice>,
    /// Where the prices come from: [`SOURCE`], "DigestPrices", or both.
    pub source: String,
}

impl Prices {
    /// The region's prices; `overrides` is the `DIGEST_PRICES` text (empty: none). A bad
    /// override names what is wrong.
    pub fn for_region(region: &str, overrides: &str) -> Result<Self, String> {
        let mut classes: BTreeMap<String, ClassPrice> = BUILT_IN
            .iter()
            .filter(|(r, _)| *r == region)
            .flat_map(|(_, classes)| classes.iter())
            .map(|(class, p)| ((*class).to_owned(), *p))
            .collect();
        let mut source = if classes.is_empty() {
            String::new()
        } else {
            SOURCE.to_owned()
        };
        if !overrides.trim().is_empty() {
            let given: BTreeMap<String, ClassPrice> =
                serde_json::from_str(overrides).map_err(|e| format!("DIGEST_PRICES: {e}"))?;
            if let Some((class, _)) = given.iter().find(|(_, p)| {
                [p.environment, p.worker, p.scheduler, p.webserver]
                    .iter()
                    .any(|v| !v.is_finite() || *v < 0.0)
            }) {
                return Err(format!(
                    "DIGEST_PRICES: {class}: prices are USD per hour, 0 or more"
                ));
            }
            classes.extend(given);
            source = if source.is_empty() {
                "the stack's DigestPrices".into()
            } else {
                format!("{source}; the stack's DigestPrices over it")
            };
        }
        Ok(Prices {
            region: region.to_owned(),
            classes,
            source,
        })
    }
}

/// How an environment is sized, from its saved configuration (CreateEnvironment's member
/// names); MWAA's defaults where a member is absent.
#[derive(Debug, Clone, PartialEq)]
pub struct Size {
    pub class: String,
    pub min_workers: u64,
    pub schedulers: u64,
    pub min_webservers: u64,
}

impl Size {
    pub fn of(configuration: &Value) -> Self {
        let count = |name: &str, default: u64| {
            configuration
                .get(name)
                .and_then(Value::as_u64)
                .unwrap_or(default)
        };
        let class = configuration
            .get("EnvironmentClass")
            .and_then(Value::as_str)
            .unwrap_or("mw1.small")
            .to_owned();
        // mw1.micro runs one scheduler and one web server; the other classes two of each.
        let included = if class == "mw1.micro" { 1 } else { 2 };
        Size {
            min_workers: count("MinWorkers", 1),
            schedulers: count("Schedulers", included),
            min_webservers: count("MinWebservers", included),
            class,
        }
    }

    fn included(&self) -> u64 {
        if self.class == "mw1.micro" {
            1
        } else {
            2
        }
    }
}

/// What `hours` paused saved at `prices`: the hourly price and the saving, in USD.
/// `None` when the class has no price in this region.
pub fn saving(size: &Size, hours: f64, prices: &Prices) -> Option<(f64, f64)> {
    let p = prices.classes.get(&size.class)?;
    let extra = |have: u64, included: u64| have.saturating_sub(included) as f64;
    let hourly = p.environment
        + extra(size.min_workers, 1) * p.worker
        + extra(size.schedulers, size.included()) * p.scheduler
        + extra(size.min_webservers, size.included()) * p.webserver;
    Some((hourly, hourly * hours.max(0.0)))
}
