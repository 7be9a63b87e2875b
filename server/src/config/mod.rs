//! `amar.toml`: read once at start, checked, and turned into typed values.
//!
//! Every error names the file, the line, the key and what is wrong, e.g.
//! `amar.toml:12: source[1] ("health"), key `format`: unknown format "xls"; use parquet, csv or json`.
//! Relative paths are relative to the config file's folder. `${NAME}` in a source URL is
//! replaced by the environment variable `NAME` (secrets stay out of the file and out
//! of logs).

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use amar_connectors::{SourceConfig, SourceKind};
use serde::Deserialize;
use toml::Spanned;

use sources::{RawSource, source_config};

pub mod definitions;
pub mod sources;

pub use sources::expand_env;

/// The default Postgres-wire address; never PostgreSQL's own 5432.
pub const DEFAULT_PG_LISTEN: &str = "127.0.0.1:6543";
pub const DEFAULT_FLIGHT_LISTEN: &str = "127.0.0.1:6544";
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:6545";
pub const DEFAULT_PORTAL_LISTEN: &str = "127.0.0.1:6546";
pub const DEFAULT_DATA_DIR: &str = "amar-data";

/// A config that could not be used, with where and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}{line}: {message}", line = .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// The server's settings, after defaults and command-line overrides.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub pg_listen: SocketAddr,
    pub flight_listen: SocketAddr,
    pub http_listen: SocketAddr,
    /// The statistics portal (web pages); apart from `http_listen`, so that an
    /// internet-facing address serves pages and never the metrics.
    pub portal: PortalConfig,
    pub data_dir: PathBuf,
    pub users_file: PathBuf,
    pub policy_file: Option<PathBuf>,
    pub audit: crate::audit::AuditConfig,
    /// A certificate chain and its key (PEM) for both front ends, when configured.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Refuse pgwire clients that do not ask for TLS (SQLSTATE 28000).
    pub require_tls: bool,
    pub limits: Limits,
}

/// The statistics portal (`[portal]`).
#[derive(Debug, Clone, PartialEq)]
pub struct PortalConfig {
    pub listen: SocketAddr,
    /// The user a visitor who has not signed in is (a user of the users file, in the
    /// `public` role); none: visitors must sign in.
    pub anonymous_user: Option<String>,
    /// A signed-in visitor's session ends after this long without a request.
    pub idle_timeout: std::time::Duration,
    /// The longest a page of live (not official) figures is served from the cache.
    pub cache_ttl: std::time::Duration,
    /// The organisation's name in the pages' header, in Persian and English.
    pub name_fa: String,
    pub name_en: String,
}

impl PortalConfig {
    fn with_listen(listen: SocketAddr) -> Self {
        PortalConfig {
            listen,
            anonymous_user: Some("public".to_string()),
            idle_timeout: std::time::Duration::from_secs(30 * 60),
            cache_ttl: std::time::Duration::from_secs(60),
            name_fa: "درگاه آمار رسمی".to_string(),
            name_en: "Official Statistics Portal".to_string(),
        }
    }
}

/// What the server allows itself and each statement (`[limits]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Open pgwire connections; the next client gets 53300.
    pub max_connections: usize,
    /// The query engine's memory pool; operators that can spill to disk (sorts,
    /// aggregates, joins) do so when it is full, others fail with 53200.
    pub memory_bytes: usize,
    /// The longest any statement may run, whatever its session sets (57014).
    pub statement_timeout: Option<std::time::Duration>,
    /// Statements one user may run at once; more wait for a turn (none: no limit).
    pub statements_per_user: Option<usize>,
    /// How long a stop waits for running statements to finish.
    pub shutdown_grace: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1000,
            memory_bytes: default_memory_bytes(),
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
            statements_per_user: None,
            shutdown_grace: std::time::Duration::from_secs(30),
        }
    }
}

/// The longest a statement runs when `[limits] statement_timeout` is not set: a
/// forgotten cross join must not hold a core and memory for days.
pub const DEFAULT_STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Half the machine's memory (4 GiB where it cannot be read).
fn default_memory_bytes() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map(|kb| kb * 1024 / 2)
        .unwrap_or(4 << 30)
}

/// A whole validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub sources: Vec<SourceConfig>,
    /// Indicators, glossary and validation rules.
    pub definitions: amar_catalog::statistics::Definitions,
    /// Where it came from, for messages (`None` for the embedded demo).
    pub file: Option<PathBuf>,
}

/// Values given on the command line, which win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub pg_listen: Option<SocketAddr>,
    pub flight_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub portal_listen: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default, rename = "source")]
    sources: Vec<RawSource>,
    #[serde(default)]
    catalog: RawCatalog,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    portal: RawPortal,
    #[serde(default, rename = "indicator")]
    indicators: Vec<definitions::RawIndicator>,
    #[serde(default)]
    glossary: Vec<definitions::RawGlossary>,
    #[serde(default, rename = "validation")]
    rules: Vec<definitions::RawRule>,
    #[serde(default, rename = "release")]
    releases: Vec<definitions::RawRelease>,
    #[serde(default, rename = "classification")]
    classifications: Vec<definitions::RawClassification>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPortal {
    listen: Option<Spanned<String>>,
    anonymous_user: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    cache_ttl: Option<Spanned<String>>,
    name_fa: Option<Spanned<String>>,
    name_en: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_connections: Option<Spanned<i64>>,
    memory_mb: Option<Spanned<i64>>,
    statement_timeout: Option<Spanned<String>>,
    statements_per_user: Option<Spanned<i64>>,
    shutdown_grace: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    /// A folder of `*.toml` files with more `[[indicator]]`, `[[glossary]]`, `[[classification]]`,
    /// `[[validation]]` and `[[release]]` entries.
    dir: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    pg_listen: Option<Spanned<String>>,
    flight_listen: Option<Spanned<String>>,
    http_listen: Option<Spanned<String>>,
    data_dir: Option<Spanned<PathBuf>>,
    users_file: Option<Spanned<PathBuf>>,
    policy_file: Option<Spanned<PathBuf>>,
    tls_cert: Option<Spanned<PathBuf>>,
    tls_key: Option<Spanned<PathBuf>>,
    require_tls: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    dir: Option<Spanned<PathBuf>>,
    max_file_mb: Option<Spanned<u64>>,
    keep_files: Option<Spanned<usize>>,
    memory_rows: Option<Spanned<usize>>,
}

/// Turns byte offsets into line numbers for messages.
struct Locator<'a> {
    file: String,
    text: &'a str,
}

impl Locator<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].matches('\n').count() + 1
    }

    /// The text as `T`, with the line and key path of what does not fit.
    fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let deserializer = toml::Deserializer::parse(self.text)
            .map_err(|e| self.error(e.span(), e.message().trim().to_string()))?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            self.error(
                inner.span(),
                format!("key `{key}`: {}", inner.message().trim()),
            )
        })
    }

    fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: span.map(|s| self.line(s)),
            message: message.into(),
        }
    }
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: None,
            message: format!("cannot read the config: {e}"),
        })?;
        Self::parse(&text, path, overrides)
    }

    /// Checks config text as if read from `path`.
    pub fn parse(text: &str, path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let at = Locator {
            file: path.display().to_string(),
            text,
        };
        let raw: RawConfig = at.deserialize()?;
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut server = server_config(&raw.server, &base, overrides, &at)?;
        server.audit = audit_config(&raw.audit, &base, &server.data_dir, &at)?;
        server.limits = limits(&raw.limits, &at)?;
        server.portal = portal(&raw.portal, overrides, &at)?;
        let mut sources: Vec<SourceConfig> = vec![];
        for (i, s) in raw.sources.iter().enumerate() {
            let source = source_config(i, s, &base, &at)?;
            if let Some(earlier) = sources.iter().position(|e| e.name == source.name) {
                return Err(at.error(
                    Some(s.name.span()),
                    format!(
                        "source[{i}], key `name`: \"{}\" is already the name of source[{earlier}]; each source is one schema",
                        source.name
                    ),
                ));
            }
            sources.push(source);
        }
        // Snapshot copies live in the data folder, one folder per source.
        for source in &mut sources {
            match &mut source.kind {
                SourceKind::Postgres(o) | SourceKind::Mysql(o) => {
                    o.snapshot_dir = Some(server.data_dir.join("snapshots").join(&source.name));
                }
                SourceKind::Drop(o) => o.store = server.data_dir.join("drop").join(&source.name),
                _ => {}
            }
        }
        let mut gathered = definitions::Gathered::default();
        gathered.add(
            definitions::RawDefinitions {
                indicators: raw.indicators,
                glossary: raw.glossary,
                rules: raw.rules,
                releases: raw.releases,
                classifications: raw.classifications,
            },
            &at,
        )?;
        if let Some(dir) = &raw.catalog.dir {
            let folder = if dir.get_ref().is_absolute() {
                dir.get_ref().clone()
            } else {
                base.join(dir.get_ref())
            };
            definitions::read_dir(&folder, &mut gathered, &at, Some(dir.span()))?;
        }
        Ok(Config {
            server,
            sources,
            definitions: gathered.finish()?,
            file: Some(path.to_path_buf()),
        })
    }

    /// The settings with no file at all: defaults plus command-line values.
    pub fn defaults(overrides: &Overrides) -> Self {
        let data_dir = overrides
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        Config {
            server: ServerConfig {
                pg_listen: overrides
                    .pg_listen
                    .unwrap_or_else(|| parse_default(DEFAULT_PG_LISTEN)),
                flight_listen: overrides
                    .flight_listen
                    .unwrap_or_else(|| parse_default(DEFAULT_FLIGHT_LISTEN)),
                http_listen: overrides
                    .http_listen
                    .unwrap_or_else(|| parse_default(DEFAULT_HTTP_LISTEN)),
                portal: PortalConfig::with_listen(
                    overrides
                        .portal_listen
                        .unwrap_or_else(|| parse_default(DEFAULT_PORTAL_LISTEN)),
                ),
                users_file: data_dir.join("users.toml"),
                audit: crate::audit::AuditConfig::in_dir(data_dir.join("audit")),
                data_dir,
                policy_file: None,
                tls: None,
                require_tls: false,
                limits: Limits::default(),
            },
            sources: vec![],
            definitions: Default::default(),
            file: None,
        }
    }
}

fn parse_default(addr: &str) -> SocketAddr {
    addr.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn server_config(
    raw: &RawServer,
    base: &Path,
    overrides: &Overrides,
    at: &Locator<'_>,
) -> Result<ServerConfig, ConfigError> {
    // The file's value is checked even when the command line overrides it: a broken
    // file should not wait for the day the flag is dropped.
    let listen = |value: &Option<Spanned<String>>,
                  key: &str,
                  given: Option<SocketAddr>,
                  default: &str| {
        let from_file = match value {
            Some(v) => v.get_ref().parse::<SocketAddr>().map_err(|_| {
                at.error(
                    Some(v.span()),
                    format!(
                        "[server], key `{key}`: \"{}\" is not HOST:PORT with an IP address, e.g. \"{default}\"",
                        v.get_ref()
                    ),
                )
            })?,
            None => parse_default(default),
        };
        Ok::<_, ConfigError>(given.unwrap_or(from_file))
    };
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let data_dir = overrides
        .data_dir
        .clone()
        .or_else(|| raw.data_dir.as_ref().map(|d| resolve(d.get_ref())))
        .unwrap_or_else(|| base.join(DEFAULT_DATA_DIR));
    let tls = match (&raw.tls_cert, &raw.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(crate::tls::TlsFiles {
            cert: resolve(cert.get_ref()),
            key: resolve(key.get_ref()),
        }),
        (Some(given), None) | (None, Some(given)) => {
            let missing = if raw.tls_cert.is_some() {
                "tls_key"
            } else {
                "tls_cert"
            };
            return Err(at.error(
                Some(given.span()),
                format!(
                    "[server]: TLS needs both `tls_cert` and `tls_key`; `{missing}` is missing (`amar cert dev` makes a pair to try)"
                ),
            ));
        }
    };
    let require_tls = raw.require_tls.as_ref().is_some_and(|r| *r.get_ref());
    if require_tls && tls.is_none() {
        let span = raw.require_tls.as_ref().map(|r| r.span());
        return Err(at.error(
            span,
            "[server], key `require_tls`: TLS is not configured; set `tls_cert` and `tls_key`"
                .to_string(),
        ));
    }
    Ok(ServerConfig {
        tls,
        require_tls,
        limits: Limits::default(),
        portal: PortalConfig::with_listen(parse_default(DEFAULT_PORTAL_LISTEN)),
        pg_listen: listen(
            &raw.pg_listen,
            "pg_listen",
            overrides.pg_listen,
            DEFAULT_PG_LISTEN,
        )?,
        flight_listen: listen(
            &raw.flight_listen,
            "flight_listen",
            overrides.flight_listen,
            DEFAULT_FLIGHT_LISTEN,
        )?,
        http_listen: listen(
            &raw.http_listen,
            "http_listen",
            overrides.http_listen,
            DEFAULT_HTTP_LISTEN,
        )?,
        users_file: raw
            .users_file
            .as_ref()
            .map(|p| resolve(p.get_ref()))
            .unwrap_or_else(|| data_dir.join("users.toml")),
        policy_file: raw.policy_file.as_ref().map(|p| resolve(p.get_ref())),
        audit: crate::audit::AuditConfig::in_dir(data_dir.join("audit")),
        data_dir,
    })
}

fn audit_config(
    raw: &RawAudit,
    base: &Path,
    data_dir: &Path,
    at: &Locator<'_>,
) -> Result<crate::audit::AuditConfig, ConfigError> {
    let mut audit = crate::audit::AuditConfig::in_dir(match &raw.dir {
        Some(d) if d.get_ref().is_absolute() => d.get_ref().clone(),
        Some(d) => base.join(d.get_ref()),
        None => data_dir.join("audit"),
    });
    if let Some(mb) = &raw.max_file_mb {
        if *mb.get_ref() == 0 || *mb.get_ref() > 1024 * 1024 {
            return Err(at.error(
                Some(mb.span()),
                "[audit], key `max_file_mb`: a file size in MiB from 1 to 1048576",
            ));
        }
        audit.max_file_bytes = mb.get_ref() * 1024 * 1024;
    }
    if let Some(keep) = &raw.keep_files {
        audit.keep_files = *keep.get_ref();
    }
    if let Some(rows) = &raw.memory_rows {
        if *rows.get_ref() == 0 {
            return Err(at.error(
                Some(rows.span()),
                "[audit], key `memory_rows`: at least 1 (amar.query_log shows this many recent statements)",
            ));
        }
        audit.memory_rows = *rows.get_ref();
    }
    Ok(audit)
}

fn limits(raw: &RawLimits, at: &Locator<'_>) -> Result<Limits, ConfigError> {
    let mut limits = Limits::default();
    let count =
        |value: &Option<Spanned<i64>>, key: &str, max: i64| -> Result<Option<usize>, ConfigError> {
            match value {
                None => Ok(None),
                Some(v) if (1..=max).contains(v.get_ref()) => Ok(Some(*v.get_ref() as usize)),
                Some(v) => Err(at.error(
                    Some(v.span()),
                    format!(
                        "[limits], key `{key}`: a whole number from 1 to {max}, not {}",
                        v.get_ref()
                    ),
                )),
            }
        };
    let interval = |value: &Option<Spanned<String>>, key: &str| interval(at, "limits", value, key);
    if let Some(n) = count(&raw.max_connections, "max_connections", 100_000)? {
        limits.max_connections = n;
    }
    if let Some(mb) = count(&raw.memory_mb, "memory_mb", 1 << 30)? {
        limits.memory_bytes = mb.saturating_mul(1024 * 1024);
    }
    if let Some(limit) = interval(&raw.statement_timeout, "statement_timeout")? {
        limits.statement_timeout = Some(limit);
    }
    limits.statements_per_user = count(&raw.statements_per_user, "statements_per_user", 100_000)?;
    if let Some(grace) = interval(&raw.shutdown_grace, "shutdown_grace")? {
        limits.shutdown_grace = grace;
    }
    Ok(limits)
}

fn portal(
    raw: &RawPortal,
    overrides: &Overrides,
    at: &Locator<'_>,
) -> Result<PortalConfig, ConfigError> {
    let listen = match &raw.listen {
        Some(v) => v.get_ref().parse::<SocketAddr>().map_err(|_| {
            at.error(
                Some(v.span()),
                format!(
                    "[portal], key `listen`: \"{}\" is not HOST:PORT with an IP address, e.g. \"{DEFAULT_PORTAL_LISTEN}\"",
                    v.get_ref()
                ),
            )
        })?,
        None => parse_default(DEFAULT_PORTAL_LISTEN),
    };
    let mut portal = PortalConfig::with_listen(overrides.portal_listen.unwrap_or(listen));
    let interval = |value: &Option<Spanned<String>>, key: &str| interval(at, "portal", value, key);
    if let Some(idle) = interval(&raw.idle_timeout, "idle_timeout")? {
        portal.idle_timeout = idle;
    }
    if let Some(ttl) = interval(&raw.cache_ttl, "cache_ttl")? {
        portal.cache_ttl = ttl;
    }
    if let Some(user) = &raw.anonymous_user {
        let name = user.get_ref().trim();
        portal.anonymous_user = (!name.is_empty()).then(|| name.to_string());
    }
    if let Some(name) = &raw.name_fa {
        portal.name_fa = name.get_ref().clone();
    }
    if let Some(name) = &raw.name_en {
        portal.name_en = name.get_ref().clone();
    }
    Ok(portal)
}

/// The interval a key of `[section]` gives, if any; a clear error if it is not one.
fn interval(
    at: &Locator<'_>,
    section: &str,
    value: &Option<Spanned<String>>,
    key: &str,
) -> Result<Option<std::time::Duration>, ConfigError> {
    match value {
        None => Ok(None),
        Some(v) => parse_interval(v.get_ref()).map(Some).ok_or_else(|| {
            at.error(
                Some(v.span()),
                format!(
                    "[{section}], key `{key}`: \"{}\" is not an interval; write e.g. \"30s\", \"15m\" or \"1h\"",
                    v.get_ref()
                ),
            )
        }),
    }
}

/// `30s`, `15m`, `6h`, `1d` (at least 1 s).
fn parse_interval(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let seconds = match unit.trim() {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86400)?,
        _ => return None,
    };
    (seconds > 0).then(|| std::time::Duration::from_secs(seconds))
}

fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use amar_connectors::FileFormat;

    use super::*;

    /// A configuration as read from `/etc/amar/amar.toml` (also for `sources.rs`).
    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(
            text,
            Path::new("/etc/amar/amar.toml"),
            &Overrides::default(),
        )
    }

    #[test]
    fn a_full_config_becomes_typed_values() {
        let c = parse(
            r#"
[server]
pg_listen = "127.0.0.1:7000"
data_dir = "data"

[[source]]
name = "insurance"
kind = "sqlite"
path = "insurance.db"

[[source]]
name = "health"
kind = "files"
path = "/srv/drop/health"
format = "csv"
delimiter = ";"
"#,
        )
        .unwrap();
        assert_eq!(c.server.pg_listen.port(), 7000);
        assert_eq!(c.server.data_dir, PathBuf::from("/etc/amar/data"));
        assert_eq!(
            c.server.users_file,
            PathBuf::from("/etc/amar/data/users.toml")
        );
        assert_eq!(c.sources.len(), 2);
        match &c.sources[0].kind {
            SourceKind::Sqlite(o) => assert_eq!(o.path, PathBuf::from("/etc/amar/insurance.db")),
            other => panic!("{other:?}"),
        }
        match &c.sources[1].kind {
            SourceKind::Files(o) => {
                assert_eq!(o.format, Some(FileFormat::Csv));
                assert_eq!(o.delimiter, b';');
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_file_line_key_and_problem() {
        let cases = [
            ("[server]\npg_lisen = \"x\"\n", ":2", "pg_lisen"),
            ("[server]\npg_listen = \"localhost\"\n", ":2", "`pg_listen`"),
            (
                "[[source]]\nname = \"a\"\nkind = \"oracle\"\npath = \"x\"\n",
                ":3",
                "unknown kind \"oracle\"",
            ),
            (
                "[[source]]\nname = \"a\"\nkind = \"sqlite\"\nurl = \"x\"\npath = \"y\"\n",
                ":4",
                "`url`: not used by kind \"sqlite\"",
            ),
            (
                "[[source]]\nname = \"a\"\nkind = \"files\"\npath = \"p\"\nformat = \"xls\"\n",
                ":5",
                "unknown format \"xls\"",
            ),
            (
                "[[source]]\nname = \"Bad-Name\"\nkind = \"files\"\npath = \"p\"\n",
                ":2",
                "`name`",
            ),
            (
                "[[source]]\nname = \"a\"\nkind = \"files\"\n",
                ":3",
                "needs `path`",
            ),
            (
                "[[source]]\nname = \"a\"\nkind = \"files\"\npath = \"p\"\n[[source]]\nname = \"a\"\nkind = \"files\"\npath = \"q\"\n",
                ":6",
                "already the name",
            ),
            ("[[source]]\nname = \"a\"\n", "amar.toml", "kind"),
            ("not toml [", ":1", ""),
        ];
        for (text, at, says) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with("/etc/amar/amar.toml"), "{err}");
            assert!(err.contains(at), "{text:?}: expected {at:?} in {err}");
            assert!(err.contains(says), "{text:?}: expected {says:?} in {err}");
        }
    }

    #[test]
    fn command_line_values_win() {
        let overrides = Overrides {
            pg_listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(PathBuf::from("/tmp/d")),
            ..Overrides::default()
        };
        let c = Config::parse(
            "[server]\npg_listen = \"127.0.0.1:7000\"\n",
            Path::new("a.toml"),
            &overrides,
        )
        .unwrap();
        assert_eq!(c.server.pg_listen.port(), 0);
        assert_eq!(c.server.data_dir, PathBuf::from("/tmp/d"));
    }
}
