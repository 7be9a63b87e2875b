//! How deeply a statement's expressions can nest, bounded before it is parsed.
//!
//! The parser builds operator chains (`1+1+…+1`, `a AND b AND …`) in a loop, so a
//! statement of a few kilobytes becomes an expression tree thousands of levels deep,
//! and every later step that walks the tree recursively (the rewrite rules, the
//! planner, policy enforcement, the optimizer, the SQL written for a federated
//! source, physical planning, evaluation, even dropping the tree) uses stack in
//! proportion. A tree deep enough overflows a thread's stack, and Rust aborts the
//! whole process. PostgreSQL stops such statements with 54001 "stack depth limit
//! exceeded"; so does Amar, but before any tree is built: [`check`] reads the tokens
//! and bounds the depth of the tree they can make.
//!
//! The bound over-counts, never under-counts: every operator token (and every
//! keyword operator such as AND, OR, NOT, IS, LIKE, BETWEEN, IN) adds a level to the
//! run it stands in; a comma, a clause keyword or a statement's end starts a new
//! run; an opening parenthesis, bracket or CASE starts a nested run whose levels add
//! to those around it. What parentheses alone nest is the parser's own recursion
//! limit ([`super::sql`]).

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::error::{SqlError, code};

/// The deepest expression a statement may hold. Every step of the engine is tested
/// at this depth on the server's threads (`runtime::STACK_BYTES`), with room to spare.
pub const MAX_EXPRESSION_DEPTH: usize = 1_000;

/// One nesting level of the token stream: the depth at which it opened, and the
/// operators seen in its current run.
#[derive(Clone, Copy)]
struct Level {
    base: usize,
    run: usize,
}

/// Refuses (54001) a statement whose expressions could nest deeper than `limit`.
pub fn check(tokens: &[TokenWithSpan], limit: usize) -> Result<(), SqlError> {
    let mut levels = vec![Level { base: 0, run: 0 }];
    let mut deepest = 0usize;
    for token in tokens {
        let top = levels.len() - 1;
        match &token.token {
            Token::LParen | Token::LBracket | Token::LBrace => open(&mut levels),
            Token::RParen | Token::RBracket | Token::RBrace => close(&mut levels),
            Token::Comma | Token::SemiColon => levels[top].run = 0,
            Token::Word(word) if word.quote_style.is_none() => match word.keyword {
                Keyword::CASE => open(&mut levels),
                Keyword::END => close(&mut levels),
                k if starts_run(k) => levels[top].run = 0,
                k if is_operator(k) => levels[top].run += 1,
                _ => {}
            },
            t if is_operand(t) => {}
            // Every other token is an operator: + - * / || :: = <> ~ -> @> …
            _ => levels[top].run += 1,
        }
        let top = levels[levels.len() - 1];
        deepest = deepest.max(top.base + top.run);
        if deepest > limit {
            return Err(too_deep(limit));
        }
    }
    Ok(())
}

/// The error PostgreSQL gives for a statement too deep to evaluate.
pub fn too_deep(limit: usize) -> SqlError {
    let mut e = SqlError::new(
        code::STATEMENT_TOO_COMPLEX,
        "stack depth limit exceeded: the statement's expressions nest too deeply",
    );
    e.hint = Some(format!(
        "Amar evaluates expressions up to {limit} levels deep; write long chains of AND, OR or + as IN lists, sums over a VALUES list, or several statements"
    ));
    e
}

fn open(levels: &mut Vec<Level>) {
    let top = levels[levels.len() - 1];
    levels.push(Level {
        base: top.base + top.run + 1,
        run: 0,
    });
}

fn close(levels: &mut Vec<Level>) {
    // An unbalanced closer is the parser's to report.
    if levels.len() > 1 {
        levels.pop();
    }
}

/// Tokens that are values or names, not operators.
fn is_operand(token: &Token) -> bool {
    matches!(
        token,
        Token::EOF
            | Token::Word(_)
            | Token::Number(..)
            | Token::Char(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::TripleSingleQuotedByteStringLiteral(_)
            | Token::TripleDoubleQuotedByteStringLiteral(_)
            | Token::SingleQuotedRawStringLiteral(_)
            | Token::DoubleQuotedRawStringLiteral(_)
            | Token::TripleSingleQuotedRawStringLiteral(_)
            | Token::TripleDoubleQuotedRawStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::QuoteDelimitedStringLiteral(_)
            | Token::NationalQuoteDelimitedStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::Whitespace(_)
            | Token::Period
            | Token::Placeholder(_)
    )
}

/// Keywords that join two expressions into one (or negate one).
fn is_operator(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::AND
            | Keyword::OR
            | Keyword::XOR
            | Keyword::NOT
            | Keyword::IS
            | Keyword::LIKE
            | Keyword::ILIKE
            | Keyword::SIMILAR
            | Keyword::BETWEEN
            | Keyword::IN
            | Keyword::COLLATE
            | Keyword::AT
            | Keyword::OVERLAPS
            | Keyword::DIV
            | Keyword::ESCAPE
    )
}

/// Keywords after which a new, independent expression begins.
fn starts_run(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::SELECT
            | Keyword::FROM
            | Keyword::WHERE
            | Keyword::GROUP
            | Keyword::HAVING
            | Keyword::ORDER
            | Keyword::LIMIT
            | Keyword::OFFSET
            | Keyword::FETCH
            | Keyword::UNION
            | Keyword::EXCEPT
            | Keyword::INTERSECT
            | Keyword::WHEN
            | Keyword::THEN
            | Keyword::ELSE
            | Keyword::ON
            | Keyword::USING
            | Keyword::JOIN
            | Keyword::WINDOW
            | Keyword::QUALIFY
            | Keyword::VALUES
            | Keyword::WITH
            | Keyword::RETURNING
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn depth_ok(sql: &str, limit: usize) -> bool {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        check(&tokens, limit).is_ok()
    }

    fn chain(term: &str, op: &str, n: usize) -> String {
        vec![term; n].join(op)
    }

    #[test]
    fn long_operator_chains_are_bounded_by_their_length() {
        let plus = format!("SELECT {}", chain("1", "+", 101));
        assert!(depth_ok(&plus, 100));
        assert!(!depth_ok(&plus, 99));
        let and = format!("SELECT 1 WHERE {}", chain("a = 1", " AND ", 60));
        assert!(!depth_ok(&and, 100), "60 ANDs and 60 = make 119 levels");
        assert!(depth_ok(&and, 200));
        let casts = format!("SELECT 1{}", "::int".repeat(150));
        assert!(!depth_ok(&casts, 100));
        let nots = format!("SELECT {} true", "NOT ".repeat(150));
        assert!(!depth_ok(&nots, 100));
    }

    #[test]
    fn nesting_adds_the_levels_around_it() {
        // Each level of parentheses holds a short chain: 3 levels apiece.
        let mut nested = "x".to_string();
        for _ in 0..40 {
            nested = format!("(x + x + {nested})");
        }
        assert!(!depth_ok(&format!("SELECT {nested}"), 100));
        assert!(depth_ok(&format!("SELECT {nested}"), 130));
        let mut cases = "1".to_string();
        for _ in 0..120 {
            cases = format!("CASE WHEN a THEN {cases} END");
        }
        assert!(!depth_ok(&format!("SELECT {cases}"), 100));
    }

    #[test]
    fn wide_statements_are_not_deep() {
        let list = (0..50_000).map(|i| i.to_string()).collect::<Vec<_>>();
        let sql = format!(
            "SELECT a + 1, b * 2 FROM t WHERE a IN ({}) AND b = 2 ORDER BY a",
            list.join(", ")
        );
        assert!(depth_ok(&sql, 10));
        let columns = (0..5_000)
            .map(|i| format!("c{i} + 1 AS x{i}"))
            .collect::<Vec<_>>();
        assert!(depth_ok(&format!("SELECT {}", columns.join(", ")), 10));
        // Operators inside strings and quoted names are not operators.
        assert!(depth_ok(
            &format!("SELECT '{}' AS \"a+b+c\"", "+".repeat(5000)),
            10
        ));
    }
}
