//! Will context compaction work? Only if the compression provider has a usable credential.
//!
//! Hermes summarises long sessions with `auxiliary.compression.provider` from `config.yaml`;
//! `auto`, `main` or nothing mean the main provider (`model.provider`, else the
//! `active_provider` Hermes last used). When that provider's pool has no usable entry,
//! compaction fails ("Failed to generate context summary") and long sessions break.

use serde::Deserialize;

use crate::hermes::semantics::Semantics;
use crate::pool::snapshot::AuthSnapshot;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HermesConfig {
    model: Option<ModelSetting>,
    auxiliary: Option<Auxiliary>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ModelSetting {
    Table(ProviderSetting),
    /// `model: gpt-5`: a model name, which says nothing of the provider.
    Name(#[allow(dead_code)] String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Auxiliary {
    compression: Option<ProviderSetting>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProviderSetting {
    provider: Option<String>,
}

/// The provider compaction uses, from the text of `config.yaml` (if any) and auth.json.
/// An unreadable config.yaml is an error: guessing would hide a real risk.
pub fn compression_provider(
    config_yaml: Option<&str>,
    snapshot: &AuthSnapshot,
) -> Result<Option<String>, String> {
    let config: HermesConfig = match config_yaml {
        Some(text) if !text.trim().is_empty() => {
            serde_saphyr::from_str(text).map_err(|error| error.to_string())?
        }
        _ => HermesConfig::default(),
    };
    let named = |setting: Option<&ProviderSetting>| {
        setting
            .and_then(|s| s.provider.as_deref())
            .map(str::trim)
            .filter(|p| !p.is_empty() && !matches!(*p, "auto" | "main"))
            .map(str::to_owned)
    };
    let main = match &config.model {
        Some(ModelSetting::Table(table)) => named(Some(table)),
        _ => None,
    }
    .or_else(|| snapshot.active_provider.clone());
    Ok(named(
        config
            .auxiliary
            .as_ref()
            .and_then(|aux| aux.compression.as_ref()),
    )
    .or(main))
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CompactionRisk {
    pub profile: Option<String>,
    pub provider: String,
    pub usable_credentials: usize,
    pub at_risk: bool,
}

pub fn risk(
    profile: Option<&str>,
    provider: &str,
    snapshot: &AuthSnapshot,
    semantics: Semantics,
    now: f64,
) -> CompactionRisk {
    let usable_credentials = snapshot.pool(provider).map_or(0, |pool| {
        pool.entries
            .iter()
            .filter(|e| semantics.availability(e, now).usable)
            .count()
    });
    CompactionRisk {
        profile: profile.map(str::to_owned),
        provider: provider.to_owned(),
        usable_credentials,
        at_risk: usable_credentials == 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(active: Option<&str>) -> AuthSnapshot {
        AuthSnapshot {
            active_provider: active.map(str::to_owned),
            pools: Vec::new(),
        }
    }

    #[test]
    fn auto_means_the_main_provider() {
        let yaml = "model:\n  default: gpt-5\n  provider: openai-codex\nauxiliary:\n  compression:\n    provider: auto\n";
        assert_eq!(
            compression_provider(Some(yaml), &snapshot(None))
                .unwrap()
                .as_deref(),
            Some("openai-codex")
        );
    }

    #[test]
    fn an_explicit_compression_provider_wins() {
        let yaml = "model:\n  provider: openai-codex\nauxiliary:\n  compression:\n    provider: openrouter\n";
        assert_eq!(
            compression_provider(Some(yaml), &snapshot(None))
                .unwrap()
                .as_deref(),
            Some("openrouter")
        );
    }

    #[test]
    fn without_config_the_active_provider_is_main() {
        assert_eq!(
            compression_provider(None, &snapshot(Some("anthropic")))
                .unwrap()
                .as_deref(),
            Some("anthropic")
        );
        assert_eq!(
            compression_provider(Some("model: gpt-5\n"), &snapshot(None)).unwrap(),
            None
        );
    }

    #[test]
    fn broken_yaml_is_an_error() {
        assert!(compression_provider(Some("model: [unclosed\n"), &snapshot(None)).is_err());
    }
}
