//! SCRAM-SHA-256 against the users file: the right password gets in, anything else
//! gets 28P01, and users added while the server runs can log in.

use std::collections::BTreeMap;

use amar_policies::UsersFile;
use amar_tests::shared_demo;

use crate::support::{connect, sqlstate};

#[tokio::test]
async fn wrong_password_and_unknown_user_get_28p01() {
    let server = shared_demo();
    let e = connect(server, "admin", "wrong").await.unwrap_err();
    assert_eq!(sqlstate(&e), "28P01");
    let e = connect(server, "nobody", "admin").await.unwrap_err();
    assert_eq!(
        sqlstate(&e),
        "28P01",
        "an unknown user looks like a wrong password"
    );
    assert!(connect(server, "admin", "admin").await.is_ok());
}

#[tokio::test]
async fn users_added_and_disabled_while_running_take_effect() {
    let server = shared_demo();
    let path = server.data_dir.join("users.toml");
    let name = format!("analyst_{}", std::process::id());
    let mut users = UsersFile::load(&path).unwrap();
    users
        .add(
            &name,
            vec!["analyst".into()],
            BTreeMap::from([("province_code".into(), "23".into())]),
            "s3cret-پسورد",
        )
        .unwrap();
    users.save().unwrap();
    let client = connect(server, &name, "s3cret-پسورد")
        .await
        .expect("the new user logs in");
    let n: i64 = client
        .query_one("SELECT 1::bigint", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let mut users = UsersFile::load(&path).unwrap();
    users.disable(&name).unwrap();
    users.save().unwrap();
    let e = connect(server, &name, "s3cret-پسورد").await.unwrap_err();
    assert_eq!(sqlstate(&e), "28P01");
}

#[tokio::test]
async fn the_users_file_holds_no_passwords() {
    let server = shared_demo();
    let text = std::fs::read_to_string(server.data_dir.join("users.toml")).unwrap();
    assert!(text.contains("SCRAM-SHA-256$4096:"));
    assert!(!text.contains("password = \"admin\""));
}

#[tokio::test]
async fn unknown_database_is_refused() {
    let server = shared_demo();
    let conn = format!(
        "host={} port={} user=admin password=admin dbname=postgres",
        server.pg_addr.ip(),
        server.pg_addr.port()
    );
    let e = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .err()
        .expect("refused");
    assert_eq!(sqlstate(&e), "3D000");
}
