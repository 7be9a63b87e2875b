//! One indicator (`/indicators/<id>`): what it is and how it is counted, its norm
//! and glossary terms, the latest figure and its release with a citation and a
//! permalink (`?release=<id>` shows that release for good), the national series as
//! a chart and a table, and the period by unit, sortable, with status and rank;
//! and its downloads (`/indicators/<id>/data.csv|xlsx|json`), which are the
//! by-unit table of the same period or release.

use std::collections::HashMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::{
    Indicator, SeriesPoint, indicator_named, labels, merged, run, series, sort_header, visible,
};
use crate::display::{Lang, escape};
use crate::portal::chart::{self, Point};
use crate::portal::download::{self, Format};
use crate::portal::page::{self, link, t};
use crate::portal::query::{Table, Value};
use crate::portal::{PageError, Rendered, Request};

/// The release a table of cells comes from.
#[derive(Debug, Clone)]
struct Release {
    id: String,
    revision: i64,
    at: Option<DateTime<Utc>>,
}

/// The cells of one period by unit, as the visitor may see them.
struct Cells {
    table: Table,
    period: String,
    release: Option<Release>,
}

/// Whether `id` can be a release id (letters, digits, `-`, `_`, `.`).
fn release_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

async fn cells(
    request: &Request<'_>,
    indicator: &Indicator,
    tables: &std::collections::HashSet<String>,
) -> Result<Option<Cells>, PageError> {
    let id = super::ident(&indicator.id);
    let Some(period) = indicator.period.as_deref().map(super::ident) else {
        return Ok(None);
    };
    let order = indicator
        .area
        .as_deref()
        .map(super::ident)
        .unwrap_or_else(|| period.clone());
    let table = if let Some(release) = request.param("release") {
        if !release_id_ok(release)
            || !tables.contains(&format!("official_history.{}", indicator.id))
        {
            return Err(PageError::NotFound);
        }
        let table = run(
            request,
            &format!("SELECT * FROM official_history.{id} WHERE release_id = $1 ORDER BY {order}"),
            &[release],
        )
        .await?;
        if table.rows.is_empty() {
            return Err(PageError::NotFound);
        }
        // History has when it was superseded; the page shows the cells as released.
        table
    } else {
        let mut table = Table::default();
        if tables.contains(&format!("official.{}", indicator.id)) {
            table = run(
                request,
                &format!(
                    "SELECT * FROM official.{id} WHERE {period} = (SELECT max({period}) FROM official.{id}) ORDER BY {order}"
                ),
                &[],
            )
            .await?;
        }
        if table.rows.is_empty() {
            table = run(
                request,
                &format!(
                    "SELECT * FROM indicators.{id} WHERE {period} = (SELECT max({period}) FROM indicators.{id}) ORDER BY {order}"
                ),
                &[],
            )
            .await?;
        }
        table
    };
    let Some(first) = table.rows.first() else {
        return Ok(None);
    };
    let period_name = indicator.period.as_deref().unwrap_or("period");
    let period = table.get(first, period_name).plain();
    let release = table.text(first, "release_id").map(|r| Release {
        id: r.to_string(),
        revision: table.get(first, "revision").number().unwrap_or(1.0) as i64,
        at: match table.get(first, "released_at") {
            Value::Time(t) => Some(*t),
            _ => None,
        },
    });
    // Names, not codes: the area's labels in both languages, after the cells.
    let mut table = table;
    if let Some(area) = &indicator.area {
        let names = labels(request, indicator.area_classification.as_deref()).await?;
        let i = table.col(area);
        table.columns.push("unit_fa".into());
        table.columns.push("unit_en".into());
        for row in &mut table.rows {
            let code = i.map(|i| row[i].plain()).unwrap_or_default();
            let (fa, en) = match names.get(&code) {
                Some((fa, en)) => (Value::Text(fa.clone()), Value::Text(en.clone())),
                None => (Value::Null, Value::Null),
            };
            row.push(fa);
            row.push(en);
        }
    }
    // History's own columns say what happened later, not what the page shows.
    if let (Some(a), Some(b)) = (table.col("superseded_at"), table.col("superseded_by")) {
        let (hi, lo) = (a.max(b), a.min(b));
        table.columns.remove(hi);
        table.columns.remove(lo);
        for row in &mut table.rows {
            row.remove(hi);
            row.remove(lo);
        }
    }
    Ok(Some(Cells {
        table,
        period,
        release,
    }))
}

/// The page's own link with its release, if any.
fn base(request: &Request<'_>, indicator: &Indicator) -> String {
    match request.param("release") {
        Some(r) => format!("/indicators/{}?release={}", indicator.id, r),
        None => format!("/indicators/{}", indicator.id),
    }
}

/// Indicator `id` if the visitor may read it, with the tables they may read; what
/// they may not read is "not found", like what does not exist.
async fn readable(
    request: &Request<'_>,
    id: &str,
) -> Result<(Indicator, std::collections::HashSet<String>), PageError> {
    let tables = visible(
        request,
        &["official", "official_history", "indicators", "amar"],
    )
    .await?;
    if !tables.contains("amar.indicators") {
        return Err(PageError::NotFound);
    }
    let indicator = indicator_named(request, id)
        .await?
        .ok_or(PageError::NotFound)?;
    if !tables.contains(&format!("indicators.{}", indicator.id)) {
        return Err(PageError::NotFound);
    }
    Ok((indicator, tables))
}

pub async fn download(request: &Request<'_>, id: &str, file: &str) -> Result<Rendered, PageError> {
    let Some((format, stem)) = Format::of(file) else {
        return Err(PageError::NotFound);
    };
    if stem != "data" {
        return Err(PageError::NotFound);
    }
    let (indicator, tables) = readable(request, id).await?;
    let cells = cells(request, &indicator, &tables)
        .await?
        .ok_or(PageError::NotFound)?;
    let bytes =
        download::encode(&cells.table, format, &indicator.id, request.lang).map_err(|e| {
            PageError::Failed(crate::engine::SqlError::new(
                crate::engine::code::INTERNAL_ERROR,
                e.to_string(),
            ))
        })?;
    let suffix = match &cells.release {
        Some(r) => r.id.clone(),
        None => cells.period.clone(),
    };
    let safe: String = format!("{}-{suffix}", indicator.id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(Rendered::File {
        name: format!("{safe}.{}", format.extension()),
        content_type: format.content_type(),
        bytes: bytes.into(),
        rows: cells.table.rows.len() as u64,
    })
}

pub async fn page(request: &Request<'_>, id: &str) -> Result<Rendered, PageError> {
    let lang = request.lang;
    let (indicator, tables) = readable(request, id).await?;
    let live = series(request, &indicator, "indicators").await?;
    let official = if tables.contains(&format!("official.{}", indicator.id)) {
        series(request, &indicator, "official").await?
    } else {
        vec![]
    };
    let all = merged(live, official);
    let cells = cells(request, &indicator, &tables).await?;
    // Each unit's status in the latest live period (from the evaluation).
    let mut status: HashMap<String, (String, String)> = HashMap::new();
    if tables.contains("amar.indicator_status") {
        let t = run(
            request,
            "SELECT unit, period, status FROM amar.indicator_status WHERE indicator = $1",
            &[&indicator.id],
        )
        .await?;
        for r in &t.rows {
            if let (Some(u), Some(p), Some(s)) =
                (t.text(r, "unit"), t.text(r, "period"), t.text(r, "status"))
            {
                status.insert(u.to_string(), (p.to_string(), s.to_string()));
            }
        }
    }
    let glossary = if tables.contains("amar.glossary") && !indicator.concepts.is_empty() {
        run(
            request,
            "SELECT term, title_fa, title_en FROM amar.glossary",
            &[],
        )
        .await?
    } else {
        Table::default()
    };
    let releases = if tables.contains("amar.releases") {
        run(
            request,
            "SELECT release_id, period, indicators, status, publish_at FROM amar.releases ORDER BY publish_at DESC NULLS LAST",
            &[],
        )
        .await?
    } else {
        Table::default()
    };

    let title = indicator.title(lang).to_string();
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"crumbs\"><a href=\"{}\">{}</a> › {}</p>\n<h1>{}</h1>\n<p class=\"lead\">{}</p>\n",
        link(lang, "/"),
        t(lang, "شاخص‌ها", "Indicators"),
        page::department(&indicator.department, lang),
        escape(&title),
        escape(match lang {
            Lang::Fa => &indicator.definition.0,
            Lang::En => &indicator.definition.1,
        })
    );
    body.push_str("<div class=\"layout\">\n<div>\n");
    latest(&mut body, request, &indicator, cells.as_ref(), &all);
    trend(&mut body, request, &indicator, &all);
    if let Some(cells) = cells.as_ref().filter(|_| indicator.area.is_some()) {
        by_unit(&mut body, request, &indicator, cells, &status);
    }
    body.push_str("</div>\n<aside>\n");
    facts(&mut body, request, &indicator, &glossary, &releases);
    body.push_str("</aside>\n</div>\n");
    let rows = all.len() as u64 + cells.as_ref().map_or(0, |c| c.table.rows.len() as u64);
    Ok(Rendered::Page { title, body, rows })
}

/// The latest figure (or the release asked for) with its citation.
fn latest(
    body: &mut String,
    request: &Request<'_>,
    indicator: &Indicator,
    cells: Option<&Cells>,
    all: &[SeriesPoint],
) {
    let lang = request.lang;
    let _ = write!(
        body,
        "<section class=\"panel\" aria-labelledby=\"latest\">\n<h2 id=\"latest\">{}</h2>\n",
        if request.param("release").is_some() {
            t(lang, "رقم انتشار", "Figures of the release")
        } else {
            t(lang, "آخرین رقم", "Latest figure")
        }
    );
    let Some(cells) = cells else {
        let _ = writeln!(
            body,
            "<p>{}</p></section>",
            t(lang, "هنوز رقمی نیست.", "No figures yet.")
        );
        return;
    };
    // The figure of the period (the national one, as on the chart), unless the page
    // shows an older release, whose cells are below.
    let point = all.iter().find(|p| p.period == cells.period);
    if request.param("release").is_none()
        && let Some(point) = point
    {
        let what = national(indicator, lang);
        match point.value {
            Some(v) => {
                let _ = write!(
                    body,
                    "<p class=\"figure\">{}<span class=\"unit\">{}</span></p>\n<p class=\"meta\">{what}</p>\n",
                    page::number(v, page::decimals(&indicator.unit), lang),
                    page::unit_name(&indicator.unit, lang),
                );
            }
            None => {
                let _ = writeln!(
                    body,
                    "<p class=\"figure-note\">{}</p>",
                    t(
                        lang,
                        "جمع کشوری منتشر نمی‌شود: برخی خانه‌های استانی کوچک‌اند و پنهان مانده‌اند.",
                        "No national total is published: some provinces' cells are small and suppressed."
                    )
                );
            }
        }
    }
    let _ = writeln!(
        body,
        "<p class=\"meta\">{}: {}</p>",
        t(lang, "دوره", "Period"),
        page::period(&cells.period, lang)
    );
    match &cells.release {
        Some(release) => {
            let at = release.at.map(|a| page::when(&a, lang)).unwrap_or_default();
            let permalink = format!(
                "{}/indicators/{}?release={}",
                request.origin, indicator.id, release.id
            );
            let _ = writeln!(
                body,
                "<p><span class=\"badge official\">{}</span> {} <bdi>{}</bdi>، {} {} · {} {}</p>",
                t(lang, "رسمی", "official"),
                t(lang, "انتشار", "Release"),
                escape(&release.id),
                t(lang, "ویرایش", "revision"),
                page::digits(&release.revision.to_string(), lang),
                t(lang, "منتشرشده در", "published"),
                at
            );
            let cite = match lang {
                Lang::Fa => format!(
                    "{}، «{}»، دوره‌ی {}، انتشار <bdi dir=\"ltr\">{}</bdi> (ویرایش {})، {}. <bdi dir=\"ltr\">{}</bdi>",
                    escape(request.name()),
                    escape(indicator.title(lang)),
                    page::period(&cells.period, lang),
                    escape(&release.id),
                    page::digits(&release.revision.to_string(), lang),
                    at,
                    escape(&permalink)
                ),
                Lang::En => format!(
                    "{}, “{}”, {}, release {} (revision {}), published {}. {}",
                    escape(request.name()),
                    escape(indicator.title(lang)),
                    page::period(&cells.period, lang),
                    escape(&release.id),
                    release.revision,
                    at,
                    escape(&permalink)
                ),
            };
            let _ = write!(
                body,
                "<h3>{}</h3>\n<p class=\"cite\">{cite}</p>\n<p><a href=\"{}\">{}</a></p>\n",
                t(lang, "استناد", "Cite this"),
                escape(&link(
                    lang,
                    &format!("/indicators/{}?release={}", indicator.id, release.id)
                )),
                t(
                    lang,
                    "پیوند ثابت این انتشار",
                    "Permanent link to this release"
                ),
            );
        }
        None => {
            let _ = writeln!(
                body,
                "<p><span class=\"badge provisional\">{}</span> {}</p>",
                t(lang, "موقت", "provisional"),
                t(
                    lang,
                    "این دوره هنوز به‌طور رسمی منتشر نشده است؛ رقم‌ها از داده‌های زنده‌اند و ممکن است تغییر کنند.",
                    "This period is not officially released yet; the figures come from live data and may change."
                )
            );
        }
    }
    let base = base(request, indicator);
    let _ = write!(
        body,
        "<h3>{}</h3>\n<ul class=\"downloads\">",
        t(
            lang,
            "دریافت داده‌های این دوره",
            "Download this period's data"
        )
    );
    for (ext, label) in [("csv", "CSV"), ("xlsx", "Excel (XLSX)"), ("json", "JSON")] {
        let href = match base.split_once('?') {
            Some((path, q)) => format!("{path}/data.{ext}?{q}"),
            None => format!("{base}/data.{ext}"),
        };
        let _ = write!(
            body,
            "<li><a href=\"{}\" download>{label}</a></li>",
            escape(&link(lang, &href))
        );
    }
    body.push_str("</ul>\n</section>\n");
}

fn trend(body: &mut String, request: &Request<'_>, indicator: &Indicator, all: &[SeriesPoint]) {
    let lang = request.lang;
    if all.is_empty() {
        return;
    }
    let what = national(indicator, lang);
    let _ = write!(
        body,
        "<section aria-labelledby=\"trend\">\n<h2 id=\"trend\">{} ({what})</h2>\n",
        t(lang, "روند", "Trend")
    );
    let points: Vec<Point> = all
        .iter()
        .map(|p| Point {
            label: page::period(&p.period, lang),
            value: p.value,
            official: p.release.is_some(),
        })
        .collect();
    let decimals = page::decimals(&indicator.unit);
    let first = all.iter().find(|p| p.value.is_some());
    let last = all.iter().rev().find(|p| p.value.is_some());
    let summary = match (first, last, lang) {
        (Some(f), Some(l), Lang::Fa) => format!(
            "از {} در {} تا {} در {}",
            strip(&page::number(f.value.unwrap_or_default(), decimals, lang)),
            strip(&page::period(&f.period, lang)),
            strip(&page::number(l.value.unwrap_or_default(), decimals, lang)),
            strip(&page::period(&l.period, lang)),
        ),
        (Some(f), Some(l), Lang::En) => format!(
            "From {} in {} to {} in {}",
            page::number(f.value.unwrap_or_default(), decimals, lang),
            page::period(&f.period, lang),
            page::number(l.value.unwrap_or_default(), decimals, lang),
            page::period(&l.period, lang),
        ),
        _ => String::new(),
    };
    let chart_title = format!("{} — {what}", indicator.title(lang));
    body.push_str(&chart::line(
        &points,
        indicator.target.filter(|_| !indicator.additive()),
        decimals,
        &chart_title,
        &summary,
        lang,
    ));
    let _ = write!(
        body,
        "<details><summary>{}</summary>\n<div class=\"scroll\"><table>\n<caption class=\"sr\">{}</caption>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\">{}</th></tr></thead>\n<tbody>\n",
        t(
            lang,
            "داده‌های نمودار به‌صورت جدول",
            "The chart's data as a table"
        ),
        escape(&chart_title),
        t(lang, "دوره", "Period"),
        t(lang, "مقدار", "Value"),
        t(lang, "وضعیت انتشار", "Release"),
    );
    for p in all {
        let _ = writeln!(
            body,
            "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td>{}</td></tr>",
            page::period(&p.period, lang),
            p.value
                .map(|v| page::number(v, decimals, lang))
                .unwrap_or_else(|| "—".into()),
            match &p.release {
                Some(r) => format!("{} <bdi>{}</bdi>", t(lang, "رسمی", "official"), escape(r)),
                None => t(lang, "موقت", "provisional").to_string(),
            }
        );
    }
    body.push_str("</tbody></table></div></details>\n</section>\n");
}

/// What the national figure of an indicator is.
fn national(indicator: &Indicator, lang: Lang) -> &'static str {
    if indicator.area.is_none() {
        t(lang, "کل کشور", "national")
    } else if indicator.additive() {
        t(lang, "جمع استان‌ها", "total of provinces")
    } else {
        t(lang, "میانه‌ی استان‌ها", "median of provinces")
    }
}

fn strip(html: &str) -> String {
    html.replace("<bdi dir=\"ltr\">", "").replace("</bdi>", "")
}

fn by_unit(
    body: &mut String,
    request: &Request<'_>,
    indicator: &Indicator,
    cells: &Cells,
    status: &HashMap<String, (String, String)>,
) {
    let lang = request.lang;
    let table = &cells.table;
    let decimals = page::decimals(&indicator.unit);
    let area = indicator.area.as_deref();
    let value_col = indicator.value.as_str();
    struct Row {
        code: String,
        name: String,
        value: Option<f64>,
        suppressed: bool,
        status: Option<String>,
        rank: Option<usize>,
    }
    let mut rows: Vec<Row> = table
        .rows
        .iter()
        .map(|r| {
            let code = area.map(|a| table.get(r, a).plain()).unwrap_or_default();
            let name = match lang {
                Lang::Fa => table.text(r, "unit_fa"),
                Lang::En => table.text(r, "unit_en"),
            }
            .map(str::to_string)
            .unwrap_or_else(|| code.clone());
            let suppressed = matches!(table.get(r, "suppressed"), Value::Bool(true));
            let status = status
                .get(&code)
                .filter(|(p, _)| *p == cells.period)
                .map(|(_, s)| s.clone());
            Row {
                code,
                name,
                value: table.get(r, value_col).number(),
                suppressed,
                status,
                rank: None,
            }
        })
        .collect();
    // Rank: best first by the norm's direction (highest first without a norm).
    let mut ranked: Vec<usize> = (0..rows.len())
        .filter(|i| rows[*i].value.is_some())
        .collect();
    let key = |v: f64| match (
        indicator.direction.as_deref(),
        indicator.lower,
        indicator.upper,
    ) {
        (Some("lower"), _, _) => v,
        (Some("range"), Some(lo), Some(hi)) => (v - (lo + hi) / 2.0).abs(),
        _ => -v,
    };
    ranked.sort_by(|a, b| {
        key(rows[*a].value.unwrap_or_default()).total_cmp(&key(rows[*b].value.unwrap_or_default()))
    });
    for (rank, i) in ranked.iter().enumerate() {
        rows[*i].rank = Some(rank + 1);
    }
    let sort = request.param("sort").unwrap_or("name");
    let dir = request.param("dir").unwrap_or("asc");
    match sort {
        "value" => rows.sort_by(|a, b| {
            a.value
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&b.value.unwrap_or(f64::NEG_INFINITY))
        }),
        "rank" => rows.sort_by_key(|r| r.rank.unwrap_or(usize::MAX)),
        _ => rows.sort_by(|a, b| a.name.cmp(&b.name)),
    }
    if dir == "desc" {
        rows.reverse();
    }
    let heading = t(lang, "به تفکیک استان", "By province");
    let _ = write!(
        body,
        "<section aria-labelledby=\"units\">\n<h2 id=\"units\">{heading} — {}</h2>\n<div class=\"scroll\"><table class=\"stack\">\n<caption class=\"sr\">{heading}</caption>\n<thead><tr>",
        page::period(&cells.period, lang)
    );
    let link_base = link(lang, &base(request, indicator));
    let current = (sort, dir);
    body.push_str(&sort_header(
        &link_base,
        t(lang, "رتبه", "Rank"),
        "rank",
        current,
        true,
    ));
    body.push_str(&sort_header(
        &link_base,
        t(lang, "استان", "Province"),
        "name",
        current,
        false,
    ));
    body.push_str(&sort_header(
        &link_base,
        &format!(
            "{} ({})",
            t(lang, "مقدار", "Value"),
            page::unit_name(&indicator.unit, lang)
        ),
        "value",
        current,
        true,
    ));
    let _ = write!(
        body,
        "<th scope=\"col\">{}</th></tr></thead>\n<tbody>\n",
        t(lang, "وضعیت نسبت به هدف", "Against the norm")
    );
    let mut any_suppressed = false;
    for r in &rows {
        let name = if area.is_some() && !r.code.is_empty() {
            format!(
                "<a href=\"{}\">{}</a>",
                escape(&link(lang, &format!("/units/{}", r.code))),
                escape(&r.name)
            )
        } else {
            escape(&r.name)
        };
        let value = if r.suppressed {
            any_suppressed = true;
            format!(
                "<span class=\"status sup\"><span class=\"sym\" aria-hidden=\"true\">◼</span>{}</span>",
                t(lang, "پنهان", "suppressed")
            )
        } else {
            r.value
                .map(|v| page::number(v, decimals, lang))
                .unwrap_or_else(|| "—".into())
        };
        let status = match &r.status {
            Some(s) => page::status_badge(s, lang),
            None => String::new(),
        };
        let _ = writeln!(
            body,
            "<tr><td class=\"num rank\" data-label=\"{}\">{}</td><th scope=\"row\">{name}</th><td class=\"num\" data-label=\"{}\">{value}</td><td data-label=\"{}\">{status}</td></tr>",
            t(lang, "رتبه", "Rank"),
            r.rank
                .map(|n| page::digits(&n.to_string(), lang))
                .unwrap_or_else(|| "—".into()),
            t(lang, "مقدار", "Value"),
            t(lang, "وضعیت", "Status"),
        );
    }
    body.push_str("</tbody></table></div>\n<ul class=\"legend\">");
    if any_suppressed {
        let _ = write!(
            body,
            "<li>◼ {}</li>",
            t(
                lang,
                "پنهان: شمار پایه‌ی این خانه کمتر از آستانه‌ی انتشار است؛ رقم آن (و در صورت نیاز، یک خانه‌ی دیگر) برای حفظ محرمانگی نشان داده نمی‌شود.",
                "Suppressed: this cell's underlying count is below the publication threshold; its figure (and if needed one more cell's) is not shown, to protect confidentiality."
            )
        );
    }
    let _ = write!(
        body,
        "<li>✓ {} · ! {} · ✗ {}</li><li>{}</li></ul>\n</section>\n",
        t(lang, "در هدف", "on target"),
        t(lang, "هشدار", "warning"),
        t(lang, "دور از هدف", "off target"),
        t(
            lang,
            "رتبه: بهترین نخست، بر پایه‌ی جهت هدف شاخص.",
            "Rank: best first, by the direction of the indicator's norm."
        )
    );
}

fn facts(
    body: &mut String,
    request: &Request<'_>,
    indicator: &Indicator,
    glossary: &Table,
    releases: &Table,
) {
    let lang = request.lang;
    let _ = write!(
        body,
        "<section class=\"panel\" aria-labelledby=\"about\">\n<h2 id=\"about\">{}</h2>\n<dl class=\"facts\">\n",
        t(lang, "درباره‌ی شاخص", "About the indicator")
    );
    let mut fact = |k: &str, v: String| {
        let _ = writeln!(body, "<dt>{k}</dt><dd>{v}</dd>");
    };
    fact(
        t(lang, "شناسه", "Identifier"),
        format!("<bdi>{}</bdi>", escape(&indicator.id)),
    );
    fact(
        t(lang, "واحد", "Unit"),
        page::unit_name(&indicator.unit, lang),
    );
    fact(
        t(lang, "دوره‌ی تناوب", "Periodicity"),
        page::periodicity(&indicator.periodicity, lang),
    );
    fact(
        t(lang, "اداره", "Department"),
        page::department(&indicator.department, lang),
    );
    fact(
        t(lang, "منطق شمارش", "Counting logic"),
        format!("<bdi dir=\"ltr\">{}</bdi>", escape(&indicator.counting)),
    );
    if let Some(target) = indicator.target {
        let decimals = page::decimals(&indicator.unit);
        let mut norm = format!(
            "{} {}",
            t(lang, "هدف", "target"),
            page::number(target, decimals, lang)
        );
        if let Some(lo) = indicator.lower {
            norm.push_str(&format!(
                "، {} {}",
                t(lang, "کران پایین", "lower bound"),
                page::number(lo, decimals, lang)
            ));
        }
        if let Some(hi) = indicator.upper {
            norm.push_str(&format!(
                "، {} {}",
                t(lang, "کران بالا", "upper bound"),
                page::number(hi, decimals, lang)
            ));
        }
        let direction = match indicator.direction.as_deref() {
            Some("higher") => t(lang, "بیشتر بهتر", "higher is better"),
            Some("lower") => t(lang, "کمتر بهتر", "lower is better"),
            Some("range") => t(lang, "درون بازه", "within the range"),
            _ => "",
        };
        if lang == Lang::En {
            norm = norm.replace('،', ",");
        }
        fact(t(lang, "هنجار", "Norm"), format!("{norm} ({direction})"));
    }
    if !indicator.concepts.is_empty() {
        let titles: HashMap<&str, &str> = glossary
            .rows
            .iter()
            .filter_map(|r| {
                Some((
                    glossary.text(r, "term")?,
                    match lang {
                        Lang::Fa => glossary.text(r, "title_fa")?,
                        Lang::En => glossary.text(r, "title_en")?,
                    },
                ))
            })
            .collect();
        let terms: Vec<String> = indicator
            .concepts
            .iter()
            .map(|c| match titles.get(c.as_str()) {
                Some(title) => format!(
                    "<a href=\"{}#{}\">{}</a>",
                    escape(&link(lang, "/glossary")),
                    escape(c),
                    escape(title)
                ),
                None => escape(c),
            })
            .collect();
        fact(
            t(lang, "مفاهیم", "Concepts"),
            terms.join(if lang == Lang::Fa { "، " } else { ", " }),
        );
    }
    if request.staff {
        let verified = if indicator.verified {
            page::status_badge("on target", lang).replace(
                t(lang, "در هدف", "On target"),
                t(lang, "تأییدشده", "Verified"),
            )
        } else {
            page::status_badge("off target", lang).replace(
                t(lang, "دور از هدف", "Off target"),
                t(lang, "تأییدنشده", "Not verified"),
            )
        };
        fact(t(lang, "اعتبارسنجی", "Validation"), verified);
        if let Some(rules) = &indicator.failing_rules {
            fact(
                t(lang, "قواعد نقض‌شده", "Failing rules"),
                format!("<bdi>{}</bdi>", escape(rules)),
            );
        }
    }
    body.push_str("</dl>\n</section>\n");
    // This indicator's releases.
    let mine: Vec<&Vec<Value>> = releases
        .rows
        .iter()
        .filter(|r| {
            releases
                .text(r, "indicators")
                .is_some_and(|list| list.split(", ").any(|i| i == indicator.id))
        })
        .collect();
    if !mine.is_empty() {
        let _ = write!(
            body,
            "<section class=\"panel\" aria-labelledby=\"releases\">\n<h2 id=\"releases\">{}</h2>\n<table>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead>\n<tbody>\n",
            t(lang, "انتشارها", "Releases"),
            t(lang, "انتشار", "Release"),
            t(lang, "دوره", "Period"),
            t(lang, "وضعیت", "Status"),
        );
        for r in mine {
            let id = releases.text(r, "release_id").unwrap_or_default();
            let status = releases.text(r, "status").unwrap_or_default();
            let name = if matches!(status, "published" | "superseded") {
                format!(
                    "<a href=\"{}\"><bdi>{}</bdi></a>",
                    escape(&link(
                        lang,
                        &format!("/indicators/{}?release={id}", indicator.id)
                    )),
                    escape(id)
                )
            } else {
                format!("<bdi>{}</bdi>", escape(id))
            };
            let _ = writeln!(
                body,
                "<tr><td>{name}</td><td>{}</td><td>{}</td></tr>",
                page::period(releases.text(r, "period").unwrap_or_default(), lang),
                crate::display::display(Some(status), lang)
            );
        }
        body.push_str("</tbody></table>\n</section>\n");
    }
}
