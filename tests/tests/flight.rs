//! Arrow Flight SQL through arrow-flight's own client: the handshake and bearer
//! tokens, statements, prepared statements with parameters, every metadata command
//! with the schema the specification defines, and errors as gRPC status codes.

use std::sync::Arc;

use amar_tests::shared_demo;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::metadata::{GetCatalogsBuilder, GetDbSchemasBuilder, GetTablesBuilder};
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables};
use datafusion::arrow::array::{Array, AsArray, Int16Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use futures::TryStreamExt;
use tonic::Code;
use tonic::transport::Channel;

async fn channel() -> Channel {
    let addr = shared_demo().flight_addr;
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("the Flight port accepts connections")
}

async fn client() -> FlightSqlServiceClient<Channel> {
    let mut client = FlightSqlServiceClient::new(channel().await);
    client
        .handshake("admin", "admin")
        .await
        .expect("admin logs in");
    client
}

async fn collect(
    client: &mut FlightSqlServiceClient<Channel>,
    info: arrow_flight::FlightInfo,
) -> Vec<RecordBatch> {
    let mut batches = vec![];
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("every endpoint has a ticket");
        let stream = client.do_get(ticket).await.expect("DoGet starts");
        batches.extend(stream.try_collect::<Vec<_>>().await.expect("DoGet streams"));
    }
    batches
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

fn code(e: &arrow_flight::error::FlightError) -> Code {
    match e {
        arrow_flight::error::FlightError::Tonic(status) => status.code(),
        arrow_flight::error::FlightError::Arrow(
            datafusion::arrow::error::ArrowError::IpcError(m),
        ) if m.contains("does not have valid authentication credentials") => Code::Unauthenticated,
        other => panic!("not a gRPC status: {other:?}"),
    }
}

#[tokio::test]
async fn a_statement_returns_arrow_with_its_types() {
    let mut client = client().await;
    let info = client
        .execute(
            "SELECT code, name_fa, name_en FROM insurance.provinces WHERE code IN (23, 30) ORDER BY code".into(),
            None,
        )
        .await
        .unwrap();
    let schema = info.clone().try_decode_schema().unwrap();
    assert_eq!(schema.field(0).data_type(), &DataType::Int16);
    let batches = collect(&mut client, info).await;
    let batch = datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let codes = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int16Array>()
        .unwrap();
    let names = batch
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(codes.values().to_vec(), vec![23, 30]);
    assert_eq!(names.value(0), "تهران");
    assert_eq!(names.value(1), "البرز");
}

#[tokio::test]
async fn the_same_query_gives_the_same_answer_as_pgwire() {
    let mut client = client().await;
    let sql = "SELECT count(*) AS n, sum(contribution) AS due FROM insurance.contributions WHERE province_code = 23";
    let info = client.execute(sql.into(), None).await.unwrap();
    let batches = collect(&mut client, info).await;
    let flight_n = batches[0].column(0).as_primitive::<Int64Type>().value(0);
    let pg = crate::support::admin().await;
    let pg_n: i64 = pg.query_one(sql, &[]).await.unwrap().get(0);
    assert_eq!(flight_n, pg_n);
    assert_eq!(batches[0].schema().field(0).name(), "n");
}

#[tokio::test]
async fn prepared_statements_take_parameters() {
    let mut client = client().await;
    let mut prepared = client
        .prepare(
            "SELECT count(*) AS n FROM insurance.contributions WHERE province_code = $1 AND period >= $2".into(),
            None,
        )
        .await
        .unwrap();
    let params = prepared.parameter_schema().unwrap().clone();
    assert_eq!(params.fields().len(), 2);
    assert_eq!(params.field(0).data_type(), &DataType::Int16);
    assert_eq!(params.field(1).data_type(), &DataType::Date32);
    for province in [23i16, 9] {
        let batch = RecordBatch::try_new(
            Arc::new(params.clone()),
            vec![
                Arc::new(Int16Array::from(vec![province])),
                Arc::new(datafusion::arrow::array::Date32Array::from(vec![19802])), // 2024-03-20
            ],
        )
        .unwrap();
        prepared.set_parameters(batch).unwrap();
        let info = prepared.execute().await.unwrap();
        let batches = collect(&mut client, info).await;
        let n = batches[0].column(0).as_primitive::<Int64Type>().value(0);
        let pg = crate::support::admin().await;
        let expected: i64 = pg
            .query_one(
                &format!("SELECT count(*) FROM insurance.contributions WHERE province_code = {province} AND period >= DATE '2024-03-20'"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, expected, "province {province}");
    }
    prepared.close().await.unwrap();
}

#[tokio::test]
async fn metadata_commands_answer_in_the_specified_schemas() {
    let mut client = client().await;

    let info = client.get_catalogs().await.unwrap();
    assert_eq!(
        info.clone().try_decode_schema().unwrap(),
        *GetCatalogsBuilder::new().schema()
    );
    let batches = collect(&mut client, info).await;
    assert_eq!(batches[0].column(0).as_string::<i32>().value(0), "amar");

    let query = CommandGetDbSchemas {
        catalog: None,
        db_schema_filter_pattern: Some("ins%".into()),
    };
    let info = client.get_db_schemas(query.clone()).await.unwrap();
    assert_eq!(
        info.clone().try_decode_schema().unwrap(),
        *GetDbSchemasBuilder::from(query).schema()
    );
    let batches = collect(&mut client, info).await;
    let schemas = batches[0].column(1).as_string::<i32>();
    assert_eq!(
        (0..schemas.len())
            .map(|i| schemas.value(i))
            .collect::<Vec<_>>(),
        vec!["insurance"]
    );

    for include_schema in [false, true] {
        let query = CommandGetTables {
            catalog: Some("amar".into()),
            db_schema_filter_pattern: Some("pension".into()),
            table_name_filter_pattern: None,
            table_types: vec!["TABLE".into()],
            include_schema,
        };
        let info = client.get_tables(query.clone()).await.unwrap();
        assert_eq!(
            info.clone().try_decode_schema().unwrap(),
            *GetTablesBuilder::from(query).schema()
        );
        let batches = collect(&mut client, info).await;
        let names = batches[0].column(2).as_string::<i32>();
        assert_eq!(
            (0..names.len()).map(|i| names.value(i)).collect::<Vec<_>>(),
            vec!["payments", "pensioners"]
        );
        if include_schema {
            let ipc = batches[0].column(4).as_binary::<i32>().value(0).to_vec();
            let decoded =
                datafusion::arrow::ipc::convert::try_schema_from_ipc_buffer(&ipc).unwrap();
            assert!(decoded.field_with_name("amount").is_ok());
        }
    }

    let info = client.get_table_types().await.unwrap();
    let batches = collect(&mut client, info).await;
    assert_eq!(
        batches[0].schema().field(0),
        &Field::new("table_type", DataType::Utf8, false)
    );
    assert!(rows(&batches) >= 2);

    let info = client
        .get_primary_keys(arrow_flight::sql::CommandGetPrimaryKeys {
            catalog: None,
            db_schema: Some("insurance".into()),
            table: "contributions".into(),
        })
        .await
        .unwrap();
    let batches = collect(&mut client, info).await;
    assert_eq!(batches[0].column(3).as_string::<i32>().value(0), "id");
    assert_eq!(
        batches[0].column(4).as_string::<i32>().value(0),
        "contributions_pkey"
    );

    let info = client.get_sql_info(vec![]).await.unwrap();
    assert!(rows(&collect(&mut client, info).await) > 5);
    let info = client
        .get_xdbc_type_info(arrow_flight::sql::CommandGetXdbcTypeInfo { data_type: None })
        .await
        .unwrap();
    assert!(rows(&collect(&mut client, info).await) >= 10);
}

#[tokio::test]
async fn errors_are_grpc_status_codes_with_pgwire_messages() {
    let mut client = client().await;
    let e = client
        .execute("SELECT * FROM insurance.nowhere".into(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::NotFound);
    match &e {
        arrow_flight::error::FlightError::Tonic(status) => {
            assert_eq!(
                status.message(),
                "relation \"insurance.nowhere\" does not exist"
            );
            assert_eq!(status.metadata().get("x-amar-sqlstate").unwrap(), "42P01");
        }
        other => panic!("{other:?}"),
    }
    let e = client.execute("SELEC 1".into(), None).await.unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument);
    let e = client
        .execute("DROP TABLE insurance.provinces".into(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::FailedPrecondition);
    // Still serving.
    let info = client
        .execute("SELECT 1 AS one".into(), None)
        .await
        .unwrap();
    assert_eq!(rows(&collect(&mut client, info).await), 1);
}

#[tokio::test]
async fn wrong_passwords_and_bad_tokens_are_unauthenticated() {
    let mut anonymous = FlightSqlServiceClient::new(channel().await);
    let e = anonymous.handshake("admin", "wrong").await.unwrap_err();
    assert_eq!(code(&e), Code::Unauthenticated);
    let e = anonymous
        .execute("SELECT 1".into(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::Unauthenticated);
    anonymous.set_token("forged-token".into());
    let e = anonymous
        .execute("SELECT 1".into(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::Unauthenticated);
}

#[tokio::test]
async fn a_large_result_streams_in_many_batches() {
    let mut client = client().await;
    let info = client
        .execute(
            "SELECT id, wage, period FROM insurance.contributions".into(),
            None,
        )
        .await
        .unwrap();
    let batches = collect(&mut client, info).await;
    let pg = crate::support::admin().await;
    let expected: i64 = pg
        .query_one("SELECT count(*) FROM insurance.contributions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows(&batches) as i64, expected);
    assert!(
        batches.len() > 1,
        "sent as it was produced, not as one batch"
    );
}

/// GetTables and GetDbSchemas as restricted users list only what each may read;
/// statements are refused with PermissionDenied and filtered as over pgwire.
#[tokio::test]
async fn metadata_commands_show_each_user_only_what_they_may_read() {
    async fn tables_of(user: &str) -> Vec<String> {
        let mut client = FlightSqlServiceClient::new(channel().await);
        client
            .handshake(user, user)
            .await
            .expect("demo user logs in");
        let info = client
            .get_tables(CommandGetTables {
                catalog: None,
                db_schema_filter_pattern: None,
                table_name_filter_pattern: None,
                table_types: vec![],
                include_schema: false,
            })
            .await
            .unwrap();
        let batches = collect(&mut client, info).await;
        let mut out = vec![];
        for b in &batches {
            let schemas = b.column(1).as_string::<i32>();
            let names = b.column(2).as_string::<i32>();
            for i in 0..b.num_rows() {
                out.push(format!("{}.{}", schemas.value(i), names.value(i)));
            }
        }
        out
    }
    let auditor = tables_of("auditor").await;
    assert!(
        auditor.contains(&"amar.query_log".to_string()),
        "{auditor:?}"
    );
    assert!(
        !auditor.iter().any(|t| t.starts_with("insurance.")
            || t.starts_with("pension.")
            || t.starts_with("health.")),
        "{auditor:?}"
    );
    let tehran = tables_of("tehran").await;
    assert!(
        tehran.contains(&"insurance.contributions".to_string()),
        "{tehran:?}"
    );
    assert!(
        !tehran.contains(&"amar.query_log".to_string()),
        "{tehran:?}"
    );

    let mut client = FlightSqlServiceClient::new(channel().await);
    client.handshake("auditor", "auditor").await.unwrap();
    let schemas = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .unwrap();
    let batches = collect(&mut client, schemas).await;
    let names: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let c = b.column(1).as_string::<i32>();
            (0..c.len())
                .map(|i| c.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!names.contains(&"insurance".to_string()), "{names:?}");
    let e = client
        .execute("SELECT count(*) FROM insurance.contributions".into(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::PermissionDenied);

    let mut tehran_client = FlightSqlServiceClient::new(channel().await);
    tehran_client.handshake("tehran", "tehran").await.unwrap();
    let info = tehran_client
        .execute(
            "SELECT DISTINCT province_code FROM insurance.contributions".into(),
            None,
        )
        .await
        .unwrap();
    let batches = collect(&mut tehran_client, info).await;
    assert_eq!(rows(&batches), 1);
    let province = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int16Array>()
        .unwrap();
    assert_eq!(province.value(0), 23);

    // Metadata commands are in the audit log like statements, with the rows returned.
    let (auditor_pg, connection) = tokio_postgres::connect(
        &shared_demo().conn_str("auditor", "auditor"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let logged = auditor_pg
        .query(
            "SELECT protocol, rows, decision FROM amar.query_log \
             WHERE user_name = 'tehran' AND statement LIKE '-- Flight SQL GetTables %'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        !logged.is_empty(),
        "tehran's GetTables is not in the audit log"
    );
    let protocol: String = logged[0].get(0);
    let rows: i64 = logged[0].get(1);
    let decision: String = logged[0].get(2);
    assert_eq!(protocol, "flight");
    assert_eq!(rows as usize, tehran.len());
    assert_eq!(decision, "allowed");
}

/// Results go out in the plain Arrow types every client reads (`Utf8`), not the
/// view types DataFusion reads Parquet into, unless the call asks for views with
/// `x-amar-arrow-view-types: true`; the values are the same either way.
#[tokio::test]
async fn results_are_plain_utf8_unless_the_client_asks_for_views() {
    let sql = "SELECT pensioner_id, national_id, first_name, last_name FROM pension.pensioners ORDER BY pensioner_id LIMIT 500";
    let text_types = |schema: &datafusion::arrow::datatypes::Schema| {
        schema.fields()[1..]
            .iter()
            .map(|f| f.data_type().clone())
            .collect::<Vec<_>>()
    };

    let mut plain = client().await;
    let info = plain.execute(sql.into(), None).await.unwrap();
    assert_eq!(
        text_types(&info.clone().try_decode_schema().unwrap()),
        vec![DataType::Utf8; 3],
        "GetFlightInfo announces plain strings"
    );
    let plain_batches = collect(&mut plain, info).await;
    assert!(!plain_batches.is_empty());
    for batch in &plain_batches {
        assert_eq!(text_types(&batch.schema()), vec![DataType::Utf8; 3]);
    }
    let prepared = plain.prepare(sql.into(), None).await.unwrap();
    assert_eq!(
        text_types(&prepared.dataset_schema().unwrap().clone()),
        vec![DataType::Utf8; 3],
        "a prepared statement announces plain strings"
    );

    let mut views = client().await;
    views.set_header("x-amar-arrow-view-types", "true");
    let info = views.execute(sql.into(), None).await.unwrap();
    assert_eq!(
        text_types(&info.clone().try_decode_schema().unwrap()),
        vec![DataType::Utf8View; 3],
        "asked for, the engine's view types are kept"
    );
    let view_batches = collect(&mut views, info).await;

    let as_text = |batches: &[RecordBatch]| -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| {
                let b = datafusion::arrow::compute::cast(b.column(2), &DataType::Utf8).unwrap();
                let b = b.as_string::<i32>().clone();
                (0..b.len()).map(move |i| b.value(i).to_string())
            })
            .collect()
    };
    assert_eq!(rows(&plain_batches), 500);
    assert_eq!(as_text(&plain_batches), as_text(&view_batches));
}

/// GetFlightInfo plans a statement and its ticket names that plan, so DoGet runs it
/// without planning again. The ticket may be fetched again (as Flight allows), only
/// by the session it was planned for; a ticket holding a statement's text, as some
/// clients build, still runs.
#[tokio::test]
async fn a_statement_is_planned_once_and_its_ticket_is_its_sessions() {
    let mut client = client().await;
    let info = client
        .execute(
            "SELECT code FROM insurance.provinces WHERE code IN (23, 30)".into(),
            None,
        )
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    assert!(
        std::str::from_utf8(&ticket.ticket).is_err() || !ticket.ticket.starts_with(b"SELECT"),
        "the ticket names a plan, not the text"
    );
    for _ in 0..2 {
        let batches: Vec<RecordBatch> = client
            .do_get(ticket.clone())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(rows(&batches), 2);
    }

    let mut other = self::client().await;
    let e = match other.do_get(ticket.clone()).await {
        Err(e) => e,
        Ok(stream) => stream.try_collect::<Vec<_>>().await.unwrap_err(),
    };
    assert_eq!(code(&e), Code::NotFound, "{e:?}");

    let mut forged = ticket.ticket.to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    let e = match client.do_get(arrow_flight::Ticket::new(forged)).await {
        Err(e) => e,
        Ok(stream) => stream.try_collect::<Vec<_>>().await.unwrap_err(),
    };
    assert_eq!(code(&e), Code::NotFound, "{e:?}");

    use arrow_flight::sql::ProstMessageExt;
    use prost::Message;
    let text = arrow_flight::sql::TicketStatementQuery {
        statement_handle: "SELECT 1 AS one".as_bytes().to_vec().into(),
    };
    let batches: Vec<RecordBatch> = client
        .do_get(arrow_flight::Ticket::new(text.as_any().encode_to_vec()))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows(&batches), 1);
}
