//! SQL as PostgreSQL clients write it, made plannable by DataFusion.
//!
//! Statements are parsed with the PostgreSQL dialect and then rewritten with
//! datafusion-pg-catalog's rules (`'x'::regclass`, `= ANY(array)`, `OPERATOR(…)`,
//! unqualified `pg_class`…) plus one of our own: every unnamed SELECT item gets its
//! PostgreSQL name as an alias, made unique, because DataFusion refuses two projected
//! columns with one name where PostgreSQL allows them.
//!
//! One rule of that crate replaces correlated subqueries in a SELECT list by NULL so
//! that tools' catalog queries plan. That would silently change answers over real
//! data, so we apply it only to statements that read nothing but `pg_catalog` and
//! `information_schema`; a user's query either gets its true answer or an error.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    CastKind, DataType as SqlType, Expr, Ident, ObjectName, Query, Select, SelectItem, SetExpr,
    Statement, VisitMut, VisitorMut, visit_relations,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Tokenizer;
use datafusion_pg_catalog::sql::rules::{
    AliasDuplicatedProjectionRewrite, CurrentUserVariableToSessionUserFunctionCall,
    FixArrayLiteral, PrependUnqualifiedPgTableName, RemoveSubqueryFromProjection,
    ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation, RewritePgCatalogOperator,
    RewriteRegCastToSubquery, SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};

use super::depth;
use super::error::SqlError;

/// How deeply the parser may recurse (parentheses, subqueries, prefix operators)
/// before it refuses (PostgreSQL's `max_stack_depth` plays this role).
pub(super) const RECURSION_LIMIT: usize = 200;

/// Parses SQL text into statements, without rewriting. A statement whose
/// expressions could nest deeper than [`depth::MAX_EXPRESSION_DEPTH`] is refused
/// (54001) before it is parsed, so that no recursive step ever walks it.
pub fn parse(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let dialect = PostgreSqlDialect {};
    let syntax = |e: ParserError| match e {
        ParserError::RecursionLimitExceeded => depth::too_deep(RECURSION_LIMIT),
        other => SqlError::from_datafusion(&datafusion::error::DataFusionError::SQL(
            Box::new(other),
            None,
        )),
    };
    let tokens = Tokenizer::new(&dialect, sql)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| syntax(e.into()))?;
    depth::check(&tokens, depth::MAX_EXPRESSION_DEPTH)?;
    Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(syntax)
}

/// Rewrites parsed statements into what DataFusion plans.
pub struct Rewriter {
    rules: Vec<Arc<dyn SqlStatementRewriteRule>>,
    catalog_only: Vec<Arc<dyn SqlStatementRewriteRule>>,
}

impl Default for Rewriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Rewriter {
    pub fn new() -> Self {
        Self {
            rules: vec![
                Arc::new(AliasDuplicatedProjectionRewrite),
                Arc::new(ResolveUnqualifiedIdentifier),
                Arc::new(RewriteArrayAnyAllOperation),
                Arc::new(PrependUnqualifiedPgTableName),
                Arc::new(StripCallableQualifier),
                Arc::new(FixArrayLiteral),
                Arc::new(CurrentUserVariableToSessionUserFunctionCall),
                Arc::new(StripCollate),
                Arc::new(RewritePgCatalogOperator),
                Arc::new(RewriteRegCastToSubquery::new()),
            ],
            catalog_only: vec![Arc::new(RemoveSubqueryFromProjection)],
        }
    }

    /// Rewrites `statement` for the session of `user`.
    pub fn rewrite(&self, statement: &Statement, user: &str) -> Statement {
        let catalog_only = reads_only_system_catalogs(statement);
        let mut s = statement.clone();
        let _ = s.visit(&mut QualifiedRegLiterals);
        for rule in &self.rules {
            s = rule.rewrite(s);
        }
        if catalog_only {
            for rule in &self.catalog_only {
                s = rule.rewrite(s);
            }
        }
        let _ = s.visit(&mut PgFunctions {
            catalog_only,
            user: user.to_string(),
        });
        let _ = s.visit(&mut UniqueNames);
        s
    }
}

/// Whether an expression evidently yields text (a name being cast to regclass).
fn produces_text(expr: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    match expr {
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_lowercase();
            [
                "format",
                "concat",
                "quote_ident",
                "lower",
                "upper",
                "replace",
                "trim",
            ]
            .iter()
            .any(|n| name.ends_with(n))
        }
        Expr::BinaryOp {
            op: BinaryOperator::StringConcat,
            ..
        } => true,
        Expr::Cast { data_type, .. } => {
            let t = data_type.to_string().to_ascii_lowercase();
            t == "text" || t.starts_with("varchar") || t.starts_with("character varying")
        }
        Expr::Nested(inner) => produces_text(inner),
        // A bound parameter: drivers send the name as text ($1::regclass).
        Expr::Value(v) => matches!(
            v.value,
            datafusion::sql::sqlparser::ast::Value::Placeholder(_)
        ),
        _ => false,
    }
}

/// PostgreSQL functions DataFusion lacks, written in terms of ones it has.
struct PgFunctions {
    catalog_only: bool,
    /// The session's user, which `current_user` and `session_user` name.
    user: String,
}

fn parse_expr(sql: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .ok()?
        .parse_expr()
        .ok()
}

fn plain_args(f: &datafusion::sql::sqlparser::ast::Function) -> Option<Vec<String>> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.to_string()),
            _ => None,
        })
        .collect()
}

impl VisitorMut for PgFunctions {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::{AccessExpr, FunctionArguments};
        // `(composite).field`, PostgreSQL's field selection, is get_field here.
        if let Expr::CompoundFieldAccess { root, access_chain } = expr
            && matches!(root.as_ref(), Expr::Nested(_))
            && let Some(fields) = access_chain
                .iter()
                .map(|a| match a {
                    AccessExpr::Dot(Expr::Identifier(i)) => Some(i.value.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
        {
            let mut sql = root.to_string();
            for field in fields {
                sql = format!("get_field({sql}, '{}')", field.replace('\'', "''"));
            }
            if let Some(r) = parse_expr(&sql) {
                *expr = r;
            }
            return ControlFlow::Continue(());
        }
        // `CAST(<text> AS regclass)` resolves the name (Metabase builds it with
        // format('%I.%I', …)); the crate rewrites only literal names.
        if let Expr::Cast {
            expr: inner,
            data_type,
            ..
        } = expr
            && data_type.to_string().eq_ignore_ascii_case("regclass")
            && produces_text(inner)
            && let Some(r) = parse_expr(&format!("to_regclass({inner})"))
        {
            *expr = r;
            return ControlFlow::Continue(());
        }
        // LIKE with an escape character other than the backslash (SQLAlchemy 2.1's
        // `NOT LIKE 'pg/_%' ESCAPE '/'`): DataFusion's LIKE takes only the
        // backslash, so the pattern is translated to it.
        if let Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        } = expr
            && let Some(escape) = escape_char.as_ref()
        {
            use datafusion::sql::sqlparser::ast::Value;
            let text = match &escape.value {
                Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s.clone()),
                _ => None,
            };
            if let Some(text) = text
                && text != "\\"
                && let Some(translated) = parse_expr(&format!(
                    "{}({pattern}, '{}')",
                    amar_catalog::pg::compat::LIKE_ESCAPE_FUNCTION,
                    text.replace('\'', "''")
                ))
            {
                **pattern = translated;
                *escape_char = None;
            }
            return ControlFlow::Continue(());
        }
        let Expr::Function(f) = expr else {
            return ControlFlow::Continue(());
        };
        // json_agg(x [ORDER BY …]) is to_json(array_agg(x [ORDER BY …])).
        if let Some(last) = f.name.0.last()
            && let Some(ident) = last.as_ident()
            && matches!(
                ident.value.to_ascii_lowercase().as_str(),
                "json_agg" | "jsonb_agg"
            )
            && f.over.is_none()
        {
            let mut inner = f.clone();
            inner.name = ObjectName::from(vec![Ident::new("array_agg")]);
            if let Some(r) = parse_expr(&format!("to_json({inner})")) {
                *expr = r;
            }
            return ControlFlow::Continue(());
        }
        let name = f
            .name
            .0
            .last()
            .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
            .unwrap_or_default();
        let no_args = matches!(f.args, FunctionArguments::None)
            || matches!(&f.args, FunctionArguments::List(l) if l.args.is_empty());
        let replacement = match name.as_str() {
            "current_user" | "session_user" | "current_role" | "user" if no_args => {
                Some(Expr::value(
                    datafusion::sql::sqlparser::ast::Value::SingleQuotedString(self.user.clone()),
                ))
            }
            // The subscripts of dimension 1, as a set: 1 … array_length(a, 1).
            "generate_subscripts" => plain_args(f).and_then(|args| match args.as_slice() {
                [array, dim] => parse_expr(&format!(
                    "unnest(generate_series(1, array_length({array}, {dim})))"
                )),
                _ => None,
            }),
            // A set-returning function in PostgreSQL; here a list, unnested in place.
            "_pg_expandarray" => plain_args(f).and_then(|args| match args.as_slice() {
                [array] => parse_expr(&format!("unnest(_pg_expandarray({array}))")),
                _ => None,
            }),
            // The crate declares these for `integer` only; PostgreSQL's literal
            // `6` is one, DataFusion's is a bigint.
            "pg_get_userbyid" => plain_args(f).and_then(|args| match args.as_slice() {
                [arg] if arg.parse::<i32>().is_ok() => {
                    parse_expr(&format!("{name}(CAST({arg} AS INTEGER))"))
                }
                _ => None,
            }),
            // An integer literal is PostgreSQL's `integer` (DataFusion's is a bigint,
            // sent as an integer: see output::int4_columns).
            "pg_typeof" => plain_args(f).and_then(|args| match args.as_slice() {
                [arg] if arg.parse::<i32>().is_ok() => parse_expr("'integer'"),
                _ => None,
            }),
            // ARRAY(subquery) has no DataFusion form; tools use it only in catalog
            // queries over objects Amar does not have (policies, publications).
            "array" if self.catalog_only && matches!(f.args, FunctionArguments::Subquery(_)) => {
                Some(Expr::value(datafusion::sql::sqlparser::ast::Value::Null))
            }
            _ => None,
        };
        if let Some(r) = replacement {
            *expr = r;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        // In catalog queries, a scalar subquery looks one row up by its OID
        // (`(SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid)`, in
        // psql's \dT and SQLAlchemy 2.1's get_columns). DataFusion plans a
        // correlated scalar subquery only when it is aggregated; over at most one
        // row, max() is the row itself.
        if self.catalog_only
            && let Expr::Subquery(query) = expr
        {
            aggregate_single_row(query);
        }
        // In catalog queries, a scalar subquery inside CASE reads objects Amar does
        // not have (publication columns, policy roles) and is usually correlated in
        // ways DataFusion cannot plan: PostgreSQL would find no rows, so NULL.
        if self.catalog_only
            && let Expr::Case {
                conditions,
                else_result,
                ..
            } = expr
        {
            let null = || Expr::value(datafusion::sql::sqlparser::ast::Value::Null);
            for when in conditions.iter_mut() {
                if matches!(when.result, Expr::Subquery(_)) {
                    when.result = null();
                }
            }
            if let Some(e) = else_result
                && matches!(e.as_ref(), Expr::Subquery(_))
            {
                **e = null();
            }
        }
        ControlFlow::Continue(())
    }
}

/// A `set_config(name, value, is_local)` call of a query, with literal arguments.
#[derive(Debug, PartialEq)]
pub struct SetConfig {
    pub name: String,
    pub value: String,
}

/// Takes the `set_config` calls out of `statement`, each replaced by the value it
/// sets (what PostgreSQL's returns), for the session to apply before planning.
/// Calls whose name or value are not literals are left for the planner to refuse.
pub fn take_set_configs(statement: &mut Statement) -> Vec<SetConfig> {
    struct Take(Vec<SetConfig>);
    impl VisitorMut for Take {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            use datafusion::sql::sqlparser::ast::{
                FunctionArg, FunctionArgExpr, FunctionArguments, Value,
            };
            let Expr::Function(f) = expr else {
                return ControlFlow::Continue(());
            };
            let is_set_config = f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("set_config"));
            let FunctionArguments::List(list) = &f.args else {
                return ControlFlow::Continue(());
            };
            let text = |a: &FunctionArg| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
                    Value::SingleQuotedString(s) => Some(s.clone()),
                    Value::Boolean(b) => Some(b.to_string()),
                    _ => None,
                },
                _ => None,
            };
            if is_set_config
                && list.args.len() == 3
                && let (Some(name), Some(value), Some(_)) = (
                    text(&list.args[0]),
                    text(&list.args[1]),
                    text(&list.args[2]),
                )
            {
                *expr = Expr::value(Value::SingleQuotedString(value.clone()));
                self.0.push(SetConfig { name, value });
            }
            ControlFlow::Continue(())
        }
    }
    let mut take = Take(vec![]);
    let _ = statement.visit(&mut take);
    take.0
}

/// Whether the statement calls `set_config` anywhere.
pub fn calls_set_config(statement: &Statement) -> bool {
    use datafusion::sql::sqlparser::ast::visit_expressions;
    visit_expressions(statement, |e| match e {
        Expr::Function(f)
            if f.name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("set_config")) =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// `(SELECT x FROM … WHERE …)` to `(SELECT max(x) FROM … WHERE …)`, for a plain
/// single-item SELECT with no aggregate, grouping, DISTINCT or LIMIT.
fn aggregate_single_row(query: &mut Query) {
    use datafusion::sql::sqlparser::ast::GroupByExpr;
    const AGGREGATES: &[&str] = &[
        "max",
        "min",
        "count",
        "sum",
        "avg",
        "array_agg",
        "string_agg",
        "bool_and",
        "bool_or",
        "json_agg",
        "jsonb_agg",
        "every",
    ];
    if query.limit_clause.is_some() || query.fetch.is_some() {
        return;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let grouped = match &select.group_by {
        GroupByExpr::All(_) => true,
        GroupByExpr::Expressions(e, _) => !e.is_empty(),
    };
    if grouped
        || select.distinct.is_some()
        || select.having.is_some()
        || select.projection.len() != 1
    {
        return;
    }
    let (item, alias) = match &select.projection[0] {
        SelectItem::UnnamedExpr(e) => (e, None),
        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
        _ => return,
    };
    if let Expr::Function(f) = item
        && f.name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| AGGREGATES.contains(&i.value.to_ascii_lowercase().as_str()))
    {
        return;
    }
    let Some(wrapped) = parse_expr(&format!("max({item})")) else {
        return;
    };
    select.projection[0] = match alias {
        Some(alias) => SelectItem::ExprWithAlias {
            expr: wrapped,
            alias,
        },
        None => SelectItem::ExprWithAlias {
            alias: Ident::with_quote('"', column_name(item).unwrap_or_else(|| "?column?".into())),
            expr: wrapped,
        },
    };
}

/// True when every table the statement names is in pg_catalog or information_schema.
fn reads_only_system_catalogs(statement: &Statement) -> bool {
    let mut any = false;
    let mut only_system = true;
    let _ = visit_relations(statement, |name: &ObjectName| {
        any = true;
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
            .collect();
        let system = match parts.as_slice() {
            [table] => table.starts_with("pg_"),
            [.., schema, _] => schema == "pg_catalog" || schema == "information_schema",
            [] => false,
        };
        if !system {
            only_system = false;
        }
        ControlFlow::<()>::Continue(())
    });
    any && only_system
}

/// `'pg_catalog.array_in'::regproc`: the crate looks names up unqualified, and every
/// built-in object lives in pg_catalog, so the qualifier goes.
struct QualifiedRegLiterals;

impl VisitorMut for QualifiedRegLiterals {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::{Value, ValueWithSpan};
        if let Expr::Cast {
            expr: inner,
            data_type,
            ..
        } = expr
            && data_type
                .to_string()
                .to_ascii_lowercase()
                .starts_with("reg")
            && let Expr::Value(ValueWithSpan {
                value: Value::SingleQuotedString(s),
                ..
            }) = inner.as_mut()
            && let Some(rest) = s.strip_prefix("pg_catalog.")
        {
            *s = rest.to_string();
        }
        ControlFlow::Continue(())
    }
}

/// Aliases unnamed SELECT items with their PostgreSQL names, unique within the list.
struct UniqueNames;

impl VisitorMut for UniqueNames {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        let mut taken: HashSet<String> = select
            .projection
            .iter()
            .filter_map(|item| match item {
                SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
                _ => None,
            })
            .collect();
        for item in select.projection.iter_mut() {
            let SelectItem::UnnamedExpr(expr) = item else {
                continue;
            };
            let is_column = matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
            let name = column_name(expr).unwrap_or_else(|| "?column?".to_string());
            if is_column && taken.insert(name.clone()) {
                // A plain column keeps DataFusion's own (qualified) name.
                continue;
            }
            let mut unique = name.clone();
            let mut n = 2;
            while !taken.insert(unique.clone()) {
                unique = format!("{name}_{n}");
                n += 1;
            }
            let expr = std::mem::replace(
                expr,
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
            *item = SelectItem::ExprWithAlias {
                expr,
                alias: Ident::with_quote('"', unique),
            };
        }
        ControlFlow::Continue(())
    }
}

/// The SELECT whose item list names a query's columns (the leftmost one of a UNION).
pub fn first_select(query: &Query) -> Option<&Select> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::Select(select) => return Some(select),
            SetExpr::Query(q) => body = q.body.as_ref(),
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            _ => return None,
        }
    }
}

/// PostgreSQL's FigureColname: the name an expression gives its column, if any.
pub fn column_name(expr: &Expr) -> Option<String> {
    figure(expr).map(|(name, _)| name)
}

/// The name and its strength: 2 for a real name (column, function), 1 for a type
/// name from a cast, which an outer cast's type overrides (`'x'::regtype::oid` is
/// named `oid`).
fn figure(expr: &Expr) -> Option<(String, u8)> {
    let strong = |s: &str| Some((s.to_string(), 2));
    match expr {
        Expr::Identifier(i) => strong(&i.value),
        Expr::CompoundIdentifier(parts) => strong(&parts.last()?.value),
        Expr::Function(f) => strong(
            &f.name
                .0
                .last()?
                .to_string()
                .trim_matches('"')
                .to_ascii_lowercase(),
        ),
        Expr::Cast {
            expr,
            data_type,
            kind,
            ..
        } => {
            let inner = figure(expr);
            match (inner, kind) {
                (Some((name, 2)), _) => Some((name, 2)),
                (
                    _,
                    CastKind::Cast | CastKind::DoubleColon | CastKind::TryCast | CastKind::SafeCast,
                ) => Some((type_name(data_type), 1)),
            }
        }
        Expr::Nested(inner) => figure(inner),
        Expr::Case { .. } => strong("case"),
        Expr::Array(_) => strong("array"),
        Expr::Exists { .. } => strong("exists"),
        Expr::Subquery(q) => {
            let select = first_select(q)?;
            match select.projection.first()? {
                SelectItem::UnnamedExpr(e) => figure(e),
                SelectItem::ExprWithAlias { alias, .. } => strong(&alias.value),
                _ => None,
            }
        }
        Expr::Extract { .. } => strong("extract"),
        Expr::Substring { .. } => strong("substring"),
        Expr::Trim { .. } => strong("btrim"),
        Expr::Position { .. } => strong("position"),
        Expr::Overlay { .. } => strong("overlay"),
        Expr::Ceil { .. } => strong("ceil"),
        Expr::Floor { .. } => strong("floor"),
        _ => None,
    }
}

/// PostgreSQL's internal name of a type, as it names a cast column.
fn type_name(t: &SqlType) -> String {
    let text = t.to_string().to_ascii_lowercase();
    let base = text.split('(').next().unwrap_or(&text).trim().to_string();
    match base.as_str() {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double precision" | "float8" | "double" | "float" => "float8",
        "boolean" | "bool" => "bool",
        "character varying" | "varchar" => "varchar",
        "character" | "char" => "bpchar",
        "decimal" | "numeric" => "numeric",
        "timestamp with time zone" | "timestamptz" => "timestamptz",
        "timestamp without time zone" | "timestamp" => "timestamp",
        other => return other.to_string(),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::error::code;

    fn rewrite(sql: &str) -> String {
        Rewriter::new()
            .rewrite(&parse(sql).unwrap().remove(0), "u")
            .to_string()
    }

    #[test]
    fn unnamed_items_get_unique_postgres_names() {
        assert_eq!(
            rewrite("SELECT count(a), count(b), a, a, 1 + 1 FROM t"),
            "SELECT count(a) AS \"count\", count(b) AS \"count_2\", a, a AS \"a_2\", 1 + 1 AS \"?column?\" FROM t"
        );
        assert_eq!(
            rewrite("SELECT '1'::regtype::oid"),
            rewrite("SELECT '1'::regtype::oid AS \"oid\"")
        );
    }

    #[test]
    fn correlated_subqueries_over_data_are_left_alone() {
        let user = rewrite("SELECT (SELECT max(x) FROM u WHERE u.k = t.k) FROM t");
        assert!(user.contains("SELECT max(x) AS \"max\" FROM u"), "{user}");
        let catalog = rewrite(
            "SELECT (SELECT n.nspname FROM pg_namespace n WHERE n.oid = c.relnamespace) FROM pg_class c",
        );
        assert!(!catalog.contains("nspname FROM"), "{catalog}");
    }

    #[test]
    fn nesting_too_deep_is_a_clear_error() {
        let sql = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(parse(&sql).unwrap_err().code, code::STATEMENT_TOO_COMPLEX);
    }
}
