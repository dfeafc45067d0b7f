//! `mwaa-ops`: see `mwaa-ops --help` and the README's "Operate" section.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = mwaa_ops_cli::Cli::parse();
    let json = cli.json;
    match mwaa_ops_cli::run(cli).await {
        Ok(report) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report.json).unwrap_or_default()
            );
            std::process::ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", report.text);
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("mwaa-ops: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
