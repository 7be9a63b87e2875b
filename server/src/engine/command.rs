//! Sorting statements into session commands and queries.
//!
//! Drivers send `SET`, `SHOW`, `BEGIN`, `DISCARD ALL` and friends around their real
//! queries; a session answers these itself. Everything else is a query for the planner.

use datafusion::sql::sqlparser::ast::{
    CopyLegacyOption, CopyOption, CopySource, CopyTarget, DataType, DiscardObject, Expr,
    FunctionArg, FunctionArgExpr, FunctionArguments, Reset, Set, Statement, Value, ValueWithSpan,
};

use super::error::SqlError;

/// What a statement asks of the session.
#[derive(Debug, Clone)]
pub enum Command {
    Set {
        name: String,
        value: String,
    },
    Reset {
        name: String,
    },
    ResetAll,
    Show {
        name: String,
    },
    ShowAll,
    Begin,
    Commit,
    Rollback,
    /// SAVEPOINT, RELEASE, SET TRANSACTION …: accepted, nothing to do for a read-only
    /// server. Carries the command tag.
    NoOp(&'static str),
    DiscardAll,
    /// `DEALLOCATE [PREPARE] name`, or every named statement (`ALL`) with `None`.
    Deallocate {
        name: Option<String>,
    },
    /// `PREPARE name [(types)] AS statement`.
    Prepare {
        name: String,
        types: Vec<DataType>,
        statement: Box<Statement>,
    },
    /// `EXECUTE name [(values)]`.
    Execute {
        name: String,
        values: Vec<Expr>,
    },
    Copy {
        query: Box<Statement>,
        format: CopyFormat,
    },
    /// `DECLARE name CURSOR [WITH HOLD] FOR query`.
    Declare {
        name: String,
        query: Box<Statement>,
        hold: bool,
    },
    /// `FETCH [FORWARD] n | ALL | NEXT FROM name`; `None` fetches the rest.
    Fetch {
        name: String,
        count: Option<u64>,
    },
    /// `CLOSE name`, or every cursor with `CLOSE ALL`.
    Close {
        name: Option<String>,
    },
    /// `CALL name(args)`: one of Amar's procedures (`amar.release`, …). Arguments
    /// are given by position or by name (`period => '1403Q4'`).
    Call {
        procedure: String,
        args: Vec<(Option<String>, Expr)>,
    },
    Query(Box<Statement>),
}

/// The text format of `COPY … TO STDOUT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    pub csv: bool,
    pub header: bool,
    pub delimiter: char,
    pub null: String,
}

fn expr_text(e: &Expr) -> String {
    match e {
        Expr::Value(ValueWithSpan { value, .. }) => match value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            Value::Number(n, _) => n.clone(),
            Value::Boolean(b) => if *b { "on" } else { "off" }.to_string(),
            other => other.to_string(),
        },
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

impl Command {
    pub fn classify(statement: Statement) -> Result<Command, SqlError> {
        Ok(match statement {
            Statement::Set(set) => match set {
                Set::SingleAssignment {
                    variable, values, ..
                } => {
                    let name = variable.to_string();
                    let value = values.iter().map(expr_text).collect::<Vec<_>>().join(", ");
                    if value.eq_ignore_ascii_case("default") {
                        Command::Reset { name }
                    } else {
                        Command::Set { name, value }
                    }
                }
                Set::SetTimeZone { value, .. } => Command::Set {
                    name: "TimeZone".into(),
                    value: expr_text(&value),
                },
                Set::SetNames { charset_name, .. } => Command::Set {
                    name: "client_encoding".into(),
                    value: charset_name.value,
                },
                Set::SetNamesDefault {} => Command::Reset {
                    name: "client_encoding".into(),
                },
                Set::SetTransaction { .. } => Command::NoOp("SET"),
                Set::SetSessionAuthorization(_) | Set::SetRole { .. } => {
                    return Err(SqlError::new(
                        super::error::code::INSUFFICIENT_PRIVILEGE,
                        "permission denied to set session authorization or role",
                    ));
                }
                other => {
                    return Err(SqlError::not_supported(format!("{other} is not supported")));
                }
            },
            Statement::Reset(r) => match r.reset {
                Reset::ALL => Command::ResetAll,
                Reset::ConfigurationParameter(name) => Command::Reset {
                    name: name.to_string(),
                },
            },
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.clone())
                    .collect::<Vec<_>>()
                    .join(" ");
                if name.eq_ignore_ascii_case("all") {
                    Command::ShowAll
                } else {
                    Command::Show { name }
                }
            }
            Statement::StartTransaction { .. } => Command::Begin,
            Statement::Commit { .. } => Command::Commit,
            Statement::Rollback {
                savepoint: None, ..
            } => Command::Rollback,
            Statement::Rollback {
                savepoint: Some(_), ..
            } => Command::NoOp("ROLLBACK"),
            Statement::Savepoint { .. } => Command::NoOp("SAVEPOINT"),
            Statement::ReleaseSavepoint { .. } => Command::NoOp("RELEASE"),
            Statement::Discard { object_type } => match object_type {
                DiscardObject::ALL => Command::DiscardAll,
                _ => Command::NoOp("DISCARD"),
            },
            Statement::Call(function) => {
                let procedure = function.name.to_string().to_ascii_lowercase();
                let args = match function.args {
                    FunctionArguments::None => vec![],
                    FunctionArguments::List(list) => list
                        .args
                        .into_iter()
                        .map(|arg| {
                            let (name, value) = match arg {
                                FunctionArg::Named { name, arg, .. } => {
                                    (Some(name.value.to_ascii_lowercase()), arg)
                                }
                                FunctionArg::ExprNamed {
                                    name: Expr::Identifier(name),
                                    arg,
                                    ..
                                } => (Some(name.value.to_ascii_lowercase()), arg),
                                FunctionArg::Unnamed(arg) => (None, arg),
                                other => {
                                    return Err(SqlError::syntax(format!(
                                        "\"{other}\" is not an argument: name => value, or a value"
                                    )));
                                }
                            };
                            match value {
                                FunctionArgExpr::Expr(e) => Ok((name, e)),
                                other => {
                                    Err(SqlError::syntax(format!("\"{other}\" is not a value")))
                                }
                            }
                        })
                        .collect::<Result<_, _>>()?,
                    FunctionArguments::Subquery(_) => {
                        return Err(SqlError::syntax("a procedure takes values, not a query"));
                    }
                };
                Command::Call { procedure, args }
            }
            Statement::Deallocate { name, .. } => Command::Deallocate {
                name: (!(name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all")))
                    .then_some(name.value),
            },
            Statement::Prepare {
                name,
                data_types,
                statement,
            } => Command::Prepare {
                name: name.value,
                types: data_types,
                statement,
            },
            Statement::Execute {
                name: Some(name),
                parameters,
                immediate: false,
                into,
                using,
                ..
            } if into.is_empty() && using.is_empty() && name.0.len() == 1 => Command::Execute {
                name: name.0[0]
                    .as_ident()
                    .map(|i| i.value.clone())
                    .unwrap_or_else(|| name.to_string()),
                values: parameters,
            },
            Statement::Execute { .. } => {
                return Err(SqlError::syntax(
                    "EXECUTE takes a prepared statement's name and its values in parentheses",
                ));
            }
            Statement::Copy {
                source,
                to,
                target,
                options,
                legacy_options,
                ..
            } => {
                if !to || target != CopyTarget::Stdout {
                    return Err(SqlError::new(
                        super::error::code::READ_ONLY_SQL_TRANSACTION,
                        "only COPY … TO STDOUT is allowed: Amar serves its sources read-only and does not touch the server's files",
                    ));
                }
                let query = match source {
                    CopySource::Query(q) => Statement::Query(q),
                    CopySource::Table {
                        table_name,
                        columns,
                    } => {
                        let cols = if columns.is_empty() {
                            "*".to_string()
                        } else {
                            columns
                                .iter()
                                .map(|c| c.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        let sql = format!("SELECT {cols} FROM {table_name}");
                        let mut parsed = datafusion::sql::sqlparser::parser::Parser::parse_sql(
                            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                            &sql,
                        )
                        .map_err(|e| SqlError::syntax(e.to_string()))?;
                        parsed.remove(0)
                    }
                };
                Command::Copy {
                    query: Box::new(query),
                    format: copy_format(&options, &legacy_options)?,
                }
            }
            Statement::Declare { mut stmts } => {
                let declare = match (stmts.len(), stmts.pop()) {
                    (1, Some(d)) => d,
                    _ => return Err(SqlError::syntax("DECLARE takes one cursor")),
                };
                let name = declare
                    .names
                    .first()
                    .map(|n| n.value.clone())
                    .ok_or_else(|| SqlError::syntax("DECLARE needs a cursor name"))?;
                if declare.scroll == Some(true) {
                    return Err(SqlError::not_supported(
                        "SCROLL cursors are not supported; cursors scan forward",
                    ));
                }
                let query = declare
                    .for_query
                    .ok_or_else(|| SqlError::syntax("DECLARE … CURSOR needs FOR <query>"))?;
                Command::Declare {
                    name,
                    query: Box::new(Statement::Query(query)),
                    hold: declare.hold == Some(true),
                }
            }
            Statement::Fetch {
                name, direction, ..
            } => {
                use datafusion::sql::sqlparser::ast::FetchDirection;
                let count = |v: &ValueWithSpan| -> Result<u64, SqlError> {
                    match &v.value {
                        Value::Number(n, _) => n
                            .parse::<u64>()
                            .map_err(|_| SqlError::syntax(format!("invalid FETCH count {n}"))),
                        other => Err(SqlError::syntax(format!("invalid FETCH count {other}"))),
                    }
                };
                let count = match direction {
                    FetchDirection::Next => Some(1),
                    FetchDirection::Count { limit } => Some(count(&limit)?),
                    FetchDirection::Forward { limit: None } => Some(1),
                    FetchDirection::Forward { limit: Some(l) } => Some(count(&l)?),
                    FetchDirection::All | FetchDirection::ForwardAll => None,
                    _ => {
                        return Err(SqlError::new(
                            "55000",
                            "cursor can only scan forward; declare it with SCROLL to fetch backward (not supported)",
                        ));
                    }
                };
                Command::Fetch {
                    name: name.value,
                    count,
                }
            }
            Statement::Close { cursor } => {
                use datafusion::sql::sqlparser::ast::CloseCursor;
                Command::Close {
                    name: match cursor {
                        CloseCursor::All => None,
                        CloseCursor::Specific { name } => Some(name.value),
                    },
                }
            }
            Statement::LISTEN { .. } | Statement::UNLISTEN { .. } | Statement::NOTIFY { .. } => {
                return Err(SqlError::not_supported("LISTEN/NOTIFY is not supported"));
            }
            other => Command::Query(Box::new(other)),
        })
    }
}

fn copy_format(
    options: &[CopyOption],
    legacy: &[CopyLegacyOption],
) -> Result<CopyFormat, SqlError> {
    let mut format = CopyFormat {
        csv: false,
        header: false,
        delimiter: '\t',
        null: "\\N".to_string(),
    };
    let mut delimiter = None;
    let mut null = None;
    for o in options {
        match o {
            CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                "csv" => format.csv = true,
                "text" => format.csv = false,
                other => {
                    return Err(SqlError::not_supported(format!(
                        "COPY format \"{other}\" is not supported; use text or csv"
                    )));
                }
            },
            CopyOption::Header(h) => format.header = *h,
            CopyOption::Delimiter(d) => delimiter = Some(*d),
            CopyOption::Null(n) => null = Some(n.clone()),
            other => {
                return Err(SqlError::not_supported(format!(
                    "COPY option {other} is not supported"
                )));
            }
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Csv(_) => format.csv = true,
            CopyLegacyOption::Header => format.header = true,
            CopyLegacyOption::Delimiter(d) => delimiter = Some(*d),
            CopyLegacyOption::Binary => {
                return Err(SqlError::not_supported(
                    "COPY BINARY is not supported; use text or csv",
                ));
            }
            other => {
                return Err(SqlError::not_supported(format!(
                    "COPY option {other} is not supported"
                )));
            }
        }
    }
    if format.csv {
        format.delimiter = delimiter.unwrap_or(',');
        format.null = null.unwrap_or_default();
    } else {
        format.delimiter = delimiter.unwrap_or('\t');
        format.null = null.unwrap_or_else(|| "\\N".to_string());
        if format.header {
            return Err(SqlError::not_supported(
                "COPY HEADER is available only in CSV mode",
            ));
        }
    }
    Ok(format)
}
