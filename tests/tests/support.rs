//! Connecting to test servers with tokio-postgres.

use amar_tests::{TestServer, shared_demo};
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

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

/// A Flight SQL client of the shared demo server, signed in as a demo user.
pub async fn flight_as(
    user: &str,
) -> arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel> {
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", shared_demo().flight_addr))
            .expect("a valid URI")
            .connect()
            .await
            .expect("the Flight port accepts connections");
    let mut client = arrow_flight::sql::client::FlightSqlServiceClient::new(channel);
    client
        .handshake(user, user)
        .await
        .expect("demo user logs in over Flight");
    client
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

/// Every cell of a statement's answer, one line each: an EXPLAIN's plan as text.
pub async fn plan_text(client: &Client, sql: &str) -> String {
    texts(client, sql)
        .await
        .into_iter()
        .flat_map(|r| r.into_iter().flatten())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every row of a simple query, as text (what a text-protocol client sees).
pub async fn texts(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// Expected rows, every value non-NULL, in the shape [`texts`] returns.
pub fn text_rows(rows: &[&[&str]]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .map(|r| r.iter().map(|v| Some(v.to_string())).collect())
        .collect()
}

/// One HTTP/1.1 GET: the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: amar\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The value of one metric line (`name{labels} value`).
pub fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// One metric of a server now.
pub async fn scrape(server: &TestServer, line_start: &str) -> Option<f64> {
    metric(&http_get(server.http_addr, "/metrics").await.1, line_start)
}

/// The gRPC status of a Flight call that failed.
pub fn status(e: arrow_flight::error::FlightError) -> tonic::Status {
    match e {
        arrow_flight::error::FlightError::Tonic(status) => *status,
        other => panic!("not a gRPC status: {other:?}"),
    }
}

/// A statement's batches over Flight, or the status it failed with, whether planning
/// or streaming failed.
pub async fn flight_run(
    client: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    sql: &str,
) -> Result<Vec<datafusion::arrow::array::RecordBatch>, tonic::Status> {
    let info = client
        .execute(sql.to_string(), None)
        .await
        .map_err(status)?;
    let mut batches = vec![];
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("every endpoint has a ticket");
        let stream = client.do_get(ticket).await.map_err(status)?;
        batches.extend(
            futures::TryStreamExt::try_collect::<Vec<_>>(stream)
                .await
                .map_err(status)?,
        );
    }
    Ok(batches)
}
