//! The report as one HTML file per language, with its font inside (no request to
//! any other place, so it opens and prints the same on an intranet without
//! internet). Persian: right to left, Persian digits and separators; English: left to
//! right. Each table names the query it shows; the appendix prints the queries.

use std::fmt::Write;

use base64::Engine as _;

use super::queries::Section;
use super::{Answer, Gathered};
use crate::display::{Lang, display, escape, heading, numeric, persian, pick};

const FONT_REGULAR: &[u8] = include_bytes!("../../assets/fonts/Vazirmatn-Regular.woff2");
const FONT_BOLD: &[u8] = include_bytes!("../../assets/fonts/Vazirmatn-Bold.woff2");

const STYLE: &str = r#"
@page { size: A4; margin: 16mm 14mm 18mm; }
:root { --ink: #1d2733; --muted: #5b6775; --rule: #d5dbe2; --band: #f3f5f8; --accent: #0b5563; }
* { box-sizing: border-box; }
body { font-family: Vazirmatn, "DejaVu Sans", sans-serif; color: var(--ink); margin: 0 auto; max-width: 60rem;
       padding: 1.5rem; font-size: 10.5pt; line-height: 1.65; }
header.cover { border-bottom: 3px solid var(--accent); padding-bottom: 1rem; margin-bottom: 1.25rem; }
.org { color: var(--accent); font-weight: 700; margin: 0; letter-spacing: .02em; }
h1 { font-size: 20pt; margin: .3rem 0; line-height: 1.35; }
.quarter { font-size: 14pt; margin: 0 0 .6rem; color: var(--muted); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .5rem 0; font-size: 9.5pt; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
.note { font-size: 9.5pt; color: var(--muted); margin: .5rem 0 0; }
html[lang="fa"] ol { list-style-type: persian; }
nav.toc ol { margin: .2rem 0 1rem; padding-inline-start: 1.4rem; columns: 2; font-size: 9.5pt; }
nav.toc a { color: var(--ink); text-decoration: none; }
h2 { font-size: 14pt; color: var(--accent); border-bottom: 1px solid var(--rule); padding-bottom: .2rem;
     margin: 1.6rem 0 .6rem; break-after: avoid; }
h3 { font-size: 11pt; margin: 1rem 0 .3rem; break-after: avoid; }
figure { margin: 0 0 1rem; }
figcaption { font-weight: 700; margin: .6rem 0 .3rem; break-after: avoid; }
figcaption a { font-weight: 400; color: var(--muted); font-size: 9pt; text-decoration: none; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
th.num { text-align: end; }
th { background: var(--band); text-align: start; font-weight: 700; border-bottom: 1px solid var(--rule); padding: .3rem .45rem; vertical-align: bottom; }
td { border-bottom: 1px solid var(--rule); padding: .25rem .45rem; vertical-align: top; overflow-wrap: break-word; }
td.num { text-align: end; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.when { text-align: end; font-variant-numeric: tabular-nums; }
.empty { color: var(--muted); font-style: italic; }
.figures { display: grid; grid-template-columns: repeat(4, 1fr); gap: .5rem; }
.figure { border: 1px solid var(--rule); border-radius: 4px; padding: .5rem .6rem; break-inside: avoid; }
.figure .value { font-size: 16pt; font-weight: 700; display: block; }
.figure .label { font-size: 8.5pt; color: var(--muted); }
.bar { display: inline-block; height: .55rem; background: var(--accent); border-radius: 2px; vertical-align: middle; margin-inline-start: .4rem; }
.up { color: #1b7a3a; } .down { color: #a3281c; }
pre { direction: ltr; text-align: left; background: var(--band); border: 1px solid var(--rule); padding: .5rem .7rem;
      font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; white-space: pre-wrap; break-inside: avoid; }
section.appendix h3 { font-size: 10pt; }
footer { margin-top: 2rem; border-top: 1px solid var(--rule); padding-top: .5rem; font-size: 8.5pt; color: var(--muted); }
"#;

fn font_faces() -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "@font-face {{ font-family: Vazirmatn; font-weight: 400; src: url(data:font/woff2;base64,{}) format('woff2'); }}\n\
         @font-face {{ font-family: Vazirmatn; font-weight: 700; src: url(data:font/woff2;base64,{}) format('woff2'); }}\n",
        b64.encode(FONT_REGULAR),
        b64.encode(FONT_BOLD)
    )
}

/// A section number as the reader counts.
fn number(n: usize, lang: Lang) -> String {
    match lang {
        Lang::Fa => persian(&n.to_string()),
        Lang::En => n.to_string(),
    }
}

fn section_id(section: Section) -> &'static str {
    match section {
        Section::Summary => "summary",
        Section::Sources => "sources",
        Section::Validation => "validation",
        Section::Indicators => "indicators",
        Section::Releases => "releases",
        Section::Evaluation => "evaluation",
        Section::Use => "use",
    }
}

/// A query's answer as a table.
fn table(out: &mut String, answer: &Answer, lang: Lang) {
    let id = &answer.query.id;
    let title = match lang {
        Lang::Fa => &answer.query.title.0,
        Lang::En => &answer.query.title.1,
    };
    let see = pick(lang, ("پرسش", "query"));
    let _ = write!(
        out,
        "<figure id=\"t-{}\" data-query=\"{id}\"><figcaption>{} <a href=\"#{}\">({see} {id})</a></figcaption>",
        id.to_lowercase(),
        escape(title),
        id.to_lowercase()
    );
    if answer.rows.is_empty() {
        let _ = write!(
            out,
            "<p class=\"empty\">{}</p></figure>",
            pick(lang, ("در این فصل موردی نبود.", "None in this quarter."))
        );
        return;
    }
    let score = answer.columns.iter().position(|c| c == "score");
    // A column in the other language (title_en in the Persian report) is left out.
    let other = match lang {
        Lang::Fa => "_en",
        Lang::En => "_fa",
    };
    let shown: Vec<bool> = answer.columns.iter().map(|c| !c.ends_with(other)).collect();
    out.push_str("<table><thead><tr>");
    for (i, column) in answer.columns.iter().enumerate() {
        if !shown[i] {
            continue;
        }
        // A column of numbers is headed where its numbers end.
        let numbers = answer
            .rows
            .iter()
            .filter_map(|r| r.get(i).cloned().flatten())
            .all(|v| numeric(&v));
        let _ = write!(
            out,
            "<th data-column=\"{}\"{}>{}</th>",
            escape(column),
            if numbers { " class=\"num\"" } else { "" },
            escape(&pick(lang, heading(column)))
        );
    }
    out.push_str("</tr></thead><tbody>");
    for row in &answer.rows {
        out.push_str("<tr>");
        for (i, value) in row.iter().enumerate() {
            if !shown[i] {
                continue;
            }
            let value = value.as_deref();
            // Numbers stay on one line; a date and time may break at its space.
            let class = match value {
                Some(v) if numeric(v) && v.contains(' ') => " class=\"when\"",
                Some(v) if numeric(v) => " class=\"num\"",
                _ => "",
            };
            let mut text = display(value, lang);
            if Some(i) == score
                && let Some(v) = value.and_then(|v| v.parse::<f64>().ok())
            {
                let width = (v.clamp(0.0, 100.0) * 0.6).round();
                let _ = write!(
                    text,
                    "<span class=\"bar\" style=\"width:{width}px\" aria-hidden=\"true\"></span>"
                );
            }
            if answer.columns[i].ends_with("_change")
                && let Some(v) = value.and_then(|v| v.parse::<f64>().ok())
            {
                let class = if v > 0.0 {
                    "up"
                } else if v < 0.0 {
                    "down"
                } else {
                    ""
                };
                text = format!("<span class=\"{class}\">{text}</span>");
            }
            let _ = write!(out, "<td{class}>{text}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></figure>");
}

/// The summary's single row as figure cards.
fn figures(out: &mut String, answer: &Answer, lang: Lang) {
    let id = &answer.query.id;
    let _ = write!(
        out,
        "<div class=\"figures\" id=\"t-{}\" data-query=\"{id}\">",
        id.to_lowercase()
    );
    for (i, column) in answer.columns.iter().enumerate() {
        let value = answer
            .rows
            .first()
            .and_then(|r| r.get(i))
            .cloned()
            .flatten();
        let _ = write!(
            out,
            "<div class=\"figure\" data-column=\"{}\"><span class=\"value\">{}</span><span class=\"label\">{}</span></div>",
            escape(column),
            display(value.as_deref(), lang),
            escape(&pick(lang, heading(column)))
        );
    }
    let see = pick(lang, ("پرسش", "query"));
    let _ = write!(
        out,
        "</div><p class=\"note\"><a href=\"#{}\">({see} {id})</a></p>",
        id.to_lowercase()
    );
}

/// The whole report in one language.
pub fn render(report: &Gathered, lang: Lang) -> String {
    let (dir, code) = match lang {
        Lang::Fa => ("rtl", "fa"),
        Lang::En => ("ltr", "en"),
    };
    let quarter = report.quarter;
    let season = pick(lang, quarter.season());
    let quarter_line = match lang {
        Lang::Fa => format!(
            "{season} {} — فصل {} ({})",
            persian(&quarter.year.to_string()),
            persian(&quarter.number.to_string()),
            persian(&quarter.key())
        ),
        Lang::En => format!(
            "{season} {} (Jalali), quarter {} — {}",
            quarter.year,
            quarter.number,
            quarter.key()
        ),
    };
    let title = pick(
        lang,
        (
            "گزارش فصلی اجرای دستورالعمل آمار رسمی",
            "Quarterly report on carrying out the official statistics directive",
        ),
    );
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{code}\" dir=\"{dir}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; font-src data:\">\n\
         <title>{} — {}</title>\n<style>\n{}{STYLE}</style>\n</head>\n<body>\n",
        escape(&title),
        escape(&quarter.key()),
        font_faces()
    );
    let made_at = match lang {
        Lang::Fa => persian(&report.made_at),
        Lang::En => report.made_at.clone(),
    };
    let _ = writeln!(
        out,
        "<header class=\"cover\"><p class=\"org\">{}</p><h1>{}</h1><p class=\"quarter\">{}</p>\
         <dl class=\"meta\"><dt>{}</dt><dd>{} {}</dd><dt>{}</dt><dd><bdi>{}</bdi></dd><dt>{}</dt><dd><bdi dir=\"ltr\">{}</bdi></dd></dl>\
         <p class=\"note\">{}</p></header>",
        pick(
            lang,
            (
                "سامانه‌ی آمار رسمی سازمان — آمار",
                "The organisation's official statistics system — Amar"
            )
        ),
        escape(&title),
        escape(&quarter_line),
        pick(lang, ("تهیه‌شده در", "Made at")),
        escape(&made_at),
        pick(lang, ("(به وقت تهران)", "(Tehran time)")),
        pick(lang, ("به نام کاربر", "As user")),
        escape(&report.user),
        pick(lang, ("کارگزار", "Server")),
        escape(&report.server),
        pick(
            lang,
            (
                "هر رقم این گزارش خروجی یکی از پرسش‌های پیوست است، همان‌گونه که کارگزار با دسترسی همین کاربر پاسخ داد؛ هر کس با همین دسترسی می‌تواند آن را دوباره اجرا کند. زمان‌ها به تقویم هجری شمسی و به وقت تهران‌اند.",
                "Every figure in this report is the output of one of the queries in the appendix, as the server answered it with this user's rights; anyone with the same rights can run it again. Dates are in the Solar Hijri (Jalali) calendar, in Tehran time."
            )
        )
    );
    let present: Vec<Section> = Section::ALL
        .into_iter()
        .filter(|s| report.answers.iter().any(|a| a.query.section == *s))
        .collect();
    out.push_str("<nav class=\"toc\"><ol>");
    for section in &present {
        let _ = write!(
            out,
            "<li><a href=\"#{}\">{}</a></li>",
            section_id(*section),
            pick(lang, section.title())
        );
    }
    let _ = writeln!(
        out,
        "<li><a href=\"#appendix\">{}</a></li></ol></nav>",
        pick(lang, ("پیوست: پرسش‌ها", "Appendix: the queries"))
    );
    for (n, section) in present.iter().enumerate() {
        let _ = writeln!(
            out,
            "<section id=\"{}\"><h2>{}. {}</h2>",
            section_id(*section),
            number(n + 1, lang),
            pick(lang, section.title())
        );
        if *section == Section::Evaluation {
            let _ = write!(
                out,
                "<p>{}</p>",
                pick(
                    lang,
                    (
                        "امتیاز هر واحد از ۰ تا ۱۰۰ است: هر شاخص دارای هنجار در هدف ۱، در هشدار ۰٫۵ و دور از هدف ۰، با وزن هنجار آن؛ رتبه‌ی ۱ بهترین است. تغییر، نسبت به ماه سه ماه پیش‌تر است.",
                        "A unit's score runs from 0 to 100: each indicator with a norm counts 1 on target, 0.5 in warning and 0 off target, weighted by its norm's weight; rank 1 is best. The change is against the month three months before."
                    )
                )
            );
        }
        for answer in report
            .answers
            .iter()
            .filter(|a| a.query.section == *section)
        {
            if *section == Section::Summary {
                figures(&mut out, answer, lang);
            } else {
                table(&mut out, answer, lang);
            }
            out.push('\n');
        }
        out.push_str("</section>\n");
    }
    let _ = writeln!(
        out,
        "<section id=\"appendix\" class=\"appendix\"><h2>{}</h2><p>{}</p>",
        pick(lang, ("پیوست: پرسش‌ها", "Appendix: the queries")),
        pick(
            lang,
            (
                "هر پرسش را می‌توان با psql یا هر کارخواه دیگر به همین کارگزار فرستاد.",
                "Each query can be sent to the same server with psql or any other client."
            )
        )
    );
    for answer in &report.answers {
        let title = match lang {
            Lang::Fa => &answer.query.title.0,
            Lang::En => &answer.query.title.1,
        };
        let _ = writeln!(
            out,
            "<div id=\"{}\"><h3><bdi dir=\"ltr\">{}</bdi> — {}</h3><pre id=\"sql-{}\"><code>{}</code></pre></div>",
            answer.query.id.to_lowercase(),
            answer.query.id,
            escape(title),
            answer.query.id.to_lowercase(),
            escape(&answer.query.sql)
        );
    }
    let _ = write!(
        out,
        "</section>\n<footer>{}</footer>\n</body>\n</html>\n",
        pick(
            lang,
            (
                "تهیه‌شده با دستور amar report quarterly.",
                "Made with amar report quarterly."
            )
        )
    );
    out
}
