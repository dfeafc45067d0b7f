//! The built binaries are what the bed's Lambda service runs (tests/bed/lambda_local.py):
//! this integration test is also what makes `cargo test --workspace` build them.

use common::testing::stops_at_start_up_naming as stops_naming;

#[test]
fn without_its_account_provision_endpoints_stops_at_start_up_naming_it() {
    stops_naming(env!("CARGO_BIN_EXE_provision-endpoints"), "OWNER_ACCOUNT");
}
