//! Connecting to test servers with tokio-postgres.

use amar_tests::{TestServer, shared_demo};
use tokio_postgres::{Client, NoTls};

pub async fn connect(
    server: &TestServer,
    user: &str,
    password: &str,
) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) =
        tokio_postgres::connect(&server.conn_str(user, password), NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// An admin connection to the shared demo server.
pub async fn admin() -> Client {
    connect(shared_demo(), "admin", "admin")
        .await
        .expect("admin connects to the demo")
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}
