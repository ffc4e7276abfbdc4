//! Runs last (test targets run in name order, and the library has no doctests): one closing line
//! naming every backend and data set the tests before it could not use, from the reasons
//! `common::skip` recorded. Without harness: it only reports.

use std::collections::BTreeMap;
use std::path::Path;

fn main() {
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aldfit-skipped.tsv");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let mut first: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines() {
        if let Some((what, why)) = line.split_once('\t') {
            first.entry(what).or_insert(why);
        }
    }
    if first.is_empty() {
        println!("aldfit tests: nothing skipped (every backend and data set was used)");
    } else {
        let parts: Vec<String> = first
            .iter()
            .map(|(what, why)| format!("{what} ({why})"))
            .collect();
        println!("aldfit tests skipped: {}", parts.join("; "));
    }
}
