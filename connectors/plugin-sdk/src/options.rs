//! A plugin's options: what it declares it takes (its config schema), Amar's check
//! of a `[source.options]` table against that, and typed access for the plugin.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The type of one option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionKind {
    String,
    /// A file or folder; Amar makes a relative path absolute against the config
    /// file's folder before the plugin sees it.
    Path,
    Integer,
    Boolean,
}

impl OptionKind {
    fn name(self) -> &'static str {
        match self {
            OptionKind::String => "a string",
            OptionKind::Path => "a path",
            OptionKind::Integer => "an integer",
            OptionKind::Boolean => "true or false",
        }
    }
}

/// One option a plugin takes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OptionSpec {
    pub name: String,
    pub kind: OptionKind,
    pub required: bool,
    pub description: String,
}

impl OptionSpec {
    pub fn new(name: &str, kind: OptionKind, required: bool, description: &str) -> Self {
        OptionSpec {
            name: name.to_string(),
            kind,
            required,
            description: description.to_string(),
        }
    }

    /// Checks `given` against `specs`: every option known, of its type, every
    /// required one present. Relative paths are joined to `base`. Returns the
    /// options as the plugin will see them, or what is wrong.
    pub fn check_all(
        specs: &[OptionSpec],
        given: &Map<String, Value>,
        base: Option<&Path>,
    ) -> Result<Map<String, Value>, String> {
        let mut checked = Map::new();
        for (key, value) in given {
            let Some(spec) = specs.iter().find(|s| &s.name == key) else {
                let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                return Err(format!(
                    "unknown option \"{key}\" (it takes: {})",
                    if known.is_empty() {
                        "no options".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            let value = match (spec.kind, value) {
                (OptionKind::String, Value::String(_))
                | (OptionKind::Integer, Value::Number(_))
                | (OptionKind::Boolean, Value::Bool(_))
                    if spec.kind != OptionKind::Integer || value.as_i64().is_some() =>
                {
                    value.clone()
                }
                (OptionKind::Path, Value::String(p)) => {
                    let path = PathBuf::from(p);
                    let path = match base {
                        Some(base) if path.is_relative() => base.join(path),
                        _ => path,
                    };
                    Value::String(path.to_string_lossy().into_owned())
                }
                _ => {
                    return Err(format!(
                        "option \"{key}\" must be {}, not {value}",
                        spec.kind.name()
                    ));
                }
            };
            checked.insert(key.clone(), value);
        }
        for spec in specs {
            if spec.required && !checked.contains_key(&spec.name) {
                return Err(format!(
                    "option \"{}\" is required ({})",
                    spec.name, spec.description
                ));
            }
        }
        Ok(checked)
    }
}

/// The options of one source, as the plugin receives them: already checked by
/// Amar against the plugin's [`OptionSpec`]s.
#[derive(Debug, Clone, Default)]
pub struct Options {
    values: Map<String, Value>,
}

impl Options {
    pub fn new(values: Map<String, Value>) -> Self {
        Options { values }
    }

    pub fn string(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(Value::as_str)
    }

    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.string(name).map(PathBuf::from)
    }

    pub fn integer(&self, name: &str) -> Option<i64> {
        self.values.get(name).and_then(Value::as_i64)
    }

    pub fn boolean(&self, name: &str) -> Option<bool> {
        self.values.get(name).and_then(Value::as_bool)
    }

    /// A required option, or an error naming it.
    pub fn required_path(&self, name: &str) -> Result<PathBuf, String> {
        self.path(name)
            .ok_or_else(|| format!("option \"{name}\" is required"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn specs() -> Vec<OptionSpec> {
        vec![
            OptionSpec::new("layout", OptionKind::Path, true, "the layout file"),
            OptionSpec::new("batch_rows", OptionKind::Integer, false, "rows per batch"),
            OptionSpec::new("strict", OptionKind::Boolean, false, "fail on bad rows"),
        ]
    }

    fn given(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn relative_paths_are_joined_to_the_config_folder() {
        let checked = OptionSpec::check_all(
            &specs(),
            &given(json!({"layout": "layouts/a.toml", "batch_rows": 10})),
            Some(Path::new("/etc/amar")),
        )
        .unwrap();
        assert_eq!(checked["layout"], json!("/etc/amar/layouts/a.toml"));
        assert_eq!(checked["batch_rows"], json!(10));
    }

    #[test]
    fn unknown_missing_and_mistyped_options_are_named() {
        let e = OptionSpec::check_all(&specs(), &given(json!({"layot": "x"})), None).unwrap_err();
        assert_eq!(
            e,
            "unknown option \"layot\" (it takes: layout, batch_rows, strict)"
        );
        let e = OptionSpec::check_all(&specs(), &given(json!({})), None).unwrap_err();
        assert_eq!(e, "option \"layout\" is required (the layout file)");
        let e = OptionSpec::check_all(
            &specs(),
            &given(json!({"layout": "a", "batch_rows": 1.5})),
            None,
        )
        .unwrap_err();
        assert_eq!(e, "option \"batch_rows\" must be an integer, not 1.5");
        let e = OptionSpec::check_all(
            &specs(),
            &given(json!({"layout": "a", "strict": "yes"})),
            None,
        )
        .unwrap_err();
        assert_eq!(e, "option \"strict\" must be true or false, not \"yes\"");
    }
}
