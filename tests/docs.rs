//! The hand-written hookbus.toml(5) documents every key the example config
//! shows, so neither can drift from the other unnoticed.

#[test]
fn every_key_of_the_example_config_is_in_the_config_man_page() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("contrib/hookbus.toml")).unwrap();
    let page = std::fs::read_to_string(root.join("man/hookbus.toml.5")).unwrap();
    let mut missing = Vec::new();
    let mut seen = 0;
    for line in example.lines() {
        let line = line.trim_start_matches(['#', ' ']);
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            continue;
        }
        seen += 1;
        // A key of its own (`.B key = …`) or one in a table's paragraph (`\fBkey\fR`).
        if !page.contains(&format!(".B {key} ")) && !page.contains(&format!("\\fB{key}\\fR")) {
            missing.push(key.to_string());
        }
    }
    assert!(seen >= 10, "the example config lost its keys? saw {seen}");
    assert!(
        missing.is_empty(),
        "keys of contrib/hookbus.toml missing from man/hookbus.toml.5: {missing:?}"
    );
}

/// The non-blank lines of README.md's `## TITLE` section, up to the next one.
fn readme_section(title: &str) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let heading = format!("## {title}");
    let mut lines = readme.lines().skip_while(|line| *line != heading);
    assert!(lines.next().is_some(), "README.md has no {heading:?}");
    lines
        .take_while(|line| !line.starts_with("## "))
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_gives_the_delivery_guarantees_in_five_lines() {
    let section = readme_section("Delivery guarantees");
    assert_eq!(section.len(), 5, "{section:#?}");
    let text = section.join("\n");
    for topic in [
        "outbox",
        "deadline_ms",
        "hookbus flush",
        "hookbus-id",
        "dead",
    ] {
        assert!(text.contains(topic), "no {topic:?} in {text}");
    }
}

#[test]
fn readme_installs_on_a_git_server_in_at_most_ten_lines() {
    let section = readme_section("Install on a git server");
    assert!((1..=10).contains(&section.len()), "{section:#?}");
    assert!(section.iter().any(|line| line.contains("hookbus-flush@")));
}
