//! The operator templates in `examples/operator/` stay in step with the
//! binary: every `dreamdb <verb>` they run names a verb `dreamdb --help`
//! lists (or one of the documented pending verbs, which must then NOT be
//! listed yet and the template must say it needs a newer build); every
//! template opens with a comment block stating its policy; every YAML
//! file passes a minimal structural check (no YAML parser is among the
//! workspace dependencies: indentation, `key:` / `- item` lines, block
//! scalars, balanced brackets and quotes, `apiVersion` and `kind` per
//! document).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Verbs templates may use before the binary ships them (none now: the
/// spatial maintenance verbs ship in `cmd_spatial`).
const PENDING: &[&str] = &[];

fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join("operator")
}

fn templates() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(templates_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The verbs `dreamdb --help` lists under "Commands:".
fn shipped_verbs() -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_dreamdb"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let mut verbs = BTreeSet::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            in_commands = true;
            continue;
        }
        if in_commands {
            if line.trim().is_empty() {
                break;
            }
            if let Some(verb) = line.split_whitespace().next() {
                verbs.insert(verb.to_owned());
            }
        }
    }
    verbs.remove("help");
    assert!(
        verbs.contains("gc") && verbs.contains("verify"),
        "{verbs:?}"
    );
    verbs
}

/// The text of a template that holds commands: YAML and shell without
/// comment lines; Markdown's fenced code blocks.
fn command_text(path: &Path, text: &str) -> String {
    let markdown = path.extension().is_some_and(|e| e == "md");
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if markdown {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if !fenced {
                // Inline code spans in prose.
                for (i, span) in line.split('`').enumerate() {
                    if i % 2 == 1 {
                        out.push_str(span);
                        out.push('\n');
                    }
                }
                continue;
            }
        } else if line.trim_start().starts_with('#') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every verb a `dreamdb` command in `text` runs.
fn verbs_run(text: &str) -> Vec<String> {
    let tokens: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || "-_./{}@*".contains(c)))
        .filter(|t| !t.is_empty() && *t != "-")
        .collect();
    let mut verbs = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "dreamdb" {
            let mut j = i + 1;
            while j < tokens.len() {
                match tokens[j] {
                    "--json" | "--quiet" | "-q" => j += 1,
                    "--backend" | "--dataset" => j += 2,
                    _ => break,
                }
            }
            if let Some(verb) = tokens.get(j) {
                verbs.push((*verb).to_owned());
            }
            i = j;
        }
        i += 1;
    }
    verbs
}

#[test]
fn every_command_names_a_real_verb() {
    let shipped = shipped_verbs();
    let mut seen = BTreeSet::new();
    for path in templates() {
        let text = std::fs::read_to_string(&path).unwrap();
        let verbs = verbs_run(&command_text(&path, &text));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for verb in verbs {
            if PENDING.contains(&verb.as_str()) {
                assert!(
                    !shipped.contains(&verb),
                    "{verb} ships now: remove it from PENDING and the REQUIRES notes"
                );
                assert!(
                    text.contains("REQUIRES a dreamdb build"),
                    "{name} runs pending verb {verb} without saying it needs a newer build"
                );
            } else {
                assert!(
                    shipped.contains(&verb),
                    "{name} runs `dreamdb {verb}`, which `dreamdb --help` does not list ({shipped:?})"
                );
            }
            seen.insert(verb);
        }
    }
    for needed in [
        "gc",
        "verify",
        "merge-many",
        "branch",
        "merge",
        "ada-ivf-status",
    ] {
        assert!(seen.contains(needed), "no template runs `dreamdb {needed}`");
    }
}

#[test]
fn the_verb_scanner_finds_verbs_across_lines() {
    let yaml = "command:\n  - dreamdb\n  - --json\n  - gc\nx: $(dreamdb --backend b verify)\n";
    assert_eq!(verbs_run(yaml), ["gc", "verify"]);
    assert_eq!(verbs_run("[\"dreamdb\", \"--json\", \"log\"]"), ["log"]);
    assert!(verbs_run("image: ghcr.io/dreamdb/dreamdb:0.1").is_empty());
}

#[test]
fn every_template_states_its_policy() {
    for path in templates() {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.display();
        let opening: String = if path.extension().is_some_and(|e| e == "md") {
            text.lines().take(8).collect::<Vec<_>>().join("\n")
        } else {
            text.lines()
                .skip_while(|l| l.starts_with("#!"))
                .take_while(|l| l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(
            opening.contains("Policy:"),
            "{name} does not open with a comment block stating its policy"
        );
    }
}

/// A minimal structural check of one YAML document stream.
fn check_yaml(text: &str) -> Result<(), String> {
    if text.contains('\t') {
        return Err("tab character".into());
    }
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line == "---" {
            documents.push(String::new());
        } else if let Some(last) = documents.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    for (d, doc) in documents.iter().enumerate() {
        for key in ["apiVersion:", "kind:", "metadata:", "spec:"] {
            if !doc.lines().any(|l| l.starts_with(key)) {
                return Err(format!("document {d} has no top-level {key}"));
            }
        }
        let lines: Vec<&str> = doc.lines().collect();
        let mut block_indent: Option<usize> = None;
        let mut expect_child: Option<(usize, usize)> = None;
        for (n, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some(b) = block_indent {
                if indent > b {
                    continue;
                }
                block_indent = None;
            }
            if let Some((parent_indent, parent_line)) = expect_child.take() {
                let ok =
                    indent > parent_indent || (indent == parent_indent && trimmed.starts_with('-'));
                if !ok {
                    return Err(format!(
                        "line {parent_line}: key with no value and no children"
                    ));
                }
            }
            if indent % 2 != 0 {
                return Err(format!("line {}: odd indentation", n + 1));
            }
            let item = trimmed
                .strip_prefix("- ")
                .or_else(|| (trimmed == "-").then_some(""))
                .unwrap_or(trimmed);
            let is_item = item.len() != trimmed.len();
            let key_end = item
                .find(": ")
                .or_else(|| item.ends_with(':').then(|| item.len() - 1));
            let value = match key_end {
                Some(end)
                    if item[..end]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-./\"".contains(c))
                        && end > 0 =>
                {
                    item[end + 1..].trim()
                }
                _ if is_item => item,
                _ => {
                    return Err(format!(
                        "line {}: neither `key:` nor `- item`: {line}",
                        n + 1
                    ))
                }
            };
            let quotes = value.matches('"').count() - value.matches("\\\"").count();
            if quotes % 2 != 0 {
                return Err(format!("line {}: unbalanced quotes", n + 1));
            }
            if value.matches('[').count() != value.matches(']').count()
                || value.matches('{').count() != value.matches('}').count()
            {
                return Err(format!("line {}: unbalanced brackets", n + 1));
            }
            if matches!(value, "|" | "|-" | ">" | ">-") {
                block_indent = Some(indent);
            } else if value.is_empty() && key_end.is_some() {
                expect_child = Some((indent + if is_item { 2 } else { 0 }, n + 1));
            }
        }
        if let Some((_, line)) = expect_child {
            return Err(format!("line {line}: key with no value at the end"));
        }
    }
    Ok(())
}

#[test]
fn every_yaml_template_is_structurally_sane() {
    let mut checked = 0;
    for path in templates() {
        if !path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = check_yaml(&text) {
            panic!("{}: {e}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} YAML templates");
}

#[test]
fn the_yaml_check_catches_breakage() {
    let good = "apiVersion: v1\nkind: X\nmetadata:\n  name: a\nspec:\n  list:\n    - a\n    - b: c\n  s: |\n    free text: here\n";
    assert_eq!(check_yaml(good), Ok(()));
    assert!(check_yaml(&good.replace("  name", "\tname")).is_err());
    assert!(check_yaml(&good.replace("  name: a", "   name: a")).is_err());
    assert!(check_yaml(&good.replace("kind: X\n", "")).is_err());
    assert!(check_yaml(&good.replace("    - a", "    - [a")).is_err());
    assert!(check_yaml(&good.replace("metadata:\n  name: a", "metadata:\nname a")).is_err());
    assert!(check_yaml("apiVersion: v1\nkind: X\nmetadata:\nspec:\n  a: 1\n").is_err());
}
