//! The image reference parser (`crates/cove-image/src/reference.rs`, through
//! `ImageStore::normalize`, which gives the database key): never panics, and the canonical
//! form of an accepted reference is itself accepted and canonical (so one image has one key).
#![no_main]

use cove_image::ImageStore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = ImageStore::normalize(s) {
        assert!(
            !key.chars().any(|c| c.is_whitespace() || c.is_control()),
            "key {key:?} of {s:?} has whitespace or control characters"
        );
        match ImageStore::normalize(&key) {
            Ok(again) => assert_eq!(again, key, "the key of {s:?} is not stable"),
            Err(e) => panic!("the key {key:?} of {s:?} is rejected: {e}"),
        }
    }
});
