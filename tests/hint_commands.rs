//! Every `aplaunch ...` command that a hint, message or explanation in the sources names
//! exists: its subcommands and long options are in the command-line definition (a hint
//! must never send a user to a command aplaunch does not have).

use aplaunch::cli::Cli;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The `aplaunch ...` commands quoted in backticks in `text`.
fn quoted_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("`aplaunch ") {
        let after = &rest[at + 1..];
        match after.find('`') {
            Some(end) => {
                out.push(after[..end].to_string());
                rest = &after[end..];
            }
            None => break,
        }
    }
    out
}

/// Checks one command against the definition; returns what does not exist.
fn missing(command: &str) -> Option<String> {
    let root = Cli::command();
    let mut path: Vec<&clap::Command> = vec![&root];
    let words: Vec<&str> = command.split_whitespace().skip(1).collect();
    // `aplaunch --mdev ...` is `aplaunch launch --mdev ...`
    if words.first().is_some_and(|w| w.starts_with("--")) {
        path.push(root.find_subcommand("launch").unwrap());
    }
    let mut expect_sub = true;
    for word in words {
        if word == "..." || word.starts_with('{') || word.starts_with('[') {
            continue;
        }
        if let Some(long) = word.strip_prefix("--") {
            let name = long.split('=').next().unwrap();
            let known = path
                .iter()
                .any(|c| c.get_arguments().any(|a| a.get_long() == Some(name)));
            if !known {
                return Some(format!("option --{name} in `{command}`"));
            }
            continue;
        }
        if word.starts_with('-') {
            continue; // a value such as -A, or a short option
        }
        let current = *path.last().unwrap();
        if expect_sub && current.has_subcommands() {
            // `inspect|verify` names two
            let mut found = None;
            for alternative in word.split('|') {
                match current.find_subcommand(alternative) {
                    Some(sub) => found = Some(sub),
                    None => {
                        return Some(format!("command `{alternative}` in `{command}`"));
                    }
                }
            }
            path.push(found.unwrap());
            continue;
        }
        // a positional value (UUID, IMG, TEXT): no more subcommands after it
        expect_sub = false;
    }
    None
}

#[test]
fn every_command_a_hint_names_exists() {
    let root = testkit::hosttree::workspace_root();
    let mut files = Vec::new();
    for dir in ["launcher/src", "vfio/src", "pv/src", "host/src", "src"] {
        if root.join(dir).is_dir() {
            sources(&root.join(dir), &mut files);
        }
    }
    let mut seen = 0;
    let mut wrong = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for command in quoted_commands(&text) {
            seen += 1;
            if let Some(what) = missing(&command) {
                wrong.push(format!("{}: {what}", file.display()));
            }
        }
    }
    assert!(seen > 30, "only {seen} quoted commands found");
    assert!(
        wrong.is_empty(),
        "hints name what does not exist:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_finds_a_command_that_does_not_exist() {
    assert_eq!(missing("aplaunch qmp list --qmp SOCK"), None);
    assert_eq!(missing("aplaunch --mdev U --pv-image I"), None);
    assert_eq!(missing("aplaunch image inspect|verify"), None);
    assert!(missing("aplaunch qmp quit --qmp SOCK").is_some());
    assert!(missing("aplaunch qmp list --force-it").is_some());
}
