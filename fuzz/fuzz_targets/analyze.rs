#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| icidtrace_fuzz::analyze(data));
