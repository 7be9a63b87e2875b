//! Drop folders: CSV, Parquet and Excel files dropped by departments become tables or
//! new rows of a table; a malformed file is rejected whole and reported in
//! `amar.sources`; a file sent again replaces its rows; nothing is doubled or lost
//! across restarts, even when the list of files taken in is lost.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use amar_tests::Fixture;
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use tokio_postgres::Client;

use crate::support::{connect, sqlstate, texts};

/// Writes `path` and dates it a minute back, so that the folder scan takes it now
/// (files younger than two seconds are left alone while they may still be written).
fn settled(path: &Path) {
    let file = std::fs::File::options().append(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    settled(path);
}

/// One contributions row: province, Jalali period, amount, paid-on (y, m, d).
type Contribution<'a> = (&'a str, &'a str, f64, (u16, u8, u8));

/// A contributions workbook.
fn contributions_xlsx(path: &Path, rows: &[Contribution<'_>]) {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (c, h) in ["province", "period", "amount", "paid_on"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (i, (province, period, amount, (y, m, d))) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        sheet.write_string(r, 0, *province).unwrap();
        sheet.write_string(r, 1, *period).unwrap();
        sheet.write_number(r, 2, *amount).unwrap();
        sheet
            .write_datetime_with_format(r, 3, ExcelDateTime::from_ymd(*y, *m, *d).unwrap(), &date)
            .unwrap();
    }
    book.save(path).unwrap();
    settled(path);
}

fn payments_parquet(path: &Path, ids: std::ops::Range<i64>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("branch", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(StringArray::from_iter_values(
                ids.map(|i| format!("شعبه {i}")),
            )),
        ],
    )
    .unwrap();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    settled(path);
}

/// Files for a server with one drop folder, `drop/`, and one admin, `stats`.
fn fixture() -> Fixture {
    let fixture = Fixture::new().admin("stats", "pw").config(
        r#"[[source]]
name = "provinces"
kind = "drop"
path = "drop"
refresh = "1s"
append = { contributions = "contributions_*" }"#,
    );
    std::fs::create_dir(fixture.path("drop")).unwrap();
    fixture
}

async fn one(client: &Client, sql: &str) -> String {
    texts(client, sql).await[0][0].clone().unwrap_or_default()
}

/// Waits until `sql` returns `want` in its first cell.
async fn until(client: &Client, sql: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = one(client, sql).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: still {got}, want {want}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

const CONTRIBUTIONS: &str = "SELECT count(*) FROM provinces.contributions";
const SKIPPED: &str = "SELECT coalesce(skipped, '') FROM amar.sources WHERE name = 'provinces'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_files_become_tables_and_rows_and_bad_ones_are_rejected_whole() {
    let fixture = fixture();
    let drop = fixture.path("drop");
    write(
        &drop.join("claims.csv"),
        "id,province,name_fa,amount\n1,23,علی رضایی,100.5\n2,23,زهرا کریمی,200\n3,11,مهدی,50\n",
    );
    contributions_xlsx(
        &drop.join("contributions_1403-01.xlsx"),
        &[
            ("23", "1403-01", 1500.0, (2024, 3, 25)),
            ("11", "1403-01", 700.0, (2024, 4, 1)),
        ],
    );
    contributions_xlsx(
        &drop.join("contributions_1403-02.xlsx"),
        &[("23", "1403-02", 1600.0, (2024, 4, 25))],
    );
    payments_parquet(&drop.join("payments.parquet"), 0..1000);
    // Malformed: a line with a field too many; a spreadsheet that is not one.
    write(&drop.join("broken.csv"), "id,amount\n1,10\n2,20,99\n3,30\n");
    write(&drop.join("ledger.xlsx"), "this is not a workbook");
    // Still being written (a hidden name), and a kind of file the folder ignores.
    std::fs::write(drop.join(".claims_1403.csv.tmp"), "id\n1\n").unwrap();
    std::fs::write(drop.join("readme.txt"), "notes").unwrap();

    let server = fixture.try_start().expect("the server starts");
    let amar = connect(&server, "stats", "pw").await.unwrap();

    let tables = texts(
        &amar,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'provinces' ORDER BY 1",
    )
    .await;
    assert_eq!(
        tables,
        vec![
            vec![Some("claims".to_string())],
            vec![Some("contributions".to_string())],
            vec![Some("payments".to_string())],
        ]
    );
    assert_eq!(
        texts(
            &amar,
            "SELECT name_fa, amount FROM provinces.claims ORDER BY id"
        )
        .await,
        vec![
            vec![Some("علی رضایی".into()), Some("100.5".into())],
            vec![Some("زهرا کریمی".into()), Some("200".into())],
            vec![Some("مهدی".into()), Some("50".into())],
        ]
    );
    // Two workbooks, one table; Excel dates arrive as dates, amounts as numbers.
    assert_eq!(one(&amar, CONTRIBUTIONS).await, "3");
    assert_eq!(
        texts(
            &amar,
            "SELECT province, sum(amount), min(paid_on)::text FROM provinces.contributions GROUP BY 1 ORDER BY 1"
        )
        .await,
        vec![
            vec![Some("11".into()), Some("700".into()), Some("2024-04-01".into())],
            vec![Some("23".into()), Some("3100".into()), Some("2024-03-25".into())],
        ]
    );
    assert_eq!(
        one(
            &amar,
            "SELECT count(DISTINCT branch) FROM provinces.payments"
        )
        .await,
        "1000"
    );
    // Rejected files are not tables, and amar.sources says which and why.
    let e = amar
        .simple_query("SELECT * FROM provinces.broken")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P01");
    let skipped = one(&amar, SKIPPED).await;
    assert!(skipped.contains("broken.csv: "), "{skipped}");
    assert!(
        skipped.contains("line"),
        "the CSV error says where: {skipped}"
    );
    assert!(
        skipped.contains("ledger.xlsx: not a readable spreadsheet"),
        "{skipped}"
    );
    assert_eq!(
        one(
            &amar,
            "SELECT snapshot_rows FROM amar.sources WHERE name = 'provinces'"
        )
        .await,
        "1006"
    );

    // A new workbook while running: new rows of the same table.
    contributions_xlsx(
        &drop.join("contributions_1403-03.xlsx"),
        &[
            ("23", "1403-03", 1700.0, (2024, 5, 25)),
            ("11", "1403-03", 800.0, (2024, 5, 26)),
        ],
    );
    until(&amar, CONTRIBUTIONS, "5").await;

    // A workbook whose amounts are text cannot join the table: rejected whole, none
    // of its rows appear, and the message names the column and types.
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["province", "period", "amount", "paid_on"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    sheet.write_string(1, 0, "23").unwrap();
    sheet.write_string(1, 1, "1403-04").unwrap();
    sheet.write_number(1, 2, 10.0).unwrap();
    sheet.write_string(1, 3, "2024-06-01").unwrap();
    sheet.write_string(2, 0, "23").unwrap();
    sheet.write_string(2, 1, "1403-04").unwrap();
    sheet.write_string(2, 2, "ده هزار").unwrap();
    sheet.write_string(2, 3, "2024-06-02").unwrap();
    let bad = drop.join("contributions_1403-04.xlsx");
    book.save(&bad).unwrap();
    settled(&bad);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let skipped = one(&amar, SKIPPED).await;
        if skipped.contains("contributions_1403-04.xlsx") {
            assert!(skipped.contains("column \"amount\""), "{skipped}");
            break;
        }
        assert!(Instant::now() < deadline, "not rejected: {skipped}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(one(&amar, CONTRIBUTIONS).await, "5");

    // The same file sent again, corrected: its rows are replaced, not added.
    write(
        &drop.join("claims.csv"),
        "id,province,name_fa,amount\n1,23,علی رضایی,100.5\n2,23,زهرا کریمی,250\n",
    );
    until(&amar, "SELECT count(*) FROM provinces.claims", "2").await;
    assert_eq!(
        one(&amar, "SELECT sum(amount) FROM provinces.claims").await,
        "350.5"
    );
    drop_client(amar);
    server.stop();

    // Restarted: everything is still there, nothing is taken in twice.
    let server = fixture.try_start().expect("the server starts");
    let amar = connect(&server, "stats", "pw").await.unwrap();
    assert_eq!(one(&amar, CONTRIBUTIONS).await, "5");
    assert_eq!(
        one(&amar, "SELECT count(*) FROM provinces.claims").await,
        "2"
    );
    drop_client(amar);
    server.stop();

    // The list of files taken in is lost (a crash between a copy and the list):
    // every file is read again and lands on its earlier copy — still no doubles.
    let store = fixture.path("data").join("drop").join("provinces");
    std::fs::remove_file(store.join("manifest.json")).unwrap();
    let server = fixture.try_start().expect("the server starts");
    let amar = connect(&server, "stats", "pw").await.unwrap();
    assert_eq!(one(&amar, CONTRIBUTIONS).await, "5");
    assert_eq!(
        one(&amar, "SELECT count(*) FROM provinces.claims").await,
        "2"
    );
    assert_eq!(
        one(&amar, "SELECT count(*) FROM provinces.payments").await,
        "1000"
    );
    let skipped = one(&amar, SKIPPED).await;
    assert!(skipped.contains("broken.csv"), "{skipped}");
    drop_client(amar);
    server.stop();
}

fn drop_client(client: Client) {
    std::mem::drop(client);
}

/// Facts about a Parquet file's layout: the values of column `key` in file order,
/// whether it has a page index, and which columns carry a bloom filter.
pub fn layout(path: &Path, key: &str) -> (Vec<i64>, bool, Vec<String>) {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use datafusion::parquet::file::reader::FileReader;
    use datafusion::parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};
    let reader = SerializedFileReader::new_with_options(
        std::fs::File::open(path).unwrap(),
        ReadOptionsBuilder::new().with_page_index().build(),
    )
    .unwrap();
    let meta = reader.metadata();
    let indexed = meta.column_index().is_some() && meta.offset_index().is_some();
    let schema = meta.file_metadata().schema_descr();
    let mut bloom: Vec<String> = (0..schema.num_columns())
        .filter(|c| {
            meta.row_groups()
                .iter()
                .all(|rg| rg.column(*c).bloom_filter_offset().is_some())
        })
        .map(|c| schema.column(c).name().to_string())
        .collect();
    bloom.sort();
    let mut values = vec![];
    for batch in ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
    {
        let batch = batch.unwrap();
        let column = batch.column(batch.schema().index_of(key).unwrap());
        let column = datafusion::arrow::compute::cast(column, &DataType::Int64).unwrap();
        values.extend(column.as_primitive::<Int64Type>().values().iter().copied());
    }
    (values, indexed, bloom)
}

/// A table with `keys` in the config has its copies sorted by them, with the page
/// index and a bloom filter on them; a lookup by key through Amar then reads a page,
/// not the file (the scan's metrics say what was pruned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_a_table_with_keys_are_sorted_and_indexed_for_lookups() {
    let fixture = Fixture::new().admin("stats", "pw").config(
        r#"[[source]]
name = "lookups"
kind = "drop"
path = "drop"
refresh = "1s"
keys = { people = ["id"] }"#,
    );
    std::fs::create_dir(fixture.path("drop")).unwrap();
    let n = 200_000i64;
    // Ids in a scrambled order (7919 is prime to n).
    let mut csv = String::from("id,name\n");
    for i in 0..n {
        let id = (i * 7919) % n + 1;
        csv.push_str(&format!("{id},نفر {id}\n"));
    }
    write(&fixture.path("drop/people.csv"), &csv);
    let server = fixture.start();
    let amar = connect(&server, "stats", "pw").await.unwrap();
    until(&amar, "SELECT count(*) FROM lookups.people", &n.to_string()).await;

    let dir = server.data_dir.join("drop/lookups/tables/people");
    let copies: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let (ids, indexed, bloom) = layout(&copies[0], "id");
    assert_eq!(ids, (1..=n).collect::<Vec<_>>(), "the copy is sorted by id");
    assert!(indexed, "the copy has a page index");
    assert_eq!(
        bloom,
        vec!["id".to_string()],
        "a bloom filter on the key only"
    );

    assert_eq!(
        texts(&amar, "SELECT name FROM lookups.people WHERE id = 131415").await,
        vec![vec![Some("نفر 131415".to_string())]]
    );
    let plan = crate::support::plan_text(
        &amar,
        "EXPLAIN ANALYZE SELECT name FROM lookups.people WHERE id = 131415",
    )
    .await;
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec"))
        .unwrap_or_else(|| panic!("no scan in {plan:?}"))
        .to_string();
    // Of the copy's pages, the page index leaves one that can hold the key, and
    // only the row that matches is decoded beyond the key column.
    let metric = |name: &str| -> (String, String) {
        let rest = scan
            .split(&format!("{name}="))
            .nth(1)
            .unwrap_or_else(|| panic!("no {name} in {scan}"));
        let (total, rest) = rest.split_once(" total → ").unwrap();
        let matched = rest.split_once(" matched").unwrap().0;
        (total.to_string(), matched.to_string())
    };
    let (pages, kept) = metric("page_index_pages_pruned");
    assert_eq!(kept, "1", "one page left of {pages}: {scan}");
    assert!(pages.parse::<u32>().unwrap() > 1, "{scan}");
    assert!(scan.contains("pushdown_rows_matched=1,"), "{scan}");
    // A page of each column, not the file (the names' dictionary stays small).
    let scanned = scan.split("bytes_scanned=").nth(1).unwrap();
    let (number, rest) = scanned.split_once([' ', ',']).unwrap();
    let scale = match rest.chars().next() {
        Some('K') => 1e3,
        Some('M') => 1e6,
        _ => 1.0,
    };
    let scanned = number.parse::<f64>().unwrap() * scale;
    let size = std::fs::metadata(&copies[0]).unwrap().len() as f64;
    assert!(
        scanned < size / 4.0,
        "{scanned} of {size} bytes read: {scan}"
    );
    drop_client(amar);
    server.stop();
}

/// `accelerate = true`: a files source's tables are read into memory at their first
/// query, served from memory while the files stay as they are, and read again, whole,
/// when a file changes; a table that does not fit in the memory limit is read from
/// its files, and `amar.sources` says which is which and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accelerated_tables_are_held_in_memory_and_follow_their_files() {
    let fixture = Fixture::new()
        .admin("stats", "pw")
        .user_with("tehran", &["analyst"], &[("province_code", "2")], "tehran")
        .policy(
            "p, role:analyst, cells.*, read, allow
             p2, role:analyst, cells.counts, label, mask, '***'
             p3, role:analyst, cells.*, province_code = ${user.province_code}",
        )
        .file(
            "cells/counts.csv",
            "province_code,n,label\n1,10,a\n2,20,b\n",
        )
        .config(
            "[[source]]\nname = \"cells\"\nkind = \"files\"\npath = \"cells\"\naccelerate = true",
        );
    let csv = fixture.path("cells/counts.csv");
    let server = fixture.start();
    let amar = connect(&server, "stats", "pw").await.unwrap();
    let status = "SELECT accelerated FROM amar.sources WHERE name = 'cells'";
    assert_eq!(
        one(&amar, status).await,
        "counts: read into memory at its first query"
    );
    assert_eq!(one(&amar, "SELECT sum(n) FROM cells.counts").await, "30");
    assert_eq!(one(&amar, status).await, "counts: 2 rows, 0.0 MB in memory");
    let plan = crate::support::plan_text(&amar, "EXPLAIN SELECT sum(n) FROM cells.counts").await;
    assert!(
        plan.contains("partition_sizes") && !plan.contains("file_type=csv"),
        "a memory scan, not the file: {plan}"
    );
    // The copy in memory is read under each reader's policy: tehran's row filter and
    // mask apply to it as to the file.
    let tehran = connect(&server, "tehran", "tehran").await.unwrap();
    assert_eq!(
        texts(&tehran, "SELECT province_code, n, label FROM cells.counts").await,
        vec![vec![
            Some("2".to_string()),
            Some("20".to_string()),
            Some("***".to_string())
        ]]
    );
    drop_client(tehran);
    // The file changes: the next query reads it again, whole.
    std::fs::write(&csv, "province_code,n,label\n1,10,a\n2,20,b\n3,70,c\n").unwrap();
    assert_eq!(one(&amar, "SELECT sum(n) FROM cells.counts").await, "100");
    assert_eq!(one(&amar, status).await, "counts: 3 rows, 0.0 MB in memory");
    drop_client(amar);
    server.stop();

    // A table larger than the memory limit is read from its file.
    let mut big = String::from("id,name\n");
    for i in 0..100_000 {
        big.push_str(&format!("{i},نام شماره {i}\n"));
    }
    let server = Fixture::new()
        .admin("stats", "pw")
        .file("cells/people.csv", big)
        .config(
            "[[source]]\nname = \"cells\"\nkind = \"files\"\npath = \"cells\"\naccelerate = true\n\n[limits]\nmemory_mb = 1",
        )
        .start();
    let amar = connect(&server, "stats", "pw").await.unwrap();
    assert_eq!(
        one(&amar, "SELECT count(*) FROM cells.people").await,
        "100000"
    );
    let said = one(&amar, status).await;
    assert!(
        said.starts_with("people: read from the source (") && said.contains("memory limit"),
        "{said}"
    );
    assert_eq!(
        one(&amar, "SELECT name FROM cells.people WHERE id = 4242").await,
        "نام شماره 4242"
    );
    drop_client(amar);
    server.stop();
}
