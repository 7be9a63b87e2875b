//! Npgsql's type-loading batch (what Power BI's PostgreSQL connector sends after
//! connecting), verbatim: it must plan and list the built-in types.

use tokio_postgres::SimpleQueryMessage;

use crate::support::admin;

#[tokio::test]
async fn npgsql_type_loading_lists_builtin_types() {
    let client = admin().await;
    let messages = client
        .simple_query(include_str!("npgsql_types.sql"))
        .await
        .expect("the whole batch runs");
    let types: Vec<(String, String)> = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) if r.len() == 6 => Some((
                r.get(2).unwrap_or_default().to_string(),
                r.get(3).unwrap_or_default().to_string(),
            )),
            _ => None,
        })
        .collect();
    for (name, kind) in [
        ("int4", "b"),
        ("text", "b"),
        ("numeric", "b"),
        ("timestamptz", "b"),
        ("_int4", "a"),
    ] {
        assert!(
            types.contains(&(name.to_string(), kind.to_string())),
            "{name} ({kind}) missing: {types:?}"
        );
    }
}
