//! `[[source]]` entries: the raw keys of each source, and their checks into a
//! typed [`SourceConfig`] per kind (database URLs, files, drop folders, plugins).

use std::ops::Range;
use std::path::{Path, PathBuf};

use amar_connectors::{
    DatabaseOptions, DropOptions, FileFormat, FilesOptions, Mode, SourceConfig, SourceKind,
    SqliteOptions,
};
use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Locator, parse_interval, valid_schema_name};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) name: Spanned<String>,
    kind: Spanned<String>,
    mode: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    path: Option<Spanned<PathBuf>>,
    library: Option<Spanned<PathBuf>>,
    format: Option<Spanned<String>>,
    tables: Option<Spanned<Vec<String>>>,
    has_header: Option<Spanned<bool>>,
    delimiter: Option<Spanned<String>>,
    schema: Option<Spanned<String>>,
    sslmode: Option<Spanned<String>>,
    sslrootcert: Option<Spanned<PathBuf>>,
    pool_size: Option<Spanned<u32>>,
    connect_timeout_s: Option<Spanned<u64>>,
    refresh: Option<Spanned<String>>,
    sheet: Option<Spanned<String>>,
    append: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    /// Key columns per table, which local copies are sorted by.
    keys: Option<Spanned<std::collections::BTreeMap<String, Vec<String>>>>,
    /// Its tables held in memory as Arrow.
    accelerate: Option<Spanned<bool>>,
    /// A plugin's own options, checked against what the plugin declares.
    options: Option<Spanned<toml::Table>>,
}

type Fail<'a> = dyn Fn(Range<usize>, &str, String) -> Result<SourceConfig, ConfigError> + 'a;

fn database_source(
    name: String,
    mode: Mode,
    kind_name: &str,
    raw: &RawSource,
    resolve: &dyn Fn(&Path) -> PathBuf,
    fail: &Fail<'_>,
) -> Result<SourceConfig, ConfigError> {
    let Some(url) = raw.url.as_ref() else {
        return fail(
            raw.kind.span(),
            "url",
            format!(
                "kind \"{kind_name}\" needs `url`, e.g. \"{kind_name}://user:${{PASSWORD}}@127.0.0.1/db\""
            ),
        );
    };
    let parsed = match url::Url::parse(url.get_ref()) {
        Ok(u) => u,
        Err(e) => return fail(url.span(), "url", format!("not a valid URL: {e}")),
    };
    // `${NAME}` in the user, password or database is expanded after parsing, so a
    // secret may hold any character (`@`, `:`, `/`) without escaping.
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let expand = |s: &str| expand_env(&decode(s));
    let schemes: &[&str] = if kind_name == "postgres" {
        &["postgres", "postgresql"]
    } else {
        &["mysql", "mariadb"]
    };
    if !schemes.contains(&parsed.scheme()) {
        return fail(
            url.span(),
            "url",
            format!("a {kind_name} URL starts with {}://", schemes[0]),
        );
    }
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return fail(url.span(), "url", "the URL names no host".to_string());
    };
    let database = match expand(parsed.path().trim_start_matches('/')) {
        Ok(d) => d,
        Err(why) => return fail(url.span(), "url", why),
    };
    if database.is_empty() {
        return fail(
            url.span(),
            "url",
            "the URL names no database (…/DATABASE)".to_string(),
        );
    }
    let user = if parsed.username().is_empty() {
        if kind_name == "postgres" {
            "postgres"
        } else {
            "root"
        }
        .to_string()
    } else {
        match expand(parsed.username()) {
            Ok(u) => u,
            Err(why) => return fail(url.span(), "url", why),
        }
    };
    let password = match parsed.password().map(expand).transpose() {
        Ok(p) => p,
        Err(why) => return fail(url.span(), "url", why),
    };
    let default_ssl = if kind_name == "postgres" {
        "prefer"
    } else {
        "preferred"
    };
    let sslmode = raw
        .sslmode
        .as_ref()
        .map(|s| s.get_ref().clone())
        .unwrap_or_else(|| default_ssl.to_string());
    let valid: &[&str] = if kind_name == "postgres" {
        &["disable", "prefer", "require", "verify-ca", "verify-full"]
    } else {
        &["disabled", "preferred", "required"]
    };
    if !valid.contains(&sslmode.as_str()) {
        let span = raw.sslmode.as_ref().map(|s| s.span()).unwrap_or(url.span());
        return fail(
            span,
            "sslmode",
            format!("unknown sslmode \"{sslmode}\"; use {}", valid.join(", ")),
        );
    }
    let refresh = match &raw.refresh {
        None => None,
        Some(r) if mode != Mode::Snapshot => {
            return fail(
                r.span(),
                "refresh",
                "only snapshot sources are refreshed; add mode = \"snapshot\"".to_string(),
            );
        }
        Some(r) => match parse_interval(r.get_ref()) {
            Some(d) => Some(d),
            None => {
                return fail(
                    r.span(),
                    "refresh",
                    format!(
                        "\"{}\" is not an interval; write e.g. \"30s\", \"15m\", \"6h\" or \"1d\"",
                        r.get_ref()
                    ),
                );
            }
        },
    };
    let keys = match &raw.keys {
        Some(k) if mode != Mode::Snapshot => {
            return fail(
                k.span(),
                "keys",
                "keys order the local copies of snapshot sources; add mode = \"snapshot\""
                    .to_string(),
            );
        }
        Some(k) => match checked_keys(k) {
            Ok(keys) => keys,
            Err(message) => return fail(k.span(), "keys", message),
        },
        None => Default::default(),
    };
    let pool_size = raw.pool_size.as_ref().map(|p| *p.get_ref()).unwrap_or(8);
    if pool_size == 0 {
        let span = raw
            .pool_size
            .as_ref()
            .map(|s| s.span())
            .unwrap_or(url.span());
        return fail(span, "pool_size", "must be at least 1".to_string());
    }
    let options = DatabaseOptions {
        host: host.to_string(),
        port: parsed
            .port()
            .unwrap_or(if kind_name == "postgres" { 5432 } else { 3306 }),
        user,
        password,
        database,
        schema: raw.schema.as_ref().map(|s| s.get_ref().clone()),
        tables: raw.tables.as_ref().map(|t| t.get_ref().clone()),
        sslmode,
        sslrootcert: raw.sslrootcert.as_ref().map(|p| resolve(p.get_ref())),
        pool_size,
        connect_timeout: std::time::Duration::from_secs(
            raw.connect_timeout_s
                .as_ref()
                .map(|t| *t.get_ref())
                .unwrap_or(5)
                .max(1),
        ),
        snapshot_dir: None,
        refresh,
        keys,
    };
    let kind = if kind_name == "postgres" {
        SourceKind::Postgres(options)
    } else {
        SourceKind::Mysql(options)
    };
    Ok(SourceConfig {
        name,
        mode,
        kind,
        accelerate: false,
    })
}

pub(super) fn source_config(
    i: usize,
    raw: &RawSource,
    base: &Path,
    at: &Locator<'_>,
) -> Result<SourceConfig, ConfigError> {
    let mut config = source_config_of_kind(i, raw, base, at)?;
    if let Some(accelerate) = &raw.accelerate {
        // Held in memory and read again when the files under it change: only for
        // sources that can tell (a live database cannot).
        if config.mode == Mode::Live
            && matches!(config.kind, SourceKind::Postgres(_) | SourceKind::Mysql(_))
        {
            return Err(at.error(
                Some(accelerate.span()),
                format!(
                    "source[{i}] (\"{}\"), key `accelerate`: a live database cannot say when its rows change; accelerate its snapshot (mode = \"snapshot\")",
                    config.name
                ),
            ));
        }
        config.accelerate = *accelerate.get_ref();
    }
    Ok(config)
}

fn source_config_of_kind(
    i: usize,
    raw: &RawSource,
    base: &Path,
    at: &Locator<'_>,
) -> Result<SourceConfig, ConfigError> {
    let name = raw.name.get_ref().clone();
    let here = format!("source[{i}] (\"{name}\")");
    let fail = |span: Range<usize>, key: &str, why: String| {
        Err(at.error(Some(span), format!("{here}, key `{key}`: {why}")))
    };
    if !valid_schema_name(&name) {
        return fail(
            raw.name.span(),
            "name",
            "a source name is a schema name: lower-case letters, digits and '_', starting with a letter".to_string(),
        );
    }
    let mode = match raw.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("live", _)) => Mode::Live,
        Some(("snapshot", span)) => {
            let kind = raw.kind.get_ref().as_str();
            if kind != "postgres" && kind != "mysql" {
                return fail(
                    span,
                    "mode",
                    "snapshot mode is for database sources (postgres, mysql); this kind is read in place".to_string(),
                );
            }
            Mode::Snapshot
        }
        Some((other, span)) => {
            return fail(
                span,
                "mode",
                format!("unknown mode \"{other}\"; use \"live\" or \"snapshot\""),
            );
        }
    };
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    // Keys each kind uses; any other key given is a mistake worth reporting.
    let given: Vec<(&str, Option<Range<usize>>)> = vec![
        ("url", raw.url.as_ref().map(|v| v.span())),
        ("path", raw.path.as_ref().map(|v| v.span())),
        ("library", raw.library.as_ref().map(|v| v.span())),
        ("options", raw.options.as_ref().map(|v| v.span())),
        ("format", raw.format.as_ref().map(|v| v.span())),
        ("tables", raw.tables.as_ref().map(|v| v.span())),
        ("has_header", raw.has_header.as_ref().map(|v| v.span())),
        ("delimiter", raw.delimiter.as_ref().map(|v| v.span())),
        ("schema", raw.schema.as_ref().map(|v| v.span())),
        ("sslmode", raw.sslmode.as_ref().map(|v| v.span())),
        ("sslrootcert", raw.sslrootcert.as_ref().map(|v| v.span())),
        ("pool_size", raw.pool_size.as_ref().map(|v| v.span())),
        ("sheet", raw.sheet.as_ref().map(|v| v.span())),
        ("append", raw.append.as_ref().map(|v| v.span())),
        ("keys", raw.keys.as_ref().map(|v| v.span())),
        ("accelerate", raw.accelerate.as_ref().map(|v| v.span())),
        ("refresh", raw.refresh.as_ref().map(|v| v.span())),
        (
            "connect_timeout_s",
            raw.connect_timeout_s.as_ref().map(|v| v.span()),
        ),
    ];
    let kind_name = raw.kind.get_ref().as_str();
    let allowed: &[&str] = match kind_name {
        "sqlite" => &["path", "tables", "accelerate"],
        "files" => &["path", "format", "has_header", "delimiter", "accelerate"],
        "drop" => &[
            "path",
            "has_header",
            "delimiter",
            "sheet",
            "append",
            "refresh",
            "keys",
            "accelerate",
        ],
        "postgres" => &[
            "url",
            "schema",
            "tables",
            "sslmode",
            "sslrootcert",
            "pool_size",
            "connect_timeout_s",
            "refresh",
            "keys",
            "accelerate",
        ],
        "mysql" => &[
            "url",
            "tables",
            "sslmode",
            "sslrootcert",
            "pool_size",
            "connect_timeout_s",
            "refresh",
            "keys",
            "accelerate",
        ],
        "plugin" => &["library", "options"],
        other => {
            return fail(
                raw.kind.span(),
                "kind",
                format!(
                    "unknown kind \"{other}\"; use postgres, mysql, sqlite, files, drop or plugin"
                ),
            );
        }
    };
    for (key, span) in &given {
        if let Some(span) = span
            && !allowed.contains(key)
        {
            return fail(
                span.clone(),
                key,
                format!(
                    "not used by kind \"{kind_name}\" (it takes: {})",
                    allowed.join(", ")
                ),
            );
        }
    }
    if kind_name == "postgres" || kind_name == "mysql" {
        return database_source(name, mode, kind_name, raw, &resolve, &fail);
    }
    if kind_name == "plugin" {
        let Some(library) = raw.library.as_ref() else {
            return fail(
                raw.kind.span(),
                "library",
                "kind \"plugin\" needs `library`, the path of the plugin's shared library"
                    .to_string(),
            );
        };
        let options = match &raw.options {
            None => serde_json::Map::new(),
            Some(table) => match serde_json::to_value(table.get_ref()) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => {
                    return fail(
                        table.span(),
                        "options",
                        "plugin options must be plain strings, numbers and booleans".to_string(),
                    );
                }
            },
        };
        return Ok(SourceConfig {
            name,
            mode,
            kind: SourceKind::Plugin(amar_connectors::PluginOptions {
                library: resolve(library.get_ref()),
                options,
                base_dir: Some(base.to_path_buf()),
            }),
            accelerate: false,
        });
    }
    let Some(path) = raw.path.as_ref() else {
        return fail(
            raw.kind.span(),
            "path",
            format!("kind \"{kind_name}\" needs `path`"),
        );
    };
    if kind_name == "drop" {
        return drop_source(name, raw, resolve(path.get_ref()), &fail);
    }
    let kind = match kind_name {
        "sqlite" => SourceKind::Sqlite(SqliteOptions {
            path: resolve(path.get_ref()),
            tables: raw.tables.as_ref().map(|t| t.get_ref().clone()),
        }),
        _ => {
            let format = match &raw.format {
                None => None,
                Some(f) => match FileFormat::from_name(f.get_ref()) {
                    Some(format) => Some(format),
                    None => {
                        return fail(
                            f.span(),
                            "format",
                            format!(
                                "unknown format \"{}\"; use parquet, csv or json",
                                f.get_ref()
                            ),
                        );
                    }
                },
            };
            let delimiter = match delimiter(raw) {
                Ok(d) => d,
                Err((span, why)) => return fail(span, "delimiter", why),
            };
            SourceKind::Files(FilesOptions {
                path: resolve(path.get_ref()),
                format,
                has_header: raw
                    .has_header
                    .as_ref()
                    .map(|h| *h.get_ref())
                    .unwrap_or(true),
                delimiter,
            })
        }
    };
    Ok(SourceConfig {
        name,
        mode,
        kind,
        accelerate: false,
    })
}

/// The CSV field delimiter of a source, `,` unless given.
fn delimiter(raw: &RawSource) -> Result<u8, (Range<usize>, String)> {
    match &raw.delimiter {
        None => Ok(b','),
        Some(d) if d.get_ref().len() == 1 && d.get_ref().is_ascii() => {
            Ok(d.get_ref().as_bytes()[0])
        }
        Some(d) => Err((
            d.span(),
            "use a single ASCII character, e.g. \",\" or \"\\t\"".to_string(),
        )),
    }
}

/// A drop folder: `path` is watched; accepted files are kept under the data folder
/// (the server sets `store`).
fn drop_source(
    name: String,
    raw: &RawSource,
    path: PathBuf,
    fail: &Fail<'_>,
) -> Result<SourceConfig, ConfigError> {
    let delimiter = match delimiter(raw) {
        Ok(d) => d,
        Err((span, why)) => return fail(span, "delimiter", why),
    };
    let mut append = vec![];
    if let Some(patterns) = &raw.append {
        for (table, pattern) in patterns.get_ref() {
            if table.is_empty() || table.starts_with('.') || table.contains('/') {
                return fail(
                    patterns.span(),
                    "append",
                    format!("\"{table}\" cannot be a table name"),
                );
            }
            match glob::Pattern::new(pattern) {
                Ok(p) => append.push((table.clone(), p)),
                Err(e) => {
                    return fail(
                        patterns.span(),
                        "append",
                        format!("table \"{table}\": \"{pattern}\" is not a file-name pattern: {e}"),
                    );
                }
            }
        }
    }
    let scan_every = match &raw.refresh {
        None => std::time::Duration::from_secs(10),
        Some(r) => match parse_interval(r.get_ref()) {
            Some(d) => d,
            None => {
                return fail(
                    r.span(),
                    "refresh",
                    format!(
                        "\"{}\" is not an interval; write e.g. \"10s\", \"15m\" or \"1h\"",
                        r.get_ref()
                    ),
                );
            }
        },
    };
    Ok(SourceConfig {
        name,
        mode: Mode::Snapshot,
        kind: SourceKind::Drop(DropOptions {
            path,
            store: PathBuf::new(),
            has_header: raw
                .has_header
                .as_ref()
                .map(|h| *h.get_ref())
                .unwrap_or(true),
            delimiter,
            sheet: raw.sheet.as_ref().map(|s| s.get_ref().clone()),
            append,
            scan_every,
            settle: std::time::Duration::from_secs(2),
            keys: match &raw.keys {
                Some(k) => match checked_keys(k) {
                    Ok(keys) => keys,
                    Err(message) => return fail(k.span(), "keys", message),
                },
                None => Default::default(),
            },
        }),
        accelerate: false,
    })
}

/// `keys = { table = ["column", …] }`: each table with at least one column, none twice.
fn checked_keys(
    keys: &Spanned<std::collections::BTreeMap<String, Vec<String>>>,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, String> {
    for (table, columns) in keys.get_ref() {
        if columns.is_empty() {
            return Err(format!("table \"{table}\": name at least one key column"));
        }
        if let Some(twice) = columns
            .iter()
            .enumerate()
            .find(|(i, c)| columns[..*i].contains(c))
            .map(|(_, c)| c)
        {
            return Err(format!(
                "table \"{table}\": column \"{twice}\" is named twice"
            ));
        }
    }
    Ok(keys.get_ref().clone())
}

/// Replaces `${NAME}` with the value of environment variable `NAME`.
pub fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "an unclosed ${ in the value".to_string())?;
        let name = &after[..end];
        let value =
            std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;

    #[test]
    fn env_expansion() {
        // SAFETY: this test is the only user of this variable name.
        unsafe { std::env::set_var("AMAR_TEST_SECRET_X", "s3cret") };
        assert_eq!(
            expand_env("postgres://u:${AMAR_TEST_SECRET_X}@h/db").unwrap(),
            "postgres://u:s3cret@h/db"
        );
        assert!(
            expand_env("${AMAR_TEST_UNSET_Y}")
                .unwrap_err()
                .contains("AMAR_TEST_UNSET_Y")
        );
        assert!(expand_env("${OPEN").is_err());
    }

    #[test]
    fn database_sources_take_a_url_with_secrets_from_the_environment() {
        // SAFETY: this test is the only user of this variable name.
        unsafe { std::env::set_var("AMAR_TEST_PG_PASSWORD_Z", "p@ss:w/rd") };
        let c = parse(
            "[[source]]\nname = \"pension\"\nkind = \"postgres\"\nmode = \"snapshot\"\nrefresh = \"6h\"\n\
             url = \"postgres://reader:${AMAR_TEST_PG_PASSWORD_Z}@127.0.0.1:6000/pensions\"\nschema = \"hr\"\n",
        )
        .unwrap();
        let SourceKind::Postgres(o) = &c.sources[0].kind else {
            panic!("not postgres: {:?}", c.sources[0].kind);
        };
        assert_eq!(
            (
                o.host.as_str(),
                o.port,
                o.user.as_str(),
                o.database.as_str()
            ),
            ("127.0.0.1", 6000, "reader", "pensions")
        );
        assert_eq!(o.password.as_deref(), Some("p@ss:w/rd"));
        assert_eq!(o.refresh, Some(std::time::Duration::from_secs(6 * 3600)));
        assert_eq!(c.sources[0].mode, Mode::Snapshot);
        // The password never shows in Debug output.
        assert!(!format!("{o:?}").contains("p@ss"));
        for (text, says) in [
            ("kind = \"postgres\"\n", "needs `url`"),
            (
                "kind = \"postgres\"\nurl = \"mysql://h/db\"\n",
                "starts with postgres://",
            ),
            (
                "kind = \"mysql\"\nurl = \"mysql://h/db\"\nsslmode = \"verify-full\"\n",
                "unknown sslmode",
            ),
            (
                "kind = \"mysql\"\nurl = \"mysql://h/db\"\nrefresh = \"1h\"\n",
                "only snapshot sources",
            ),
            (
                "kind = \"postgres\"\nmode = \"snapshot\"\nurl = \"postgres://h/db\"\nrefresh = \"soon\"\n",
                "not an interval",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://h/db\"\nschema = \"x\"\npath = \"p\"\n",
                "`path`: not used",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://u:${AMAR_TEST_UNSET_Q}@h/db\"\n",
                "AMAR_TEST_UNSET_Q",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://h/db\"\naccelerate = true\n",
                "accelerate its snapshot",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://h/db\"\nkeys = { t = [\"id\"] }\n",
                "keys order the local copies",
            ),
            (
                "kind = \"postgres\"\nmode = \"snapshot\"\nurl = \"postgres://h/db\"\nkeys = { t = [] }\n",
                "at least one key column",
            ),
            (
                "kind = \"plugin\"\nlibrary = \"x.so\"\naccelerate = true\n",
                "`accelerate`: not used",
            ),
        ] {
            let err = parse(&format!("[[source]]\nname = \"a\"\n{text}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{text:?}: expected {says:?} in {err}");
        }
    }
}
