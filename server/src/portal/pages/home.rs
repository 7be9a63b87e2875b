//! Home: the indicators the visitor may read, by department, each with its latest
//! figure (official where released, provisional otherwise), its period, a small
//! trend, and for staff how the units stand against the norm.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use super::{Indicator, indicators, merged, run, series, visible};
use crate::display::{Lang, escape};
use crate::portal::chart::{Point, sparkline};
use crate::portal::page::{self, t};
use crate::portal::{PageError, Rendered, Request};

pub async fn page(request: &Request<'_>) -> Result<Rendered, PageError> {
    let lang = request.lang;
    let tables = visible(request, &["official", "indicators", "amar"]).await?;
    let list = if tables.contains("amar.indicators") {
        indicators(request).await?
    } else {
        vec![]
    };
    // For staff: each indicator's units by status in its latest period.
    let mut statuses: HashMap<String, BTreeMap<String, i64>> = HashMap::new();
    if request.staff && tables.contains("amar.indicator_status") {
        let table = run(
            request,
            "SELECT indicator, status, count(*) AS units FROM amar.indicator_status GROUP BY indicator, status",
            &[],
        )
        .await;
        if let Ok(table) = table {
            for r in &table.rows {
                if let (Some(i), Some(s)) = (table.text(r, "indicator"), table.text(r, "status")) {
                    let n = table.get(r, "units").number().unwrap_or(0.0) as i64;
                    statuses
                        .entry(i.to_string())
                        .or_default()
                        .insert(s.to_string(), n);
                }
            }
        }
    }
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{}</h1>\n<p class=\"lead\">{}</p>\n",
        t(lang, "شاخص‌های آماری", "Statistical indicators"),
        t(
            lang,
            "آخرین رقم هر شاخص، با دوره و روند آن. ارقام «رسمی» از انتشارهای رسمی‌اند؛ ارقام «موقت» هنوز منتشر نشده‌اند و ممکن است تغییر کنند.",
            "Each indicator's latest figure, its period and its trend. Official figures come from official releases; provisional ones are not released yet and may change."
        )
    );
    if list.is_empty() {
        let _ = write!(
            body,
            "<p class=\"notice\">{}</p>",
            t(
                lang,
                "هنوز شاخصی برای نمایش به شما نیست.",
                "There are no indicators to show you yet."
            )
        );
    }
    let mut rows = 0u64;
    let mut by_department: BTreeMap<String, Vec<&Indicator>> = BTreeMap::new();
    for i in &list {
        by_department
            .entry(i.department.clone())
            .or_default()
            .push(i);
    }
    for (department, items) in by_department {
        let _ = write!(
            body,
            "<section aria-labelledby=\"d-{0}\">\n<h2 id=\"d-{0}\">{1}</h2>\n<div class=\"cards\">\n",
            escape(&department),
            page::department(&department, lang)
        );
        for indicator in items {
            let view = format!("indicators.{}", indicator.id);
            if !tables.contains(&view) {
                continue;
            }
            let live = series(request, indicator, "indicators").await?;
            let official = if tables.contains(&format!("official.{}", indicator.id)) {
                series(request, indicator, "official").await?
            } else {
                vec![]
            };
            let all = merged(live, official);
            rows += all.len() as u64;
            card(
                &mut body,
                request,
                indicator,
                &all,
                statuses.get(&indicator.id),
            );
        }
        body.push_str("</div>\n</section>\n");
    }
    Ok(Rendered::Page {
        title: t(lang, "شاخص‌ها", "Indicators").to_string(),
        body,
        rows,
    })
}

fn card(
    body: &mut String,
    request: &Request<'_>,
    indicator: &Indicator,
    all: &[super::SeriesPoint],
    statuses: Option<&BTreeMap<String, i64>>,
) {
    let lang = request.lang;
    let link = page::link(lang, &format!("/indicators/{}", indicator.id));
    let _ = write!(
        body,
        "<article class=\"card\">\n<h3><a href=\"{}\">{}</a></h3>\n",
        escape(&link),
        escape(indicator.title(lang))
    );
    let latest = all.iter().rev().find(|p| p.value.is_some()).or(all.last());
    match latest {
        Some(point) => {
            match point.value {
                Some(v) => {
                    let _ = writeln!(
                        body,
                        "<p class=\"figure\">{}<span class=\"unit\">{}</span></p>",
                        page::number(v, page::decimals(&indicator.unit), lang),
                        page::unit_name(&indicator.unit, lang)
                    );
                }
                // A total over units some of whose cells are suppressed (or missing)
                // is not published: it would tell what the hidden cells add up to.
                None => {
                    let _ = writeln!(
                        body,
                        "<p class=\"figure-note\">{}</p>",
                        t(
                            lang,
                            "جمع کشوری منتشر نمی‌شود: برخی خانه‌های استانی کوچک‌اند و پنهان مانده‌اند. رقم هر استان را در صفحه‌ی شاخص ببینید.",
                            "No national total is published: some provinces' cells are small and suppressed. See each province's figure on the indicator's page."
                        )
                    );
                }
            }
            let what = if indicator.area.is_none() {
                t(lang, "کل کشور", "national")
            } else if indicator.additive() {
                t(lang, "جمع استان‌ها", "total of provinces")
            } else {
                t(lang, "میانه‌ی استان‌ها", "median of provinces")
            };
            let badge = match &point.release {
                Some(_) => format!(
                    "<span class=\"badge official\">{}</span>",
                    t(lang, "رسمی", "official")
                ),
                None => format!(
                    "<span class=\"badge provisional\">{}</span>",
                    t(lang, "موقت", "provisional")
                ),
            };
            let _ = writeln!(
                body,
                "<p class=\"meta\">{} · {what} {badge}</p>",
                page::period(&point.period, lang)
            );
            let points: Vec<Point> = all
                .iter()
                .rev()
                .take(12)
                .rev()
                .map(|p| Point {
                    label: page::period(&p.period, lang),
                    value: p.value,
                    official: p.release.is_some(),
                })
                .collect();
            let label = match lang {
                Lang::Fa => format!(
                    "روند {} دوره‌ی اخیر",
                    page::digits(&points.len().to_string(), lang)
                ),
                Lang::En => format!("Trend over the last {} periods", points.len()),
            };
            body.push_str(&sparkline(&points, &label));
        }
        None => {
            let _ = writeln!(
                body,
                "<p class=\"meta\">{}</p>",
                t(lang, "هنوز رقمی نیست.", "No figures yet.")
            );
        }
    }
    if let Some(statuses) = statuses {
        body.push_str("<p class=\"statuses\">");
        for key in ["on target", "warning", "off target"] {
            if let Some(n) = statuses.get(key) {
                let (class, symbol, words) = page::status(key, lang);
                let _ = write!(
                    body,
                    "<span class=\"status {class}\"><span class=\"sym\" aria-hidden=\"true\">{symbol}</span>{} {words}</span>",
                    page::digits(&n.to_string(), lang)
                );
            }
        }
        body.push_str("</p>\n");
    }
    body.push_str("</article>\n");
}
