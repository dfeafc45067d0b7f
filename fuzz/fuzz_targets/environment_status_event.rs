#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mwaa_ops_tests::properties::environment_status_event(data);
});
