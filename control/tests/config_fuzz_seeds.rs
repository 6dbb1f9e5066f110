//! Replays the config fuzz target's seed corpus and hostile inputs through the fuzz body on stable.
mod common;
use control::config::fuzzing::fuzz_config;
use control::config::{check_str, load_str};

#[test]
fn the_seed_corpus_replays_without_panicking() {
    common::replay_seeds("config", fuzz_config);
}

#[test]
fn hostile_yaml_is_an_error_not_a_crash() {
    let deep_flow = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_block: String = (0..2000)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .windows(2)
        .map(|w| (w[0], w[1]))
    {
        laughs += &format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        );
    }
    for text in [
        deep_flow.as_str(),
        &deep_block,
        &laughs,
        "",
        "~",
        "[]",
        "\u{feff}",
        "- - -",
        "interfaces: *nope",
    ] {
        fuzz_config(text.as_bytes());
        let errors = load_str(text, "hostile.yaml").unwrap_err();
        assert!(!errors.is_empty());
    }
    fuzz_config(&[0xff, 0xfe, 0x00]);
    for deep in [&deep_flow, &deep_block] {
        let errors = load_str(deep, "deep.yaml").unwrap_err().to_string();
        assert!(
            errors.contains("invalid YAML: nesting deeper than 64 levels"),
            "{errors}"
        );
    }
}

#[test]
fn an_empty_document_says_what_a_config_needs() {
    let errors = check_str("", "empty.yaml").result.unwrap_err();
    assert_eq!(
        errors.to_string(),
        "empty.yaml: expected a mapping (the config: interfaces, services, ...), got nothing"
    );
}

#[test]
fn the_nat_and_fullnat_seeds_are_valid_so_mutations_start_deep() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/config");
    for seed in ["seed-nat.yaml", "seed-fullnat.yaml"] {
        let c = control::config::load_file(&dir.join(seed)).unwrap();
        assert!(c.uses_nat(), "{seed}");
    }
}
