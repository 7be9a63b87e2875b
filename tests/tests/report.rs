//! `amar report quarterly` against the demo: the report is written in Persian and
//! English, as HTML and PDF (Chromium, offline); its figures are what the queries of
//! its appendix answer when run again; it reads with its user's rights only.

use std::path::{Path, PathBuf};

use amar_tests::{TestServer, services_required, shared_demo};

use crate::support::{connect, sqlstate, texts};

/// `amar report …` as the statistics office runs it.
async fn report(
    server: &TestServer,
    user: &str,
    out: &Path,
    args: &[&str],
) -> anyhow::Result<Vec<PathBuf>> {
    let url = format!("postgres://127.0.0.1:{}/amar", server.pg_addr.port());
    let out = out.display().to_string();
    let mut all = args.to_vec();
    all.extend(["--url", &url, "--user", user, "--out", &out]);
    let amar_server::report::ReportCommand::Quarterly(args) = amar_server::report::parse(&all)?;
    amar_server::report::execute(args, user).await
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Text without its tags.
fn strip(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out)
}

/// The part of `text` between `start` (after it) and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// The cells of the table showing query `id`, as text.
fn table(html: &str, id: &str) -> Vec<Vec<String>> {
    let figure = between(html, &format!("data-query=\"{id}\">"), "</figure>")
        .unwrap_or_else(|| panic!("no table of {id}"));
    let Some(body) = between(figure, "<tbody>", "</tbody>") else {
        return vec![];
    };
    body.split("<tr>")
        .filter(|r| !r.is_empty())
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| strip(&format!("<td{}", cell.split("</td>").next().unwrap())))
                .collect()
        })
        .collect()
}

/// The columns the table showing query `id` shows (the other language's are left out).
fn headings(html: &str, id: &str) -> Vec<String> {
    let figure = between(html, &format!("data-query=\"{id}\">"), "</figure>").unwrap();
    figure
        .split("<th data-column=\"")
        .skip(1)
        .map(|h| h.split('"').next().unwrap().to_string())
        .collect()
}

/// `sql`'s columns and rows, as text.
async fn named(
    client: &tokio_postgres::Client,
    sql: &str,
) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let mut columns = vec![];
    let mut rows = vec![];
    for message in client.simple_query(sql).await.unwrap() {
        match message {
            tokio_postgres::SimpleQueryMessage::RowDescription(fields) => {
                columns = fields.iter().map(|f| f.name().to_string()).collect();
            }
            tokio_postgres::SimpleQueryMessage::Row(row) => rows.push(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => {}
        }
    }
    (columns, rows)
}

/// The SQL the appendix prints for query `id`.
fn appendix_sql(html: &str, id: &str) -> String {
    let code = between(
        html,
        &format!("<pre id=\"sql-{}\"><code>", id.to_lowercase()),
        "</code></pre>",
    )
    .unwrap_or_else(|| panic!("no appendix entry for {id}"));
    unescape(code)
}

/// A value as the English report shows it, written out here on its own: NULL as a
/// dash, booleans in words, integers of five digits or more in groups of three.
fn shown(value: &Option<String>) -> String {
    let Some(v) = value else {
        return "—".into();
    };
    match v.as_str() {
        "t" => return "yes".into(),
        "f" => return "no".into(),
        _ => {}
    }
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.len() >= 5 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        return format!("{}{grouped}", if v.starts_with('-') { "-" } else { "" });
    }
    v.clone()
}

fn pdf_text(pdf: &Path) -> String {
    let out = std::process::Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext runs");
    assert!(out.status.success(), "pdftotext {}", pdf.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quarterly_report_is_written_in_both_languages_and_its_figures_are_its_queries() {
    let chromium = Path::new("/usr/bin/chromium");
    let printing = chromium.exists() && which("pdftoppm");
    if !printing {
        assert!(
            !services_required(),
            "Chromium and poppler-utils are needed (clients/install.sh installs them)"
        );
        eprintln!("skipping the PDF part: no /usr/bin/chromium or pdftoppm");
    }
    let server = shared_demo();
    // Something to report on: a refused attempt and reads of indicators.
    let tehran = connect(server, "tehran", "tehran").await.unwrap();
    let e = tehran
        .simple_query("SELECT * FROM amar.query_log")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    tehran
        .simple_query("SELECT count(*) FROM official.average_wage")
        .await
        .unwrap();
    let office = connect(server, "statistician", "statistician")
        .await
        .unwrap();
    let quarter = texts(&office, "SELECT jalali_period('quarter', now())").await[0][0]
        .clone()
        .unwrap();

    // As tehran the report cannot read what it needs, and says which query.
    let dir = tempfile::tempdir().unwrap();
    let e = report(
        server,
        "tehran",
        dir.path(),
        &["quarterly", "--quarter", &quarter],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("42501") && e.contains("the report's query"),
        "{e}"
    );
    let e = report(
        server,
        "statistician",
        dir.path(),
        &["quarterly", "--quarter", "1404Q5"],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("1404Q5"), "{e}");

    let mut args = vec!["quarterly", "--quarter", quarter.as_str()];
    if printing {
        args.push("--pdf");
    }
    let written = report(server, "statistician", dir.path(), &args)
        .await
        .unwrap();
    let name = |ext: &str| dir.path().join(format!("amar-report-{quarter}.{ext}"));
    assert!(written.contains(&name("fa.html")) && written.contains(&name("en.html")));
    let en = std::fs::read_to_string(name("en.html")).unwrap();
    let fa = std::fs::read_to_string(name("fa.html")).unwrap();

    // Persian first: right to left, Persian digits; the English one left to right.
    assert!(fa.contains("<html lang=\"fa\" dir=\"rtl\">"));
    assert!(en.contains("<html lang=\"en\" dir=\"ltr\">"));
    assert!(fa.contains("گزارش فصلی اجرای دستورالعمل آمار رسمی"));
    // Nothing is asked of another place: the font is inside.
    for page in [&fa, &en] {
        assert!(page.contains("font/woff2;base64,"));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    // Every table's figures are its appendix query's answer, run again by the same
    // user (the use of the system grows with every statement, this test's included,
    // and a source probe may land in between, so those are checked apart).
    let mut compared = 0;
    let ids: Vec<String> = en
        .split("<figure id=\"t-")
        .skip(1)
        .map(|f| between(f, "data-query=\"", "\"").unwrap().to_string())
        .collect();
    assert!(ids.len() >= 12, "{ids:?}");
    for id in &ids {
        let sql = appendix_sql(&en, id);
        if sql.contains("query_history") || sql.contains("source_probes") {
            continue;
        }
        let (columns, rows) = named(&office, &sql).await;
        let got = table(&en, id);
        if !rows.is_empty() {
            // The English report leaves out the Persian columns (title_fa, unit_fa).
            let heads = headings(&en, id);
            assert!(heads.iter().all(|h| !h.ends_with("_fa")), "{id}: {heads:?}");
            let keep: Vec<usize> = heads
                .iter()
                .map(|h| columns.iter().position(|c| c == h).unwrap())
                .collect();
            assert_eq!(
                keep.len(),
                columns.iter().filter(|c| !c.ends_with("_fa")).count()
            );
            let want: Vec<Vec<String>> = rows
                .iter()
                .map(|r| keep.iter().map(|&i| shown(&r[i])).collect())
                .collect();
            assert_eq!(got, want, "{id}: {sql}");
        } else {
            assert!(got.is_empty(), "{id}: {got:?}");
        }
        compared += 1;
    }
    assert!(compared >= 8, "{compared} tables compared");

    // The figures a reader looks for first.
    let summary = between(&en, "<div class=\"figures\"", "</div><p").unwrap();
    let figure = |column: &str| {
        strip(
            between(
                summary,
                &format!("data-column=\"{column}\"><span class=\"value\">"),
                "</span>",
            )
            .unwrap(),
        )
    };
    let indicators = texts(&office, "SELECT count(*) FROM amar.indicators").await[0][0]
        .clone()
        .unwrap();
    assert_eq!(figure("indicators"), indicators);
    let sources = texts(&office, "SELECT count(*) FROM amar.sources").await[0][0]
        .clone()
        .unwrap();
    assert_eq!(figure("sources"), sources);
    // Every source was looked at when the server started, and was there.
    let availability = table(&en, "Q3");
    assert_eq!(availability.len().to_string(), sources);
    assert!(
        availability.iter().all(|r| r[3] == "100.0"),
        "{availability:?}"
    );
    // The demo's releases: a revision with its reason, in the quarter they were made.
    let releases = texts(
        &office,
        &format!(
            "SELECT count(*) FROM amar.releases WHERE jalali_period('quarter', publish_at) = '{quarter}' \
             AND status IN ('published', 'superseded')"
        ),
    )
    .await[0][0]
        .clone()
        .unwrap();
    assert_eq!(figure("releases_published"), releases);
    // Use: tehran's refusal is there, and statements were counted.
    let refused = between(&en, "data-query=\"Q16\">", "</figure>").unwrap();
    assert!(refused.contains("tehran"), "{refused}");
    let statements: u64 = figure("statements").replace(',', "").parse().unwrap();
    assert!(statements >= 2, "{statements}");
    // The evaluation ranks the demo's provinces, with a change since the quarter before.
    // Units by name: Tehran (23) is named in both reports.
    let evaluation = table(&en, "Q11");
    assert!(evaluation.len() >= 10, "{evaluation:?}");
    assert_eq!(headings(&en, "Q11")[..3], ["unit", "unit_en", "score"]);
    assert_eq!(evaluation[0][3], "1", "ranked from 1: {:?}", evaluation[0]);
    assert!(
        evaluation.iter().any(|r| r[0] == "23" && r[1] == "Tehran"),
        "{evaluation:?}"
    );
    assert_eq!(headings(&fa, "Q11")[..3], ["unit", "unit_fa", "score"]);
    assert!(table(&fa, "Q11").iter().any(|r| r[1] == "تهران"));

    // The Persian report shows the same figures in Persian digits.
    let persian: String = indicators
        .chars()
        .map(|c| char::from_u32('۰' as u32 + c.to_digit(10).unwrap()).unwrap())
        .collect();
    let fa_summary = between(&fa, "<div class=\"figures\"", "</div><p").unwrap();
    assert!(
        fa_summary.contains(&format!(
            "data-column=\"indicators\"><span class=\"value\"><bdi dir=\"ltr\">{persian}</bdi></span>"
        )),
        "{fa_summary}"
    );
    assert!(fa.contains("منتشرشده") || fa.contains("جایگزین‌شده"));

    if printing {
        for lang in ["fa", "en"] {
            let pdf = name(&format!("{lang}.pdf"));
            assert!(written.contains(&pdf));
            let bytes = std::fs::read(&pdf).unwrap();
            assert!(bytes.starts_with(b"%PDF-"), "{lang}");
            // The PDF renders: its first page as an image.
            let png = dir.path().join(format!("page-{lang}"));
            let status = std::process::Command::new("pdftoppm")
                .args(["-png", "-r", "40", "-f", "1", "-l", "1", "-singlefile"])
                .arg(&pdf)
                .arg(&png)
                .status()
                .unwrap();
            assert!(status.success());
            let image = std::fs::metadata(png.with_extension("png")).unwrap();
            assert!(image.len() > 5_000, "{lang}: a blank page?");
        }
        // Persian text in the Persian PDF (letters in the Arabic blocks), English in
        // the English one.
        let text = pdf_text(&name("fa.pdf"));
        let arabic = text
            .chars()
            .filter(|c| {
                ('\u{0600}'..='\u{06FF}').contains(c) || ('\u{FB50}'..='\u{FEFF}').contains(c)
            })
            .count();
        assert!(arabic > 200, "{arabic} Persian letters in the PDF");
        // (Words as pdftotext reads them; a long title wraps.)
        let text = pdf_text(&name("en.pdf"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.contains("Quarterly report on carrying out the official statistics directive"),
            "{text}"
        );
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}
