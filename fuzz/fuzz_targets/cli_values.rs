//! Option values typed by operators (`--pattern`, `--verify`) and RFC 3339
//! timestamps read back from the job store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lethe_core::pattern::Pattern;
use lethe_core::plan::VerifyMode;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = s.parse::<Pattern>() {
            assert_eq!(p.to_string().parse::<Pattern>().ok(), Some(p));
        }
        if let Ok(v) = s.parse::<VerifyMode>() {
            assert_eq!(v.to_string().parse::<VerifyMode>().ok(), Some(v));
        }
        if let Some(t) = lethe_core::timefmt::parse_rfc3339_utc(s) {
            assert_eq!(lethe_core::timefmt::rfc3339_utc(t), s);
        }
    }
});
