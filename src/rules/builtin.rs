//! The rule files of the repository's `rules/` folder, compiled into the binary as defaults.

use super::RuleSource;

/// `(path, text)` of every default rule file. A test checks this list against `rules/`.
pub const BUILTIN_RULE_FILES: [(&str, &str); 4] = [
    (
        "rules/terminal.toml",
        include_str!("../../rules/terminal.toml"),
    ),
    ("rules/pool.toml", include_str!("../../rules/pool.toml")),
    (
        "rules/transient.toml",
        include_str!("../../rules/transient.toml"),
    ),
    (
        "rules/compaction.toml",
        include_str!("../../rules/compaction.toml"),
    ),
];

pub fn builtin_sources() -> Vec<RuleSource> {
    BUILTIN_RULE_FILES
        .iter()
        .map(|(name, text)| RuleSource {
            name: (*name).to_owned(),
            text: (*text).to_owned(),
            layer: 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{check_samples, load_rule_set};

    #[test]
    fn every_file_in_rules_is_built_in() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| format!("rules/{}", entry.unwrap().file_name().to_string_lossy()))
            .collect();
        on_disk.sort();
        let mut built_in: Vec<String> = BUILTIN_RULE_FILES
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect();
        built_in.sort();
        assert_eq!(on_disk, built_in);
    }

    #[test]
    fn builtin_rules_load_and_pass_their_samples() {
        let rules = load_rule_set(&builtin_sources()).unwrap_or_else(|errors| {
            panic!(
                "{}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        let (failures, samples) = check_samples(&rules);
        assert!(
            failures.is_empty(),
            "{}",
            failures
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(samples >= 2 * rules.rules().len());
    }
}
