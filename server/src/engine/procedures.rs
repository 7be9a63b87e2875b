//! Amar's procedures, run with `CALL` in the caller's session (so the policy decides
//! who may, and the audit log keeps every call): the statistics office's actions on
//! official releases.
//!
//! ```sql
//! CALL amar.release(indicators => 'average_wage, active_insured', period => '1403Q4');
//! CALL amar.release('average_wage', '1404-01', publish_at => '2026-12-20 10:00');
//! CALL amar.release('average_wage', '1403Q4', class => 'correction',
//!                   reason => 'Fars reported twice');
//! CALL amar.verify_releases();
//! ```
//!
//! `amar.release` takes `indicators` (one id, or several separated by commas),
//! `period`, and optionally `publish_at` (a later time puts the release under
//! embargo until then; a time without a zone is Tehran time), `class` and `reason`
//! (required to release a figure again), and `force` (a written reason to release
//! an indicator whose guarding rules did not pass). Releasing needs the `release`
//! action on `indicators.<id>` in the policy; verifying needs `release` on
//! `amar.releases`. Admins may do both.

use amar_catalog::releases::calendar::parse_moment;
use amar_catalog::releases::{ReleaseError, Request, RevisionClass, jalali_tehran};
use chrono::Utc;
use datafusion::sql::sqlparser::ast::{Expr, Value, ValueWithSpan};

use super::Session;
use super::error::{SqlError, code};

/// What a procedure returns: column names and rows of text.
pub(super) type Answer = (&'static [&'static str], Vec<Vec<String>>);

const RELEASE: &str = "amar.release";
const VERIFY: &str = "amar.verify_releases";
const RELEASE_ARGS: [&str; 6] = [
    "indicators",
    "period",
    "publish_at",
    "class",
    "reason",
    "force",
];

impl From<ReleaseError> for SqlError {
    fn from(e: ReleaseError) -> Self {
        SqlError::new(
            match e.code {
                "22023" => code::INVALID_PARAMETER_VALUE,
                "42704" => code::UNDEFINED_OBJECT,
                "55000" => "55000",
                _ => code::INTERNAL_ERROR,
            },
            e.message,
        )
    }
}

/// The arguments of a call by name, given by position or by name.
fn bind(
    procedure: &str,
    names: &[&'static str],
    args: Vec<(Option<String>, Expr)>,
) -> Result<Vec<Option<String>>, SqlError> {
    let mut values: Vec<Option<String>> = vec![None; names.len()];
    let mut named = false;
    for (i, (name, expr)) in args.into_iter().enumerate() {
        let slot = match name {
            Some(name) => {
                named = true;
                names.iter().position(|n| *n == name).ok_or_else(|| {
                    SqlError::new(
                        code::UNDEFINED_FUNCTION,
                        format!(
                            "procedure {procedure} has no argument \"{name}\" (it takes {})",
                            names.join(", ")
                        ),
                    )
                })?
            }
            None if named => {
                return Err(SqlError::syntax(
                    "positional argument cannot follow named argument",
                ));
            }
            None if i >= names.len() => {
                return Err(SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    format!(
                        "procedure {procedure} takes at most {} arguments ({})",
                        names.len(),
                        names.join(", ")
                    ),
                ));
            }
            None => i,
        };
        if values[slot].is_some() {
            return Err(SqlError::syntax(format!(
                "argument \"{}\" is given twice",
                names[slot]
            )));
        }
        values[slot] = literal(&expr)?;
    }
    Ok(values)
}

/// A literal's text; NULL is none.
fn literal(expr: &Expr) -> Result<Option<String>, SqlError> {
    match expr {
        Expr::Value(ValueWithSpan { value, .. }) => match value {
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::DollarQuotedString(datafusion::sql::sqlparser::ast::DollarQuotedString {
                value: s,
                ..
            }) => Ok(Some(s.clone())),
            Value::Number(n, _) => Ok(Some(n.clone())),
            Value::Null => Ok(None),
            Value::Placeholder(p) => Err(SqlError::new(
                code::FEATURE_NOT_SUPPORTED,
                format!("procedures take literal values, not parameters ({p})"),
            )),
            other => Err(SqlError::new(
                code::DATATYPE_MISMATCH,
                format!("{other} is not a text value"),
            )),
        },
        other => Err(SqlError::new(
            code::FEATURE_NOT_SUPPORTED,
            format!("procedures take literal values, not expressions ({other})"),
        )),
    }
}

const RELEASE_COLUMNS: &[&str] = &[
    "release_id",
    "period",
    "indicators",
    "status",
    "publish_at",
    "publish_at_jalali",
    "manifest_sha256",
];
const VERIFY_COLUMNS: &[&str] = &["release_id", "status", "problem"];

/// The columns a procedure returns, for a client that prepares a CALL.
pub(super) fn columns(procedure: &str) -> Option<&'static [&'static str]> {
    match procedure {
        RELEASE => Some(RELEASE_COLUMNS),
        VERIFY => Some(VERIFY_COLUMNS),
        _ => None,
    }
}

impl Session {
    /// Runs a procedure and returns its answer.
    pub(super) async fn call(
        &self,
        procedure: &str,
        args: Vec<(Option<String>, Expr)>,
    ) -> Result<Answer, SqlError> {
        match procedure {
            RELEASE => self.release(bind(procedure, &RELEASE_ARGS, args)?).await,
            VERIFY => {
                bind(procedure, &[], args)?;
                self.verify_releases()
            }
            _ => Err(SqlError::new(
                code::UNDEFINED_FUNCTION,
                format!("procedure {procedure} does not exist (Amar has {RELEASE} and {VERIFY})"),
            )),
        }
    }

    async fn release(&self, values: Vec<Option<String>>) -> Result<Answer, SqlError> {
        let [indicators, period, publish_at, class, reason, force]: [Option<String>; 6] = values
            .try_into()
            .map_err(|_| SqlError::new(code::INTERNAL_ERROR, "procedure arguments"))?;
        let required = |value: Option<String>, name: &str| {
            value.ok_or_else(|| {
                SqlError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!("{RELEASE} needs {name}"),
                )
            })
        };
        let indicators: Vec<String> = required(indicators, "indicators")?
            .split(',')
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty())
            .collect();
        let period = required(period, "a period")?.trim().to_string();
        let publish_at = match publish_at {
            None => None,
            Some(text) => Some(parse_moment(&text).ok_or_else(|| {
                SqlError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!(
                        "publish_at \"{text}\" is not a time (YYYY-MM-DD HH:MM or Jalali YYYY/MM/DD HH:MM, Tehran time, or with its zone)"
                    ),
                )
            })?),
        };
        let class = match class {
            None => None,
            Some(text) => Some(RevisionClass::parse(text.trim()).ok_or_else(|| {
                SqlError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!(
                        "class \"{text}\" is not one of {}",
                        RevisionClass::ALL.map(|c| c.as_str()).join(", ")
                    ),
                )
            })?),
        };
        let access = self.access.current();
        for id in &indicators {
            if !access.may("release", &format!("indicators.{id}")) {
                return Err(SqlError::new(
                    code::INSUFFICIENT_PRIVILEGE,
                    format!("permission denied to release indicator \"{id}\""),
                ));
            }
        }
        let release = self
            .engine
            .releases()
            .release(Request {
                indicators,
                period,
                publish_at,
                class,
                reason,
                force,
                by: self.user.name.clone(),
            })
            .await?;
        let meta = &release.meta;
        let status = if release.published(Utc::now()) {
            "published"
        } else {
            "embargoed"
        };
        Ok((
            RELEASE_COLUMNS,
            vec![vec![
                meta.id.clone(),
                meta.period.clone(),
                meta.indicators
                    .iter()
                    .map(|i| format!("{} (revision {})", i.id, i.revision))
                    .collect::<Vec<_>>()
                    .join(", "),
                status.to_string(),
                meta.publish_at.clone(),
                jalali_tehran(release.publish_at),
                release.manifest_sha256.clone(),
            ]],
        ))
    }

    fn verify_releases(&self) -> Result<Answer, SqlError> {
        if !self.access.current().may("release", "amar.releases") {
            return Err(SqlError::new(
                code::INSUFFICIENT_PRIVILEGE,
                "permission denied to verify releases",
            ));
        }
        let rows = self
            .engine
            .releases()
            .verify()
            .into_iter()
            .map(|(id, problem)| {
                vec![
                    id,
                    if problem.is_some() { "broken" } else { "ok" }.to_string(),
                    problem.unwrap_or_default(),
                ]
            })
            .collect();
        Ok((VERIFY_COLUMNS, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_without_a_zone_are_tehran_time() {
        let t = parse_moment("2026-12-06 10:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-06T06:30:00+00:00");
        let z = parse_moment("2026-12-06 10:00:00+00:00").unwrap();
        assert_eq!(z.to_rfc3339(), "2026-12-06T10:00:00+00:00");
        let r = parse_moment("2026-12-06T10:00:00Z").unwrap();
        assert_eq!(r, z);
        assert!(parse_moment("tomorrow").is_none());
    }
}
