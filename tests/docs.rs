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
        if !page.contains(&format!(".B {key} ")) {
            missing.push(key.to_string());
        }
    }
    assert!(seen >= 10, "the example config lost its keys? saw {seen}");
    assert!(
        missing.is_empty(),
        "keys of contrib/hookbus.toml missing from man/hookbus.toml.5: {missing:?}"
    );
}
