//! `mwaa-ops`: see and steer the environments an mwaa-ops stack runs, from a terminal or a
//! script. It finds the stack's resources from its outputs, acts with the caller's own AWS
//! credentials (AWS or the local bed, through the standard endpoint variables), prints
//! tables for people and `--json` for scripts, and exits non-zero with a message naming what
//! failed.

pub mod commands;
pub mod ops;
pub mod render;
pub mod schedule;
pub mod stack;
pub mod until;

use clap::{Parser, Subcommand};
use serde_json::Value;

/// See and steer the MWAA environments an mwaa-ops stack pauses at night and resumes in the
/// morning.
#[derive(Debug, Parser)]
#[command(name = "mwaa-ops", version)]
pub struct Cli {
    /// The CloudFormation stack of the suite (`sam deploy`'s stack name).
    #[arg(
        long,
        global = true,
        env = "MWAA_OPS_STACK",
        default_value = "mwaa-ops"
    )]
    pub stack: String,
    /// Print one JSON document instead of a table (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every environment of the suite: state, last pause and resume, next scheduled ones,
    /// held arrivals, overrides.
    Status,
    /// Pause an environment now (export, verify, delete).
    Pause(Start),
    /// Resume an environment now (create, import, replay held arrivals).
    Resume(Start),
    /// Skip the environment's next pause (tonight's); `--cancel` takes it back.
    Skip {
        environment: String,
        #[arg(long)]
        cancel: bool,
    },
    /// No pause until TIME: each pause until then ends "Skipped" and says why.
    StayUp {
        environment: String,
        /// `2026-12-01T18:00+01:00`, `2026-12-01 18:00` or `18:00` (in the schedules' time
        /// zone), or `+3h` / `+2d` from now.
        #[arg(long, required_unless_present = "cancel")]
        until: Option<String>,
        /// End a stay-up now: the next scheduled pause runs.
        #[arg(long, conflicts_with = "until")]
        cancel: bool,
    },
    /// Resume now and wait until the environment is back (optionally keep it up until TIME).
    Wake {
        environment: String,
        /// Also keep it up until this time (as `stay-up --until`).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 60)]
        poll_seconds: u64,
    },
    /// The arrivals held while the environment was away.
    Held { environment: String },
    /// Start the environment's held arrivals now (trigger-dag's replay).
    Replay { environment: String },
    /// Print the shell completion script (`mwaa-ops completions bash > ...`).
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, clap::Args)]
pub struct Start {
    pub environment: String,
    /// Wait until the execution ends; a failure exits non-zero.
    #[arg(long)]
    pub wait: bool,
    /// How often the execution polls MWAA for the environment's status.
    #[arg(long, default_value_t = 60)]
    pub poll_seconds: u64,
}

/// What a command has to say, for people (`text`) and for scripts (`json`).
#[derive(Debug)]
pub struct Report {
    pub json: Value,
    pub text: String,
}

/// Runs one command against the suite of `cli.stack`.
pub async fn run(cli: Cli) -> Result<Report, common::Error> {
    if let Command::Completions { shell } = cli.command {
        let mut out = Vec::new();
        clap_complete::generate(
            shell,
            &mut <Cli as clap::CommandFactory>::command(),
            "mwaa-ops",
            &mut out,
        );
        let text = String::from_utf8_lossy(&out).into_owned();
        return Ok(Report {
            json: Value::String(text.clone()),
            text,
        });
    }
    let aws = ops::Aws::from_env().await;
    let suite = stack::find(&aws.cloudformation, &cli.stack).await?;
    let ctx = commands::Context::new(&aws, &suite)?;
    match cli.command {
        Command::Status => ctx.status().await,
        Command::Pause(start) => ctx.start(commands::Action::Pause, &start).await,
        Command::Resume(start) => ctx.start(commands::Action::Resume, &start).await,
        Command::Skip {
            environment,
            cancel,
        } => ctx.skip(&environment, cancel).await,
        Command::StayUp {
            environment,
            until,
            cancel,
        } => ctx.stay_up(&environment, until.as_deref(), cancel).await,
        Command::Wake {
            environment,
            until,
            poll_seconds,
        } => ctx.wake(&environment, until.as_deref(), poll_seconds).await,
        Command::Held { environment } => ctx.held(&environment).await,
        Command::Replay { environment } => ctx.replay(&environment).await,
        Command::Completions { .. } => unreachable!("answered above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn stay_up_needs_a_time_or_cancel_and_not_both() {
        assert!(Cli::try_parse_from(["mwaa-ops", "stay-up", "dev"]).is_err());
        assert!(
            Cli::try_parse_from(["mwaa-ops", "stay-up", "dev", "--cancel", "--until", "+1h"])
                .is_err()
        );
        let cli = Cli::try_parse_from(["mwaa-ops", "--json", "stay-up", "dev", "--until", "+1h"])
            .unwrap();
        assert!(cli.json && cli.stack == "mwaa-ops");
    }
}
