//! The statistics office's page (`/office`, staff with the rights): validation
//! results per rule with their violations, the sources with their mode, health and
//! freshness, and the release calendar. Each section shows only if the visitor may
//! read its table (asked of information_schema, so nothing is refused on the way);
//! a visitor who may read none of them is refused the page. And the glossary
//! (`/glossary`), the statistical regulation's terms, for everyone who may read it.

use std::fmt::Write;

use super::{run, visible};
use crate::display::{Lang, escape};
use crate::portal::page::{self, link, t};
use crate::portal::query::{Table, Value};
use crate::portal::{PageError, Rendered, Request};

/// A table of `columns` (name, Persian heading, English heading) of `table`.
fn grid(
    body: &mut String,
    table: &Table,
    columns: &[(&str, &str, &str)],
    caption: &str,
    lang: Lang,
) {
    let _ = write!(
        body,
        "<div class=\"scroll\"><table>\n<caption class=\"sr\">{}</caption>\n<thead><tr>",
        escape(caption)
    );
    for (name, fa, en) in columns {
        let numeric = table
            .rows
            .iter()
            .any(|r| matches!(table.get(r, name), Value::Int(_) | Value::Num(_)));
        let _ = write!(
            body,
            "<th scope=\"col\"{}>{}</th>",
            if numeric { " class=\"num\"" } else { "" },
            t(lang, fa, en)
        );
    }
    body.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        body.push_str("<tr>");
        for (i, (name, ..)) in columns.iter().enumerate() {
            let v = table.get(row, name);
            let cell = if *name == "release_id" || *name == "rule" {
                match v.text() {
                    Some(code) => format!("<bdi dir=\"ltr\" class=\"code\">{}</bdi>", escape(code)),
                    None => page::value(v, lang),
                }
            } else if *name == "period" {
                page::period(&v.plain(), lang)
            } else if *name == "outcome" || *name == "status" {
                match v.text() {
                    Some("passed") => page::status_badge("on target", lang)
                        .replace(t(lang, "در هدف", "On target"), t(lang, "قبول", "passed")),
                    Some("violated") => page::status_badge("off target", lang).replace(
                        t(lang, "دور از هدف", "Off target"),
                        t(lang, "نقض", "violated"),
                    ),
                    Some("error") => page::status_badge("warning", lang).replace(
                        t(lang, "هشدار", "Warning"),
                        t(lang, "اجرا نشد", "could not run"),
                    ),
                    _ => page::value(v, lang),
                }
            } else if *name == "healthy" {
                match v {
                    Value::Bool(true) => page::status_badge("on target", lang).replace(
                        t(lang, "در هدف", "On target"),
                        t(lang, "در دسترس", "reachable"),
                    ),
                    Value::Bool(false) => page::status_badge("off target", lang).replace(
                        t(lang, "دور از هدف", "Off target"),
                        t(lang, "در دسترس نیست", "down"),
                    ),
                    _ => page::value(v, lang),
                }
            } else {
                page::value(v, lang)
            };
            let numeric = matches!(v, Value::Int(_) | Value::Num(_));
            if i == 0 {
                let _ = write!(body, "<th scope=\"row\">{cell}</th>");
            } else if numeric {
                let _ = write!(body, "<td class=\"num\">{cell}</td>");
            } else {
                let _ = write!(body, "<td>{cell}</td>");
            }
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</tbody></table></div>\n");
}

pub async fn page(request: &Request<'_>) -> Result<Rendered, PageError> {
    let lang = request.lang;
    if !request.staff {
        return Err(PageError::SignIn);
    }
    let tables = visible(request, &["amar"]).await?;
    let can = |t: &str| tables.contains(&format!("amar.{t}"));
    if !can("validation_results") && !can("sources") && !can("release_calendar") {
        return Err(PageError::Forbidden);
    }
    let mut body = String::new();
    let mut rows = 0u64;
    let _ = write!(
        body,
        "<h1>{}</h1>\n<p class=\"lead\">{}</p>\n",
        t(lang, "دفتر آمار", "Statistics office"),
        t(
            lang,
            "کیفیت داده‌ها، منابع و تقویم انتشار، آن‌گونه که حساب شما اجازه‌ی دیدنشان را دارد.",
            "Data quality, sources and the release calendar, as far as your account may see them."
        )
    );
    if can("validation_results") {
        let table = run(
            request,
            "SELECT r.rule, v.title_fa, v.title_en, r.severity, r.outcome, r.violations, r.run_at, r.sample, r.error \
             FROM (SELECT *, row_number() OVER (PARTITION BY rule ORDER BY run_at DESC) AS n FROM amar.validation_results) r \
             LEFT JOIN amar.validation_rules v ON v.id = r.rule WHERE r.n = 1 ORDER BY r.outcome DESC, r.rule",
            &[],
        )
        .await?;
        rows += table.rows.len() as u64;
        let title_col = match lang {
            Lang::Fa => "title_fa",
            Lang::En => "title_en",
        };
        let _ = write!(
            body,
            "<section aria-labelledby=\"validation\"><h2 id=\"validation\">{}</h2>\n<p class=\"meta\">{}</p>\n",
            t(
                lang,
                "اعتبارسنجی: آخرین اجرای هر قاعده",
                "Validation: each rule's latest run"
            ),
            t(
                lang,
                "هر قاعده سطرهایی را برمی‌گرداند که آن را نقض می‌کنند؛ شاخصی که ورودی‌اش قاعده‌ای با شدت «خطا» را نقض کند تأییدنشده است.",
                "Each rule returns the rows that break it; an indicator whose inputs break an error-severity rule is unverified."
            )
        );
        grid(
            &mut body,
            &table,
            &[
                ("rule", "قاعده", "Rule"),
                (title_col, "عنوان", "Title"),
                ("severity", "شدت", "Severity"),
                ("outcome", "نتیجه", "Outcome"),
                ("violations", "سطرهای ناقض", "Violations"),
                ("run_at", "زمان اجرا", "Run at"),
                ("sample", "نمونه", "Sample"),
            ],
            t(lang, "نتیجه‌ی قواعد اعتبارسنجی", "Validation results"),
            lang,
        );
        body.push_str("</section>\n");
    }
    if can("sources") {
        let table = run(
            request,
            "SELECT name, kind, CASE WHEN mode = 'live' AND kind IN ('postgres', 'mysql', 'sqlite', 'plugin') THEN 'online' ELSE 'offline' END AS connection, \
             mode, healthy, latency_ms, checked_at, tables, last_snapshot, health_message FROM amar.sources ORDER BY name",
            &[],
        )
        .await?;
        rows += table.rows.len() as u64;
        let _ = write!(
            body,
            "<section aria-labelledby=\"sources\"><h2 id=\"sources\">{}</h2>\n<p class=\"meta\">{}</p>\n",
            t(lang, "منابع داده", "Data sources"),
            t(
                lang,
                "برخط: پایگاه داده‌ی اداره هنگام پرسش خوانده می‌شود؛ برون‌خط: برداشت‌های دوره‌ای و پرونده‌های تحویلی.",
                "Online: the department's database is read at query time; offline: periodic snapshots and dropped files."
            )
        );
        grid(
            &mut body,
            &table,
            &[
                ("name", "منبع", "Source"),
                ("kind", "نوع", "Kind"),
                ("connection", "اتصال", "Connection"),
                ("healthy", "سلامت", "Health"),
                ("latency_ms", "تأخیر (میلی‌ثانیه)", "Latency (ms)"),
                ("checked_at", "زمان بررسی", "Checked"),
                ("tables", "جدول‌ها", "Tables"),
                ("last_snapshot", "آخرین برداشت", "Last snapshot"),
            ],
            t(lang, "منابع داده", "Data sources"),
            lang,
        );
        body.push_str("</section>\n");
    }
    if can("release_calendar") {
        let mut table = run(
            request,
            "SELECT indicators, period, scheduled_at, status, on_time, release_id, published_at, moves FROM amar.release_calendar ORDER BY scheduled_at",
            &[],
        )
        .await?;
        rows += table.rows.len() as u64;
        // Names, not ids, for the indicators the visitor may read.
        if can("indicators") {
            let titles = run(
                request,
                "SELECT id, title_fa, title_en FROM amar.indicators",
                &[],
            )
            .await?;
            let title_col = match lang {
                Lang::Fa => "title_fa",
                Lang::En => "title_en",
            };
            let names: std::collections::HashMap<String, String> = titles
                .rows
                .iter()
                .filter_map(|r| {
                    Some((
                        titles.text(r, "id")?.to_string(),
                        titles.text(r, title_col)?.to_string(),
                    ))
                })
                .collect();
            let separator = t(lang, "، ", ", ");
            if let Some(i) = table.col("indicators") {
                for row in &mut table.rows {
                    if let Value::Text(list) = &row[i] {
                        let named: Vec<&str> = list
                            .split(", ")
                            .map(|id| names.get(id).map(String::as_str).unwrap_or(id))
                            .collect();
                        row[i] = Value::Text(named.join(separator));
                    }
                }
            }
        }
        let _ = writeln!(
            body,
            "<section aria-labelledby=\"calendar\"><h2 id=\"calendar\">{}</h2>",
            t(lang, "تقویم انتشار", "Release calendar")
        );
        grid(
            &mut body,
            &table,
            &[
                ("indicators", "شاخص‌ها", "Indicators"),
                ("period", "دوره", "Period"),
                ("scheduled_at", "زمان اعلام‌شده", "Announced for"),
                ("status", "وضعیت", "Status"),
                ("on_time", "به‌موقع", "On time"),
                ("release_id", "انتشار", "Release"),
                ("published_at", "زمان انتشار", "Published"),
                ("moves", "جابه‌جایی", "Moves"),
            ],
            t(lang, "تقویم انتشار", "Release calendar"),
            lang,
        );
        body.push_str("</section>\n");
    }
    let _ = writeln!(
        body,
        "<p><a href=\"{}\">{}</a></p>",
        link(lang, "/glossary"),
        t(lang, "واژه‌نامه‌ی آماری", "The statistical glossary")
    );
    Ok(Rendered::Page {
        title: t(lang, "دفتر آمار", "Statistics office").to_string(),
        body,
        rows,
    })
}

pub async fn glossary(request: &Request<'_>) -> Result<Rendered, PageError> {
    let lang = request.lang;
    let tables = visible(request, &["amar"]).await?;
    if !tables.contains("amar.glossary") {
        return Err(PageError::NotFound);
    }
    let table = run(
        request,
        "SELECT term, title_fa, title_en, definition_fa, definition_en FROM amar.glossary ORDER BY term",
        &[],
    )
    .await?;
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{}</h1>\n<p class=\"lead\">{}</p>\n<dl class=\"glossary\">\n",
        t(lang, "واژه‌نامه‌ی آماری", "Statistical glossary"),
        t(
            lang,
            "تعریف‌های یکسانی که همه‌ی شاخص‌ها بر پایه‌ی آن‌ها شمرده می‌شوند.",
            "The one set of definitions every indicator is counted by."
        )
    );
    let mut entries: Vec<&Vec<Value>> = table.rows.iter().collect();
    let (title, definition) = match lang {
        Lang::Fa => ("title_fa", "definition_fa"),
        Lang::En => ("title_en", "definition_en"),
    };
    entries.sort_by(|a, b| table.text(a, title).cmp(&table.text(b, title)));
    for r in entries {
        let term = table.text(r, "term").unwrap_or_default();
        let _ = writeln!(
            body,
            "<dt id=\"{}\">{}</dt><dd>{}</dd>",
            escape(term),
            escape(table.text(r, title).unwrap_or(term)),
            escape(table.text(r, definition).unwrap_or_default())
        );
    }
    body.push_str("</dl>\n");
    Ok(Rendered::Page {
        title: t(lang, "واژه‌نامه", "Glossary").to_string(),
        body,
        rows: table.rows.len() as u64,
    })
}
