//! Printing results: human text by default, JSON with `--json`.
//!
//! Every command builds one serialisable result and hands it here with a
//! closure that writes the human form, so the two forms cannot drift apart
//! in what they report.

use serde::Serialize;

/// Prints `value` as pretty JSON, or runs `human`.
pub fn emit<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("results always serialise")
        );
    } else {
        human(value);
    }
}
