//! The evaluation of units (`/units`): units ranked by score, with each indicator's
//! status against its norm; and one unit (`/units/<code>`) with every indicator
//! against its norm, its score and its rank. Both read `amar.indicator_status`, so
//! a provincial user sees their own province only, whatever the URL says.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{run, sort_header, visible};
use crate::display::{Lang, escape};
use crate::portal::page::{self, link, t};
use crate::portal::query::{Table, Value};
use crate::portal::{PageError, Rendered, Request};

const COLUMNS: &str = "unit, unit_fa, unit_en, indicator, title_fa, title_en, period, value, target, lower, upper, direction, status, verified, unit_score, unit_rank";

fn name(table: &Table, row: &[Value], lang: Lang) -> String {
    let code = table.text(row, "unit").unwrap_or_default();
    match lang {
        Lang::Fa => table.text(row, "unit_fa"),
        Lang::En => table.text(row, "unit_en"),
    }
    .unwrap_or(code)
    .to_string()
}

fn legend(body: &mut String, lang: Lang) {
    let _ = writeln!(
        body,
        "<ul class=\"legend\"><li>{}</li><li>{}</li><li>{}</li><li>{}</li><li>{}</li></ul>",
        page::status_badge("on target", lang),
        page::status_badge("warning", lang),
        page::status_badge("off target", lang),
        page::status_badge("suppressed", lang),
        page::status_badge("no value", lang),
    );
}

/// The evaluation is for those who may read it; others are refused the page without
/// a refused statement on the way.
async fn may_read(request: &Request<'_>) -> Result<(), PageError> {
    let tables = visible(request, &["amar"]).await?;
    if tables.contains("amar.indicator_status") {
        Ok(())
    } else {
        Err(PageError::Forbidden)
    }
}

pub async fn scorecard(request: &Request<'_>) -> Result<Rendered, PageError> {
    let lang = request.lang;
    may_read(request).await?;
    let table = run(
        request,
        &format!("SELECT {COLUMNS} FROM amar.indicator_status WHERE unit IS NOT NULL ORDER BY unit_rank NULLS LAST, unit, indicator"),
        &[],
    )
    .await?;
    // Columns: the indicators; rows: the units in rank order.
    let mut indicators: BTreeMap<String, String> = BTreeMap::new();
    let mut units: Vec<(String, String, Option<f64>, Option<i64>)> = vec![];
    let mut cells: BTreeMap<(String, String), String> = BTreeMap::new();
    for r in &table.rows {
        let unit = table.text(r, "unit").unwrap_or_default().to_string();
        let indicator = table.text(r, "indicator").unwrap_or_default().to_string();
        let title = match lang {
            Lang::Fa => table.text(r, "title_fa"),
            Lang::En => table.text(r, "title_en"),
        }
        .unwrap_or(&indicator)
        .to_string();
        indicators.insert(indicator.clone(), title);
        if !units.iter().any(|(u, ..)| *u == unit) {
            units.push((
                unit.clone(),
                name(&table, r, lang),
                table.get(r, "unit_score").number(),
                table.get(r, "unit_rank").number().map(|n| n as i64),
            ));
        }
        cells.insert(
            (unit, indicator),
            table.text(r, "status").unwrap_or_default().to_string(),
        );
    }
    let sort = request.param("sort").unwrap_or("rank");
    let dir = request.param("dir").unwrap_or("asc");
    match sort {
        "name" => units.sort_by(|a, b| a.1.cmp(&b.1)),
        "score" => units.sort_by(|a, b| {
            a.2.unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&b.2.unwrap_or(f64::NEG_INFINITY))
        }),
        _ => units.sort_by_key(|u| u.3.unwrap_or(i64::MAX)),
    }
    if dir == "desc" {
        units.reverse();
    }
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{}</h1>\n<p class=\"lead\">{}</p>\n",
        t(lang, "ارزیابی واحدها", "Evaluation of units"),
        t(
            lang,
            "استان‌ها به ترتیب امتیاز: امتیاز هر واحد (۰ تا ۱۰۰) میانگین وزنی وضعیت شاخص‌های آن در آخرین دوره است: در هدف یک، هشدار نیم و دور از هدف صفر.",
            "Provinces ranked by score: a unit's score (0–100) is the weighted mean of its indicators' statuses in their latest period: on target counts one, a warning half, off target nothing."
        )
    );
    if request.session.user.is_public() {
        let _ = writeln!(
            body,
            "<p class=\"notice\">{}</p>",
            t(
                lang,
                "در این نما، امتیاز هر واحد تنها از رقم‌های منتشرشده‌ی آن حساب می‌شود؛ شاخص‌هایی که رقمشان برای حفظ محرمانگی پنهان است در امتیاز نمی‌آیند.",
                "In this view a unit's score counts its published figures only; indicators whose figure is suppressed to protect confidentiality are left out of it."
            )
        );
    }
    if units.is_empty() {
        let _ = writeln!(
            body,
            "<p class=\"notice\">{}</p>",
            t(
                lang,
                "ارزیابی‌ای برای نمایش به شما نیست.",
                "There is no evaluation to show you."
            )
        );
    } else {
        legend(&mut body, lang);
        let _ = write!(
            body,
            "<div class=\"scroll\"><table class=\"scorecard\">\n<caption class=\"sr\">{}</caption>\n<thead><tr>",
            t(lang, "جدول امتیاز واحدها", "Scorecard of units")
        );
        let base = link(lang, "/units");
        body.push_str(&sort_header(
            &base,
            t(lang, "رتبه", "Rank"),
            "rank",
            (sort, dir),
            true,
        ));
        body.push_str(&sort_header(
            &base,
            t(lang, "واحد", "Unit"),
            "name",
            (sort, dir),
            false,
        ));
        body.push_str(&sort_header(
            &base,
            t(lang, "امتیاز", "Score"),
            "score",
            (sort, dir),
            true,
        ));
        for (id, title) in &indicators {
            let _ = write!(
                body,
                "<th scope=\"col\"><a href=\"{}\">{}</a></th>",
                escape(&link(lang, &format!("/indicators/{id}"))),
                escape(title)
            );
        }
        body.push_str("</tr></thead>\n<tbody>\n");
        for (code, unit_name, score, rank) in &units {
            let _ = write!(
                body,
                "<tr><td class=\"num rank\">{}</td><th scope=\"row\"><a href=\"{}\">{}</a></th><td class=\"num score\">{}</td>",
                rank.map(|r| page::digits(&r.to_string(), lang))
                    .unwrap_or_else(|| "—".into()),
                escape(&link(lang, &format!("/units/{code}"))),
                escape(unit_name),
                score
                    .map(|s| page::number(s, 1, lang))
                    .unwrap_or_else(|| "—".into()),
            );
            for id in indicators.keys() {
                let cell = cells
                    .get(&(code.clone(), id.clone()))
                    .map(|s| page::status_badge(s, lang))
                    .unwrap_or_default();
                let _ = write!(body, "<td>{cell}</td>");
            }
            body.push_str("</tr>\n");
        }
        body.push_str("</tbody></table></div>\n");
    }
    Ok(Rendered::Page {
        title: t(lang, "ارزیابی واحدها", "Evaluation of units").to_string(),
        body,
        rows: table.rows.len() as u64,
    })
}

pub async fn unit(request: &Request<'_>, code: &str) -> Result<Rendered, PageError> {
    let lang = request.lang;
    if code.is_empty() || code.len() > 64 {
        return Err(PageError::NotFound);
    }
    may_read(request).await?;
    let table = run(
        request,
        &format!("SELECT {COLUMNS} FROM amar.indicator_status WHERE unit = $1 ORDER BY indicator"),
        &[code],
    )
    .await?;
    let Some(first) = table.rows.first() else {
        return Err(PageError::NotFound);
    };
    let unit_name = name(&table, first, lang);
    let score = table.get(first, "unit_score").number();
    let rank = table.get(first, "unit_rank").number();
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"crumbs\"><a href=\"{}\">{}</a> › {}</p>\n<h1>{}</h1>\n<dl class=\"facts\"><dt>{}</dt><dd class=\"score\">{}</dd><dt>{}</dt><dd class=\"rank\">{}</dd><dt>{}</dt><dd><bdi>{}</bdi></dd></dl>\n",
        link(lang, "/units"),
        t(lang, "ارزیابی واحدها", "Evaluation of units"),
        escape(&unit_name),
        escape(&unit_name),
        t(lang, "امتیاز", "Score"),
        score
            .map(|s| page::number(s, 1, lang))
            .unwrap_or_else(|| "—".into()),
        t(lang, "رتبه در میان استان‌ها", "Rank among provinces"),
        rank.map(|r| page::digits(&(r as i64).to_string(), lang))
            .unwrap_or_else(|| "—".into()),
        t(lang, "کد", "Code"),
        page::digits(&escape(code), lang),
    );
    legend(&mut body, lang);
    let _ = write!(
        body,
        "<div class=\"scroll\"><table class=\"stack\">\n<caption class=\"sr\">{}</caption>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\">{}</th></tr></thead>\n<tbody>\n",
        t(
            lang,
            "شاخص‌های واحد در برابر هنجار",
            "The unit's indicators against their norms"
        ),
        t(lang, "شاخص", "Indicator"),
        t(lang, "دوره", "Period"),
        t(lang, "مقدار", "Value"),
        t(lang, "هدف", "Target"),
        t(lang, "وضعیت", "Status"),
    );
    for r in &table.rows {
        let id = table.text(r, "indicator").unwrap_or_default();
        let title = match lang {
            Lang::Fa => table.text(r, "title_fa"),
            Lang::En => table.text(r, "title_en"),
        }
        .unwrap_or(id);
        let status = table.text(r, "status").unwrap_or_default();
        let value = if status == "suppressed" {
            page::status_badge("suppressed", lang)
        } else {
            page::value(table.get(r, "value"), lang)
        };
        let _ = writeln!(
            body,
            "<tr><th scope=\"row\"><a href=\"{}\">{}</a></th><td data-label=\"{}\">{}</td><td class=\"num\" data-label=\"{}\">{value}</td><td class=\"num\" data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td></tr>",
            escape(&link(lang, &format!("/indicators/{id}"))),
            escape(title),
            t(lang, "دوره", "Period"),
            page::period(table.text(r, "period").unwrap_or_default(), lang),
            t(lang, "مقدار", "Value"),
            t(lang, "هدف", "Target"),
            page::value(table.get(r, "target"), lang),
            t(lang, "وضعیت", "Status"),
            page::status_badge(status, lang),
        );
    }
    body.push_str("</tbody></table></div>\n");
    Ok(Rendered::Page {
        title: unit_name,
        body,
        rows: table.rows.len() as u64,
    })
}
