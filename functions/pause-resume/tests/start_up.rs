//! The built binaries are what the bed's Lambda service runs (tests/bed/lambda_local.py):
//! this integration test is also what makes `cargo test --workspace` build them.

use common::testing::stops_at_start_up_naming as stops_naming;

#[test]
fn a_step_without_its_bucket_stops_at_start_up_naming_it() {
    stops_naming(env!("CARGO_BIN_EXE_environment-status"), "SUITE_BUCKET");
    stops_naming(env!("CARGO_BIN_EXE_save-configuration"), "SUITE_BUCKET");
    stops_naming(env!("CARGO_BIN_EXE_create-environment"), "SUITE_BUCKET");
    stops_naming(env!("CARGO_BIN_EXE_delete-environment"), "SUITE_BUCKET");
}

/// The steps that need no setting still exist as binaries (the bed runs every one).
#[test]
fn every_step_is_a_binary() {
    for binary in [
        env!("CARGO_BIN_EXE_run-dag"),
        env!("CARGO_BIN_EXE_verify-export"),
        env!("CARGO_BIN_EXE_enable-dags"),
    ] {
        assert!(std::path::Path::new(binary).is_file(), "{binary}");
    }
}
