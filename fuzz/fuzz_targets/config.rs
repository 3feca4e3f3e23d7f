//! Configuration loading (`sendpigeon_relay::config::load_str` and `load_str_with_limit`) on
//! arbitrary text: never a panic, an error is fine. The error and the warnings of an accepted
//! configuration are formatted as the CLI prints them.
//!
//! Input: the TOML text (invalid UTF-8 is replaced, as a lossy read would). `load_str` reads
//! this machine's cgroup limit; `load_str_with_limit` is also run with no limit and with a
//! limit taken from the text's length, so budgets derived from a container limit are explored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sendpigeon_relay::config::{Overrides, load_str, load_str_with_limit, warnings};
use sendpigeon_relay::memory::limit::{CgroupLimit, CgroupVersion};

fn check(result: Result<sendpigeon_relay::config::Config, sendpigeon_relay::config::ConfigError>) {
    match result {
        Ok(config) => {
            for w in warnings(&config) {
                let _ = w.to_string();
            }
            let _ = format!("{config:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let overrides = Overrides::default();
    check(load_str(&text, &overrides));
    check(load_str_with_limit(&text, &overrides, None));
    let limit = CgroupLimit {
        bytes: (data.len() as u64 + 1) << 20,
        version: if data.len().is_multiple_of(2) {
            CgroupVersion::V1
        } else {
            CgroupVersion::V2
        },
    };
    check(load_str_with_limit(&text, &overrides, Some(limit)));
});
