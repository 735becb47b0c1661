//! Every check id is documented: the README's check tables (the tables whose first column
//! is `id`) list exactly the ids of `host::CheckId`.

use host::CheckId;
use std::collections::BTreeSet;

/// The backquoted words in the first column of every README table headed `| id |`, before
/// any parenthesis (which says when the check runs: "`uv-ap` (with `--mdev`)").
fn readme_table_ids() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md next to the workspace");
    let mut ids = BTreeSet::new();
    let mut in_id_table = false;
    for line in readme.lines() {
        if !line.starts_with('|') {
            in_id_table = false;
            continue;
        }
        if line.starts_with("| id |") {
            in_id_table = true;
            continue;
        }
        if !in_id_table || line.starts_with("|---") {
            continue;
        }
        let first = line.split('|').nth(1).unwrap_or("");
        let first = first.split('(').next().unwrap_or("");
        ids.extend(first.split('`').skip(1).step_by(2).map(str::to_string));
    }
    ids
}

#[test]
fn every_check_id_is_in_a_readme_check_table_and_nothing_else_is() {
    let documented = readme_table_ids();
    assert!(
        documented.len() > 20,
        "no check tables found: {documented:?}"
    );
    let missing: Vec<_> = CheckId::ALL
        .iter()
        .filter(|id| !documented.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the README's check tables: {missing:?}"
    );
    let unknown: Vec<_> = documented
        .iter()
        .filter(|text| text.parse::<CheckId>().is_err())
        .collect();
    assert!(
        unknown.is_empty(),
        "README check tables name unknown ids: {unknown:?}"
    );
}
