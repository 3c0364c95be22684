//! `config::load_str` on arbitrary text: it must return Ok or Err with diagnostics, never panic,
//! and every diagnostic must render.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match imapsort::config::load_str(text, Path::new("/fuzz/config.yaml")) {
        Ok(config) => {
            // A valid file's rules must also answer the questions other layers ask.
            let _ = config.rules.needs();
        }
        Err(e) => {
            let _ = e.to_string();
            assert!(
                !e.diagnostics().is_empty(),
                "an invalid file without a diagnostic"
            );
        }
    }
});
