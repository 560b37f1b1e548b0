//! Every relative link in the documentation leads somewhere: README.md,
//! docs/*.md and deploy/RUNBOOK.md link to files that exist and to headings
//! that exist in them, and the references to a page (`docs/time.md#...`,
//! `README.md#...`) or to a README section (`README "Quick start"`) in code,
//! tests, scripts and deployment files name a heading that is there.
//!
//! Anchors are GitHub's: the heading text lower-cased, everything but
//! letters, digits, spaces, `-` and `_` dropped, spaces made `-`, and `-1`,
//! `-2`, ... appended to repeats.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The anchors of a markdown file's headings, outside fenced code blocks.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let Some(title) = heading(line).filter(|_| !fenced) else {
            continue;
        };
        let slug = slug(title);
        let mut unique = slug.clone();
        let mut n = 0;
        while seen.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        seen.insert(unique);
    }
    seen
}

/// The text of an ATX heading line (`## Title`), if it is one.
fn heading(line: &str) -> Option<&str> {
    let hashes = line.len() - line.trim_start_matches('#').len();
    let rest = &line[hashes..];
    ((1..=6).contains(&hashes) && rest.starts_with(' ')).then(|| rest.trim())
}

fn slug(title: &str) -> String {
    title
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The targets of the inline links `[text](target)` of a markdown file,
/// outside fenced code blocks and code spans.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Code spans hold no links, but a link's text may hold a code span.
        let prose: String = line.split('`').step_by(2).collect();
        let mut rest = prose.as_str();
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            if let Some(end) = rest.find(')') {
                targets.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    targets
}

/// Checks `target` (`path`, `path#anchor` or `#anchor`) as written in
/// `from`; relative paths resolve against `base`.
fn check(from: &str, base: &Path, own: &Path, target: &str, problems: &mut Vec<String>) {
    if target.contains("://") || target.starts_with("mailto:") {
        return;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let file = if path.is_empty() {
        own.to_path_buf()
    } else {
        base.join(path)
    };
    if !file.exists() {
        problems.push(format!("{from}: {target}: no such file"));
        return;
    }
    let Some(anchor) = anchor else { return };
    let known = fs::read_to_string(&file).map(|text| anchors(&text));
    if !known.is_ok_and(|known| known.contains(anchor)) {
        problems.push(format!("{from}: {target}: no such heading"));
    }
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("deploy/RUNBOOK.md")];
    for entry in fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "md") {
            files.push(path);
        }
    }
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn markdown_problems() -> Vec<String> {
    let mut problems = Vec::new();
    for file in markdown_files() {
        let text = fs::read_to_string(&file).unwrap();
        let from = relative(&file);
        for target in link_targets(&text) {
            check(&from, file.parent().unwrap(), &file, &target, &mut problems);
        }
    }
    problems
}

/// Files outside the documentation that may point into it (Markdown files
/// are checked as documentation, the golden files hold none).
fn source_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !name.starts_with('.') && name != "__pycache__" && name != "golden" {
                source_files(&path, files);
            }
        } else if fs::read_to_string(&path).is_ok() && path.extension().is_none_or(|e| e != "md") {
            files.push(path);
        }
    }
}

/// `docs/<page>.md#anchor`, `README.md#anchor` and `README "Title"` (also
/// `README, "Title"`) in a source file.
fn reference_problems(from: &str, text: &str, problems: &mut Vec<String>) {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let titles: BTreeSet<String> = readme
        .lines()
        .filter_map(heading)
        .map(String::from)
        .collect();
    for (i, _) in text.match_indices(".md#") {
        let start = text[..i]
            .rfind(|c: char| !(c.is_alphanumeric() || matches!(c, '/' | '-' | '_' | '.')))
            .map_or(0, |p| p + 1);
        let end = text[i + 4..]
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_')))
            .map_or(text.len(), |p| i + 4 + p);
        let target = &text[start..end];
        if target.starts_with("docs/") || target.starts_with("README.md") {
            check(from, &root(), &root(), target, problems);
        }
    }
    for (i, _) in text.match_indices("README") {
        let rest = text[i + 6..].trim_start_matches(',').trim_start();
        let Some(quoted) = rest.strip_prefix('"') else {
            continue;
        };
        let Some(end) = quoted.find('"') else {
            continue;
        };
        let title = quoted[..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !titles.contains(&title) {
            problems.push(format!("{from}: README \"{title}\": no such section"));
        }
    }
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let problems = markdown_problems();
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_reference_to_a_page_or_section_resolves() {
    let mut files = vec![
        root().join("journeyd.example.toml"),
        root().join("docker-compose.yml"),
    ];
    for dir in [
        "src", "tests", "benches", "e2e", "scripts", "deploy", "schemas", "examples", "bench",
    ] {
        if root().join(dir).is_dir() {
            source_files(&root().join(dir), &mut files);
        }
    }
    files.extend(markdown_files());
    let mut problems = Vec::new();
    for file in files {
        if file.ends_with("tests/it/doc_links.rs") {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        reference_problems(&relative(&file), &text, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "broken references:\n{}",
        problems.join("\n")
    );
}

#[test]
fn anchors_are_githubs() {
    let text = "# Guarantees\n## What is kept, and what is bounded\n```toml\n# not a heading\n```\n\
                ## `[schema_registry]` — Avro schemas\n## Limits\n## Limits\n";
    let expected = [
        "guarantees",
        "what-is-kept-and-what-is-bounded",
        "schema_registry--avro-schemas",
        "limits",
        "limits-1",
    ];
    assert_eq!(
        anchors(text),
        expected.into_iter().map(String::from).collect()
    );
}

#[test]
fn a_broken_link_or_reference_is_found() {
    let dir = root();
    let mut problems = Vec::new();
    check(
        "x.md",
        &dir,
        &dir.join("README.md"),
        "docs/none.md",
        &mut problems,
    );
    check(
        "x.md",
        &dir,
        &dir.join("README.md"),
        "docs/time.md#no-such-heading",
        &mut problems,
    );
    check(
        "x.md",
        &dir,
        &dir.join("README.md"),
        "#no-such-heading",
        &mut problems,
    );
    reference_problems(
        "x.rs",
        "//! (README \"No such section\") docs/time.md#nowhere",
        &mut problems,
    );
    assert_eq!(problems.len(), 5, "{problems:#?}");
}
