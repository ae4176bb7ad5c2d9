#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lobfeed_core_fuzz::run("kraken", data));
