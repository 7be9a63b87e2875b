//! Quoting that says what the plan says in the SQL federation sends to a database.
//!
//! The SQL a federated plan becomes is printed by sqlparser, whose printer takes a
//! quote after a backslash, or two quotes in a row, inside a string or a name to be
//! escaped already and prints it as it is. So the value `x\' OR 1=1 --` came out as
//! `'x\' OR 1=1 --'`, which PostgreSQL reads as the string `x\` followed by SQL: a
//! user's value (or a column alias) could end the literal and add conditions that
//! undo their row filter. Every statement sent to a source passes [`quote`] last:
//!
//! - a string that holds a quote or a backslash is written in the source's escape
//!   form: `E'…'` for PostgreSQL (whose `E` strings the printer escapes fully), and
//!   for MySQL with each quote and backslash escaped by a backslash, as MySQL reads
//!   its strings;
//! - a name holding the source's own identifier quote (`"` in PostgreSQL, `` ` `` in
//!   MySQL) is refused: it cannot be printed safely, and no real column needs one.

use std::ops::ControlFlow;

use datafusion::error::{DataFusionError, Result};
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, Query, Select, SelectItem, SelectItemQualifiedWildcardKind, Statement,
    TableFactor, Value, ValueWithSpan, VisitMut, VisitorMut,
};

use crate::config::Dialect;
use crate::error::ConnectorError;

/// Rewrites `statement`'s string literals into forms `dialect` reads back exactly,
/// and refuses names that cannot be quoted.
pub(crate) fn quote(mut statement: Statement, dialect: Dialect, source: &str) -> Result<Statement> {
    let mut visitor = Quoting {
        dialect,
        refused: None,
    };
    let _ = statement.visit(&mut visitor);
    match visitor.refused {
        Some(message) => Err(DataFusionError::External(Box::new(
            ConnectorError::Unsupported {
                source_name: source.to_string(),
                message,
            },
        ))),
        None => Ok(statement),
    }
}

struct Quoting {
    dialect: Dialect,
    refused: Option<String>,
}

impl Quoting {
    fn identifier_quote(&self) -> char {
        match self.dialect {
            Dialect::Postgres => '"',
            Dialect::Mysql => '`',
        }
    }

    fn check(&mut self, ident: &Ident) -> ControlFlow<()> {
        let quote = self.identifier_quote();
        if ident.value.contains(quote) {
            self.refused = Some(format!(
                "the name {:?} holds the quote character {quote}, which cannot be sent to a {} source",
                ident.value,
                self.dialect.as_str()
            ));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn check_all<'a>(&mut self, idents: impl IntoIterator<Item = &'a Ident>) -> ControlFlow<()> {
        for ident in idents {
            self.check(ident)?;
        }
        ControlFlow::Continue(())
    }

    fn check_name(&mut self, name: &ObjectName) -> ControlFlow<()> {
        self.check_all(name.0.iter().filter_map(|part| part.as_ident()))
    }
}

/// A string in MySQL's own escaping: every quote and backslash after a backslash.
/// (sqlparser prints a quote that follows a backslash as it is.)
fn mysql_escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl VisitorMut for Quoting {
    type Break = ();

    fn pre_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<()> {
        let needs_escape = |s: &str| s.contains(['\'', '\\']);
        match &mut value.value {
            Value::SingleQuotedString(s) if needs_escape(s) => match self.dialect {
                Dialect::Postgres => value.value = Value::EscapedStringLiteral(std::mem::take(s)),
                Dialect::Mysql => *s = mysql_escaped(s),
            },
            Value::EscapedStringLiteral(_) | Value::SingleQuotedString(_) => {}
            Value::Number(..) | Value::Boolean(_) | Value::Null | Value::Placeholder(_) => {}
            other => {
                // Any other quoted form is one the printer may misquote: it must hold
                // no quote or backslash at all.
                let text = other.to_string();
                let inner = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
                if inner.contains(['\'', '"', '\\', '`']) {
                    self.refused = Some(format!(
                        "the literal {text} cannot be sent to a {} source",
                        self.dialect.as_str()
                    ));
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Identifier(ident) => self.check(ident),
            Expr::CompoundIdentifier(idents) => self.check_all(idents.iter()),
            Expr::Function(function) => self.check_name(&function.name),
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        self.check_name(relation)
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let alias = match factor {
            TableFactor::Table { alias, .. }
            | TableFactor::Derived { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::NestedJoin { alias, .. } => alias.as_ref(),
            _ => None,
        };
        if let Some(alias) = alias {
            self.check(&alias.name)?;
            self.check_all(alias.columns.iter().map(|c| &c.name))?;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        for item in &select.projection {
            match item {
                SelectItem::ExprWithAlias { alias, .. } => self.check(alias)?,
                SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(name),
                    _,
                ) => self.check_name(name)?,
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for table in &with.cte_tables {
                self.check(&table.alias.name)?;
                self.check_all(table.alias.columns.iter().map(|c| &c.name))?;
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    /// Values that end a naive literal, escape into SQL, or change meaning.
    const HOSTILE: &[&str] = &[
        "x\\' OR 1=1 --",
        "x\\'') OR (1=1) --",
        "O'Brien'; DROP TABLE t; --",
        "a''b",
        "\\",
        "\\\\'",
        "'",
        "''''",
        "tab\there\nnew line\r",
        "نام ' \\ 'کرج'",
        "plain",
    ];

    /// `SELECT a FROM t WHERE b = <value>` as the federation would have it.
    fn statement_with(value: &str) -> Statement {
        let mut statement =
            Parser::parse_sql(&PostgreSqlDialect {}, "SELECT a FROM t WHERE b = 'v'")
                .unwrap()
                .remove(0);
        struct Put<'a>(&'a str);
        impl VisitorMut for Put<'_> {
            type Break = ();
            fn pre_visit_value(&mut self, v: &mut ValueWithSpan) -> ControlFlow<()> {
                v.value = Value::SingleQuotedString(self.0.to_string());
                ControlFlow::Continue(())
            }
        }
        let _ = statement.visit(&mut Put(value));
        statement
    }

    /// The string values an independent parse of `sql` finds, unescaped.
    fn values_read_back(sql: &str, dialect: Dialect) -> Vec<String> {
        let parsed = match dialect {
            Dialect::Postgres => Parser::parse_sql(&PostgreSqlDialect {}, sql),
            Dialect::Mysql => Parser::parse_sql(&MySqlDialect {}, sql),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let mut found = vec![];
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(&parsed, |e| {
            if let Expr::Value(v) = e {
                match &v.value {
                    Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => {
                        found.push(s.clone())
                    }
                    _ => {}
                }
            }
            ControlFlow::<()>::Continue(())
        });
        found
    }

    #[test]
    fn every_value_reads_back_as_itself_in_both_dialects() {
        for dialect in [Dialect::Postgres, Dialect::Mysql] {
            for value in HOSTILE {
                let sql = quote(statement_with(value), dialect, "s")
                    .unwrap()
                    .to_string();
                let back = values_read_back(&sql, dialect);
                assert_eq!(back, vec![value.to_string()], "{dialect:?}: {sql}");
                assert!(sql.starts_with("SELECT a FROM t WHERE b = "), "{sql}");
            }
        }
    }

    #[test]
    fn the_printer_alone_lets_a_value_escape() {
        // Why this module exists: without it, the value ends the literal early.
        let sql = statement_with("x\\' OR 1=1 --").to_string();
        assert_eq!(sql, "SELECT a FROM t WHERE b = 'x\\' OR 1=1 --'");
    }

    #[test]
    fn plain_values_print_as_before() {
        let sql = quote(statement_with("کرج 1403/01/01"), Dialect::Postgres, "s")
            .unwrap()
            .to_string();
        assert_eq!(sql, "SELECT a FROM t WHERE b = 'کرج 1403/01/01'");
    }

    #[test]
    fn names_holding_the_identifier_quote_are_refused() {
        for (sql, dialect) in [
            (r#"SELECT a AS "x\""" FROM t"#, Dialect::Postgres),
            (r#"SELECT "t"."a""" FROM t"#, Dialect::Postgres),
            (
                r#"SELECT a FROM (SELECT 1 AS a) AS "q""""#,
                Dialect::Postgres,
            ),
            (r#"SELECT a FROM "s"."t""""#, Dialect::Postgres),
            (r#"SELECT "f"""(a) FROM t"#, Dialect::Postgres),
            ("SELECT a AS `x``` FROM t", Dialect::Mysql),
        ] {
            let parser: Box<dyn datafusion::sql::sqlparser::dialect::Dialect> = match dialect {
                Dialect::Postgres => Box::new(PostgreSqlDialect {}),
                Dialect::Mysql => Box::new(MySqlDialect {}),
            };
            let statement = Parser::parse_sql(parser.as_ref(), sql).unwrap().remove(0);
            let e = quote(statement, dialect, "dept").unwrap_err().to_string();
            assert!(e.contains("quote character"), "{sql}: {e}");
            assert!(e.contains("dept"), "{sql}: {e}");
        }
        // A quote of the other kind is an ordinary character in a name.
        let statement = Parser::parse_sql(&PostgreSqlDialect {}, r#"SELECT a AS "it's" FROM t"#)
            .unwrap()
            .remove(0);
        assert!(quote(statement, Dialect::Postgres, "s").is_ok());
    }
}
