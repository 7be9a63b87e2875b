//! Session settings (PostgreSQL's run-time parameters) that drivers set and read.
//!
//! Drivers send `SET` and `SHOW` for a known set of PostgreSQL parameters; we keep
//! their values per session, report the ones PostgreSQL reports (ParameterStatus), and
//! honour the ones that change results (`TimeZone`, `search_path`,
//! `statement_timeout`). A name PostgreSQL does not know is refused with 42704, as
//! PostgreSQL does; a value Amar cannot honour (another client encoding, a non-ISO
//! DateStyle) is refused with a clear error rather than silently ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::{SqlError, code};

use amar_catalog::pg::{SERVER_VERSION, SERVER_VERSION_NUM};

/// Parameters PostgreSQL sends in ParameterStatus whenever they change.
pub const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "search_path",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
    "TimeZone",
];

/// Every parameter Amar accepts, with its default and a description for `SHOW ALL`.
/// Names compare case-insensitively, as in PostgreSQL.
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "application_name",
        "",
        "Sets the application name to be reported in statistics and logs.",
    ),
    ("bytea_output", "hex", "Sets the output format for bytea."),
    (
        "client_encoding",
        "UTF8",
        "Sets the client's character set encoding.",
    ),
    (
        "client_min_messages",
        "notice",
        "Sets the message levels that are sent to the client.",
    ),
    (
        "DateStyle",
        "ISO, MDY",
        "Sets the display format for date and time values.",
    ),
    (
        "default_transaction_isolation",
        "read committed",
        "Sets the transaction isolation level of each new transaction.",
    ),
    (
        "default_transaction_read_only",
        "on",
        "Sets the default read-only status of new transactions.",
    ),
    (
        "extra_float_digits",
        "1",
        "Sets the number of digits displayed for floating-point values.",
    ),
    (
        "idle_in_transaction_session_timeout",
        "0",
        "Sets the maximum allowed idle time between queries, when in a transaction.",
    ),
    (
        "in_hot_standby",
        "off",
        "Shows whether hot standby is currently active.",
    ),
    (
        "integer_datetimes",
        "on",
        "Shows whether datetimes are integer based.",
    ),
    (
        "IntervalStyle",
        "postgres",
        "Sets the display format for interval values.",
    ),
    (
        "is_superuser",
        "off",
        "Shows whether the current user is a superuser.",
    ),
    ("jit", "off", "Allow JIT compilation."),
    ("lc_collate", "C.UTF-8", "Shows the collation order locale."),
    (
        "lc_ctype",
        "C.UTF-8",
        "Shows the character classification and case conversion locale.",
    ),
    (
        "lc_messages",
        "C.UTF-8",
        "Sets the language in which messages are displayed.",
    ),
    (
        "lc_monetary",
        "C.UTF-8",
        "Sets the locale for formatting monetary amounts.",
    ),
    (
        "lc_numeric",
        "C.UTF-8",
        "Sets the locale for formatting numbers.",
    ),
    (
        "lc_time",
        "C.UTF-8",
        "Sets the locale for formatting date and time values.",
    ),
    (
        "lock_timeout",
        "0",
        "Sets the maximum allowed duration of any wait for a lock.",
    ),
    (
        "max_identifier_length",
        "63",
        "Shows the maximum identifier length.",
    ),
    (
        "max_index_keys",
        "32",
        "Shows the maximum number of index keys.",
    ),
    ("row_security", "on", "Enable row security."),
    (
        "search_path",
        "\"$user\", public",
        "Sets the schema search order for names that are not schema-qualified.",
    ),
    (
        "server_encoding",
        "UTF8",
        "Shows the server (database) character set encoding.",
    ),
    (
        "server_version",
        SERVER_VERSION,
        "Shows the server version.",
    ),
    (
        "server_version_num",
        SERVER_VERSION_NUM,
        "Shows the server version as an integer.",
    ),
    ("session_authorization", "", "Sets the session user name."),
    (
        "standard_conforming_strings",
        "on",
        "Causes '...' strings to treat backslashes literally.",
    ),
    (
        "statement_timeout",
        "0",
        "Sets the maximum allowed duration of any statement.",
    ),
    (
        "synchronous_commit",
        "on",
        "Sets the current transaction's synchronization level.",
    ),
    (
        "TimeZone",
        "Asia/Tehran",
        "Sets the time zone for displaying and interpreting time stamps.",
    ),
    (
        "transaction_isolation",
        "read committed",
        "Sets the current transaction's isolation level.",
    ),
    (
        "transaction_read_only",
        "on",
        "Sets the current transaction's read-only status.",
    ),
    ("geqo", "on", "Enables genetic query optimization."),
    (
        "join_collapse_limit",
        "8",
        "Sets the FROM-list size beyond which JOIN constructs are not flattened.",
    ),
    (
        "work_mem",
        "4MB",
        "Sets the maximum memory to be used for query workspaces.",
    ),
    (
        "enable_seqscan",
        "on",
        "Enables the planner's use of sequential-scan plans.",
    ),
    (
        "password_encryption",
        "scram-sha-256",
        "Chooses the algorithm for encrypting passwords.",
    ),
];

/// Custom settings (`myapp.x`) one session may hold, and how large each may be.
pub const MAX_CUSTOM_SETTINGS: usize = 100;
pub const MAX_CUSTOM_NAME_BYTES: usize = 128;
/// Any setting's value (a 1 MiB `application_name` is no name).
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// The settings of one session.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

/// The canonical spelling of a known parameter name, if it is one.
fn canonical(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let lower = match lower.as_str() {
        "time zone" | "timezone" => "timezone",
        "names" => "client_encoding",
        "transaction isolation level" => "transaction_isolation",
        "session authorization" => "session_authorization",
        other => other,
    }
    .to_string();
    KNOWN
        .iter()
        .map(|(n, _, _)| *n)
        .find(|n| n.eq_ignore_ascii_case(&lower))
}

impl Settings {
    /// Defaults, adjusted for the user and what the client sent at startup.
    pub fn new(user: &str, superuser: bool, startup: &[(String, String)]) -> Self {
        let mut values: BTreeMap<String, String> = KNOWN
            .iter()
            .map(|(n, v, _)| (n.to_string(), v.to_string()))
            .collect();
        values.insert("session_authorization".into(), user.to_string());
        values.insert(
            "is_superuser".into(),
            if superuser { "on" } else { "off" }.into(),
        );
        let mut settings = Settings { values };
        for (k, v) in startup {
            // Startup options are applied like SET; ones we cannot honour are ignored
            // here (PostgreSQL would refuse the connection) so that drivers sending
            // harmless extras still connect.
            if canonical(k).is_some() && !matches!(k.as_str(), "user" | "database") {
                let _ = settings.set(k, v);
            }
        }
        settings
    }

    /// `SET name = value`; returns the canonical name set.
    pub fn set(&mut self, name: &str, value: &str) -> Result<&'static str, SqlError> {
        let Some(name) = canonical(name) else {
            if name.contains('.') {
                // Custom placeholder variables (`myapp.x`) are allowed, as in
                // PostgreSQL, within bounds: a session's settings live in the
                // server's memory for as long as it does.
                let name = name.to_ascii_lowercase();
                if name.len() > MAX_CUSTOM_NAME_BYTES || value.len() > MAX_VALUE_BYTES {
                    return Err(SqlError::new(
                        code::PROGRAM_LIMIT_EXCEEDED,
                        format!(
                            "a custom setting's name may be at most {MAX_CUSTOM_NAME_BYTES} bytes and its value at most {MAX_VALUE_BYTES} bytes"
                        ),
                    ));
                }
                let custom = self.values.keys().filter(|k| k.contains('.')).count();
                if custom >= MAX_CUSTOM_SETTINGS && !self.values.contains_key(&name) {
                    return Err(SqlError::new(
                        code::PROGRAM_LIMIT_EXCEEDED,
                        format!(
                            "a session may hold at most {MAX_CUSTOM_SETTINGS} custom settings; RESET one first"
                        ),
                    ));
                }
                self.values.insert(name, value.to_string());
                return Ok("custom");
            }
            return Err(SqlError::new(
                code::UNDEFINED_OBJECT,
                format!("unrecognized configuration parameter \"{name}\""),
            ));
        };
        if value.len() > MAX_VALUE_BYTES {
            return Err(SqlError::new(
                code::PROGRAM_LIMIT_EXCEEDED,
                format!("the value of \"{name}\" may be at most {MAX_VALUE_BYTES} bytes"),
            ));
        }
        let value = value.trim();
        let value = match name {
            "client_encoding" => {
                let v = value.to_ascii_uppercase().replace('-', "");
                if v != "UTF8" && v != "UNICODE" {
                    return Err(SqlError::not_supported(format!(
                        "client encoding \"{value}\" is not supported: Amar speaks UTF8 only"
                    )));
                }
                "UTF8".to_string()
            }
            "DateStyle" => {
                let v = value.to_ascii_uppercase();
                if !v.split(',').any(|p| p.trim() == "ISO") && !v.is_empty() {
                    return Err(SqlError::not_supported(format!(
                        "DateStyle \"{value}\" is not supported: dates are sent in ISO format"
                    )));
                }
                let order = if v.contains("DMY") {
                    "DMY"
                } else if v.contains("YMD") {
                    "YMD"
                } else {
                    "MDY"
                };
                format!("ISO, {order}")
            }
            "standard_conforming_strings" => {
                if !is_on(value) {
                    return Err(SqlError::not_supported(
                        "standard_conforming_strings cannot be turned off",
                    ));
                }
                "on".to_string()
            }
            "TimeZone" => {
                let tz = normalize_time_zone(value)?;
                tz.to_string()
            }
            "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
                parse_duration(value)?;
                value.to_string()
            }
            "server_version"
            | "server_version_num"
            | "server_encoding"
            | "integer_datetimes"
            | "in_hot_standby"
            | "is_superuser"
            | "max_identifier_length"
            | "max_index_keys"
            | "lc_collate"
            | "lc_ctype"
            | "session_authorization" => {
                return Err(SqlError::new(
                    "55P02",
                    format!("parameter \"{name}\" cannot be changed"),
                ));
            }
            _ => value.to_string(),
        };
        self.values.insert(name.to_string(), value);
        Ok(name)
    }

    /// `RESET name`.
    pub fn reset(&mut self, name: &str) -> Result<&'static str, SqlError> {
        if canonical(name).is_none() && name.contains('.') {
            // A custom setting is forgotten, which frees its place.
            self.values.remove(&name.to_ascii_lowercase());
            return Ok("custom");
        }
        let canonical = canonical(name).ok_or_else(|| {
            SqlError::new(
                code::UNDEFINED_OBJECT,
                format!("unrecognized configuration parameter \"{name}\""),
            )
        })?;
        if let Some((_, default, _)) = KNOWN.iter().find(|(n, _, _)| *n == canonical) {
            self.values
                .insert(canonical.to_string(), default.to_string());
        }
        Ok(canonical)
    }

    /// `RESET ALL` / `DISCARD ALL`: every changeable parameter back to its default.
    pub fn reset_all(&mut self) {
        self.values.retain(|k, _| !k.contains('.'));
        for (name, default, _) in KNOWN {
            if !matches!(*name, "session_authorization" | "is_superuser") {
                self.values.insert(name.to_string(), default.to_string());
            }
        }
    }

    /// The name `SHOW name` labels its column with (PostgreSQL's spelling).
    pub fn display_name(name: &str) -> String {
        canonical(name)
            .map(str::to_string)
            .unwrap_or_else(|| name.to_ascii_lowercase())
    }

    /// `SHOW name`.
    pub fn get(&self, name: &str) -> Result<String, SqlError> {
        if let Some(canonical) = canonical(name) {
            return Ok(self.values.get(canonical).cloned().unwrap_or_default());
        }
        self.values
            .get(&name.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| {
                SqlError::new(
                    code::UNDEFINED_OBJECT,
                    format!("unrecognized configuration parameter \"{name}\""),
                )
            })
    }

    /// `SHOW ALL`: (name, setting, description).
    pub fn all(&self) -> Vec<(String, String, String)> {
        KNOWN
            .iter()
            .map(|(n, _, d)| {
                (
                    n.to_string(),
                    self.values.get(*n).cloned().unwrap_or_default(),
                    d.to_string(),
                )
            })
            .collect()
    }

    /// What to send as ParameterStatus at startup.
    pub fn reported(&self) -> Vec<(String, String)> {
        REPORTED
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    self.values.get(*n).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    pub fn time_zone(&self) -> String {
        self.values
            .get("TimeZone")
            .cloned()
            .unwrap_or_else(|| "UTC".into())
    }

    /// The schemas of `search_path`, in order, without `$user` and `pg_catalog`.
    pub fn search_path(&self) -> Vec<String> {
        self.values
            .get("search_path")
            .map(|p| {
                p.split(',')
                    .map(|s| s.trim().trim_matches('"').to_string())
                    .filter(|s| !s.is_empty() && s != "$user" && s != "pg_catalog")
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `statement_timeout`, when set.
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.values
            .get("statement_timeout")
            .and_then(|v| parse_duration(v).ok())
            .filter(|d| !d.is_zero())
    }
}

fn is_on(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "on" | "true" | "1" | "yes")
}

/// A PostgreSQL duration setting: a number of milliseconds, or with a unit.
pub fn parse_duration(v: &str) -> Result<Duration, SqlError> {
    let v = v.trim().trim_matches('\'').trim();
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let bad = || {
        SqlError::new(
            code::INVALID_PARAMETER_VALUE,
            format!("invalid value for a duration: \"{v}\""),
        )
        .with_hint("Valid units are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\".")
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "us" => n / 1000.0,
        "s" => n * 1000.0,
        "min" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        "d" => n * 86_400_000.0,
        _ => return Err(bad()),
    };
    if !ms.is_finite() || ms < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_micros((ms * 1000.0) as u64))
}

/// Checks a time zone name or offset; `LOCAL`/`DEFAULT` mean the server default.
fn normalize_time_zone(v: &str) -> Result<String, SqlError> {
    let v = v.trim().trim_matches('\'');
    if v.eq_ignore_ascii_case("local") || v.eq_ignore_ascii_case("default") {
        return Ok("Asia/Tehran".into());
    }
    if v.eq_ignore_ascii_case("utc") || v.eq_ignore_ascii_case("gmt") || v.eq_ignore_ascii_case("z")
    {
        return Ok("UTC".into());
    }
    if v.parse::<chrono_tz::Tz>().is_ok() {
        return Ok(v.to_string());
    }
    // Offsets like +03:30 or -5.
    let bytes = v.as_bytes();
    if !bytes.is_empty() && (bytes[0] == b'+' || bytes[0] == b'-') {
        let rest = &v[1..];
        let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
        if let (Ok(h), Ok(m)) = (h.parse::<u32>(), m.parse::<u32>())
            && h <= 15
            && m < 60
        {
            return Ok(format!("{}{:02}:{:02}", &v[..1], h, m));
        }
    }
    Err(SqlError::new(
        code::INVALID_PARAMETER_VALUE,
        format!("invalid value for parameter \"TimeZone\": \"{v}\""),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_settings_are_accepted_and_shown() {
        let mut s = Settings::new("admin", true, &[("extra_float_digits".into(), "3".into())]);
        assert_eq!(s.get("extra_float_digits").unwrap(), "3");
        assert_eq!(s.set("datestyle", "ISO, DMY").unwrap(), "DateStyle");
        assert_eq!(s.get("DATESTYLE").unwrap(), "ISO, DMY");
        assert_eq!(s.set("TIME ZONE", "UTC").unwrap(), "TimeZone");
        assert_eq!(s.get("timezone").unwrap(), "UTC");
        s.set("search_path", "insurance, public").unwrap();
        assert_eq!(s.search_path(), vec!["insurance", "public"]);
        s.set("statement_timeout", "1500").unwrap();
        assert_eq!(s.statement_timeout(), Some(Duration::from_millis(1500)));
        s.set("statement_timeout", "2s").unwrap();
        assert_eq!(s.statement_timeout(), Some(Duration::from_secs(2)));
        s.set("myapp.flag", "x").unwrap();
        assert_eq!(s.get("myapp.flag").unwrap(), "x");
        s.reset_all();
        assert_eq!(s.get("TimeZone").unwrap(), "Asia/Tehran");
        assert_eq!(s.get("is_superuser").unwrap(), "on");
    }

    #[test]
    fn what_cannot_be_honoured_is_refused() {
        let mut s = Settings::new("u", false, &[]);
        assert_eq!(
            s.set("no_such_thing", "1").unwrap_err().code,
            code::UNDEFINED_OBJECT
        );
        assert_eq!(
            s.set("client_encoding", "LATIN1").unwrap_err().code,
            code::FEATURE_NOT_SUPPORTED
        );
        assert!(s.set("client_encoding", "utf-8").is_ok());
        assert!(s.set("DateStyle", "German").is_err());
        assert!(s.set("TimeZone", "Mars/Olympus").is_err());
        assert_eq!(s.set("TimeZone", "+3:30").unwrap(), "TimeZone");
        assert_eq!(s.get("TimeZone").unwrap(), "+03:30");
        assert!(s.set("statement_timeout", "soon").is_err());
        assert!(s.set("server_version", "1").is_err());
    }
}
