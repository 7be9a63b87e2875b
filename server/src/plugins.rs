//! `amar plugins list` and `amar plugins check`: what a plugin library is, and
//! whether this server can load it.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use amar_connectors::{PluginLibrary, PluginOptions, Source, SourceKind};
use amar_plugin_sdk::{ABI_VERSION, DATAFUSION_VERSION, OptionKind};

/// A report for the terminal, and whether everything in it is fine.
pub struct Report {
    pub text: String,
    pub ok: bool,
}

/// One line about a library: what it is, or why it cannot load.
fn describe(path: &Path) -> (String, bool) {
    match PluginLibrary::load(path) {
        Ok(lib) => (
            format!(
                "{} {} (ABI {}, DataFusion {}): loads",
                lib.info.name, lib.info.version, lib.abi_version, lib.datafusion_version
            ),
            true,
        ),
        Err(why) => (format!("cannot load: {why}"), false),
    }
}

/// Shared libraries in a folder.
fn libraries_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = vec![];
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("so" | "dylib" | "dll")
        ) {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// The plugin sources of a config, and the libraries in some folders or paths.
pub fn list(config: Option<&crate::config::Config>, paths: &[PathBuf]) -> Report {
    let mut text = String::new();
    let mut ok = true;
    let mut any = false;
    if let Some(config) = config {
        for source in &config.sources {
            if let SourceKind::Plugin(options) = &source.kind {
                any = true;
                let (line, fine) = describe(&options.library);
                ok &= fine;
                let _ = writeln!(
                    text,
                    "source {}: {}: {line}",
                    source.name,
                    options.library.display()
                );
            }
        }
    }
    for path in paths {
        let libraries = if path.is_dir() {
            match libraries_in(path) {
                Ok(l) => l,
                Err(e) => {
                    ok = false;
                    let _ = writeln!(text, "{}: {e}", path.display());
                    continue;
                }
            }
        } else {
            vec![path.clone()]
        };
        for library in libraries {
            any = true;
            let (line, fine) = describe(&library);
            ok &= fine;
            let _ = writeln!(text, "{}: {line}", library.display());
        }
    }
    if !any {
        text.push_str(
            "no plugins: give a folder or library, or a config with kind = \"plugin\" sources\n",
        );
    }
    Report { text, ok }
}

/// An option from the command line: `key=value`, a number or boolean when it reads
/// as one.
pub fn parse_option(given: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = given
        .split_once('=')
        .ok_or_else(|| format!("\"{given}\" is not key=value"))?;
    let value = if let Ok(n) = value.parse::<i64>() {
        serde_json::Value::from(n)
    } else if let Ok(b) = value.parse::<bool>() {
        serde_json::Value::from(b)
    } else {
        serde_json::Value::from(value)
    };
    Ok((key.to_string(), value))
}

/// Everything about one library; with options, also opens a source with them and
/// lists its tables.
pub async fn check(library: &Path, options: Option<Vec<(String, serde_json::Value)>>) -> Report {
    let mut text = String::new();
    let _ = writeln!(text, "library     {}", library.display());
    let lib = match PluginLibrary::load(library) {
        Ok(lib) => lib,
        Err(why) => {
            let _ = writeln!(text, "cannot load: {why}");
            return Report { text, ok: false };
        }
    };
    let info = &lib.info;
    let _ = writeln!(
        text,
        "plugin      {} {}: {}",
        info.name, info.version, info.description
    );
    let _ = writeln!(
        text,
        "ABI         {} (this Amar loads {ABI_VERSION})",
        lib.abi_version
    );
    let _ = writeln!(
        text,
        "DataFusion  {} (this Amar runs {DATAFUSION_VERSION})",
        lib.datafusion_version
    );
    let _ = writeln!(text, "options:");
    for spec in &info.options {
        let kind = match spec.kind {
            OptionKind::String => "string",
            OptionKind::Path => "path",
            OptionKind::Integer => "integer",
            OptionKind::Boolean => "boolean",
        };
        let _ = writeln!(
            text,
            "  {:<12} {:<8} {:<9} {}",
            spec.name,
            kind,
            if spec.required {
                "required"
            } else {
                "optional"
            },
            spec.description
        );
    }
    let _ = writeln!(text, "loads: yes");
    let Some(options) = options else {
        return Report { text, ok: true };
    };
    let source = amar_connectors::PluginSource::open(
        "check",
        PluginOptions {
            library: library.to_path_buf(),
            options: options.into_iter().collect(),
            base_dir: std::env::current_dir().ok(),
        },
    );
    match source.tables().await {
        Ok(tables) => {
            let _ = writeln!(text, "opens: yes, {} tables", tables.len());
            for t in tables {
                let columns: Vec<String> = t
                    .provider
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| format!("{} {}", f.name(), f.data_type()))
                    .collect();
                let _ = writeln!(text, "  {} ({})", t.name, columns.join(", "));
            }
            Report { text, ok: true }
        }
        Err(e) => {
            let message = match e {
                amar_connectors::ConnectorError::Unavailable { message, .. } => message,
                other => other.to_string(),
            };
            let _ = writeln!(text, "opens: no: {message}");
            Report { text, ok: false }
        }
    }
}
