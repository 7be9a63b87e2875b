//! What every page shares: the frame (header, navigation, language switch, who is
//! signed in, footer), and how values, periods and times read in each language.
//! Persian first (`lang="fa" dir="rtl"`, Persian digits, Jalali dates in Tehran
//! time); English by `?lang=en`, which every link keeps.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::assets;
use super::query::Value;
use crate::display::{Lang, escape, persian};

/// What a page needs to know about its request.
#[derive(Debug, Clone)]
pub struct Frame {
    pub lang: Lang,
    /// The request's path, for the language switch and the sign-in's return.
    pub path: String,
    /// The query string without `lang`.
    pub query: Vec<(String, String)>,
    /// The signed-in user's name (none for a visitor).
    pub user: Option<String>,
    /// Whether the user is staff (signed in, not in the public role).
    pub staff: bool,
    /// The token of the sign-out form.
    pub csrf: Option<String>,
    /// Shown above the page (a session that ended, say).
    pub notice: Option<String>,
    /// The organisation's name.
    pub name: (String, String),
}

/// The text in the page's language.
pub fn t<'a>(lang: Lang, fa: &'a str, en: &'a str) -> &'a str {
    match lang {
        Lang::Fa => fa,
        Lang::En => en,
    }
}

/// A link to `path` (which may carry a query) in `lang`.
pub fn link(lang: Lang, path: &str) -> String {
    match lang {
        Lang::Fa => path.to_string(),
        Lang::En if path.contains('?') => format!("{path}&lang=en"),
        Lang::En => format!("{path}?lang=en"),
    }
}

impl Frame {
    /// A link to `path` in this page's language.
    pub fn link(&self, path: &str) -> String {
        link(self.lang, path)
    }

    /// This page in the other language.
    fn switch(&self) -> String {
        let mut pairs: Vec<(String, String)> = self.query.clone();
        if self.lang == Lang::Fa {
            pairs.push(("lang".into(), "en".into()));
        }
        if pairs.is_empty() {
            return self.path.clone();
        }
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("{}?{}", self.path, query)
    }

    /// The whole page around `body`.
    pub fn render(&self, title: &str, body: &str) -> String {
        let lang = self.lang;
        let (dir, code) = match lang {
            Lang::Fa => ("rtl", "fa"),
            Lang::En => ("ltr", "en"),
        };
        let name = escape(match lang {
            Lang::Fa => &self.name.0,
            Lang::En => &self.name.1,
        });
        let mut out = String::with_capacity(body.len() + 4096);
        let _ = write!(
            out,
            "<!doctype html>\n<html lang=\"{code}\" dir=\"{dir}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{} — {name}</title>\n<link rel=\"stylesheet\" href=\"{}\">\n\
             <link rel=\"icon\" href=\"{}\" type=\"image/svg+xml\">\n</head>\n<body>\n\
             <a class=\"skip\" href=\"#main\">{}</a>\n",
            escape(title),
            assets::url("portal.css"),
            assets::url("emblem.svg"),
            t(lang, "رفتن به محتوا", "Skip to content"),
        );
        let _ = write!(
            out,
            "<header class=\"masthead\"><div class=\"wrap\">\n<a class=\"brand\" href=\"{}\">{EMBLEM}<span>{name}<small>{}</small></span></a>\n",
            self.link("/"),
            t(
                lang,
                "آمار رسمی، از یک منبع",
                "Official statistics, from one source"
            ),
        );
        let mut nav = vec![
            ("/", t(lang, "شاخص‌ها", "Indicators")),
            ("/units", t(lang, "ارزیابی واحدها", "Evaluation of units")),
            ("/glossary", t(lang, "واژه‌نامه", "Glossary")),
        ];
        if self.staff {
            nav.push(("/office", t(lang, "دفتر آمار", "Statistics office")));
        }
        let _ = write!(
            out,
            "<nav class=\"main\" aria-label=\"{}\"><ul>",
            t(lang, "بخش‌های درگاه", "Portal sections")
        );
        for (href, label) in nav {
            let current = if self.path == href
                || (href != "/" && self.path.starts_with(&format!("{href}/")))
                || (href == "/" && self.path.starts_with("/indicators"))
            {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(
                out,
                "<li><a href=\"{}\"{current}>{label}</a></li>",
                self.link(href)
            );
        }
        out.push_str("</ul></nav>\n<div class=\"tools\">");
        let (other, other_code, other_label) = match lang {
            Lang::Fa => ("English", "en", "View this page in English"),
            Lang::En => ("فارسی", "fa", "این صفحه به فارسی"),
        };
        let _ = write!(
            out,
            "<a href=\"{}\" lang=\"{other_code}\" hreflang=\"{other_code}\" title=\"{other_label}\">{other}</a>",
            escape(&self.switch())
        );
        match (&self.user, &self.csrf) {
            (Some(user), Some(csrf)) => {
                let _ = write!(
                    out,
                    "<span class=\"who\">{} <bdi>{}</bdi></span>\
                     <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                     <button type=\"submit\">{}</button></form>",
                    t(lang, "کاربر:", "Signed in as"),
                    escape(user),
                    self.link("/signout"),
                    escape(csrf),
                    t(lang, "خروج", "Sign out"),
                );
            }
            _ => {
                let back: String = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &self.path)
                    .finish();
                let _ = write!(
                    out,
                    "<a href=\"{}\">{}</a>",
                    escape(&self.link(&format!("/signin?{back}"))),
                    t(lang, "ورود کارکنان", "Staff sign-in")
                );
            }
        }
        out.push_str(
            "</div>\n</div></header>\n<main id=\"main\" class=\"wrap\" tabindex=\"-1\">\n",
        );
        if let Some(notice) = &self.notice {
            let _ = writeln!(
                out,
                "<p class=\"notice warn\" role=\"status\">{}</p>",
                escape(notice)
            );
        }
        out.push_str(body);
        let _ = write!(
            out,
            "</main>\n<footer class=\"site\"><div class=\"wrap\">\n<p>{name}. {}</p>\n<p>{}</p>\n</div></footer>\n</body>\n</html>\n",
            t(
                lang,
                "ارقامی که «رسمی» نشان خورده‌اند از انتشارهای رسمی‌اند و پس از انتشار تغییر نمی‌کنند، مگر با بازنگری اعلام‌شده؛ ارقام «موقت» از داده‌های زنده‌اند و ممکن است تغییر کنند.",
                "Figures marked official come from official releases and do not change once released, except by an announced revision; provisional figures come from live data and may change."
            ),
            t(
                lang,
                "خانه‌هایی که شمار پایه‌شان کمتر از آستانه است برای حفظ محرمانگی پنهان شده‌اند.",
                "Cells whose underlying count is below the threshold are suppressed to protect confidentiality."
            ),
        );
        out
    }
}

/// The emblem, drawn inline (it is part of the page, so it needs no request).
const EMBLEM: &str = "<svg width=\"40\" height=\"40\" viewBox=\"0 0 64 64\" aria-hidden=\"true\" focusable=\"false\"><circle cx=\"32\" cy=\"32\" r=\"30\" fill=\"#0b4f6c\" stroke=\"#c8a24a\" stroke-width=\"4\"/><rect x=\"16\" y=\"34\" width=\"7\" height=\"14\" rx=\"1\" fill=\"#fff\"/><rect x=\"28.5\" y=\"24\" width=\"7\" height=\"24\" rx=\"1\" fill=\"#fff\"/><rect x=\"41\" y=\"16\" width=\"7\" height=\"32\" rx=\"1\" fill=\"#c8a24a\"/></svg>";

/// Digits as the language writes them (text already escaped or plain).
pub fn digits(text: &str, lang: Lang) -> String {
    match lang {
        Lang::Fa => persian(text),
        Lang::En => text.to_string(),
    }
}

/// A number for display: grouped thousands, at most `decimals` decimals (trailing
/// zeros dropped), in the language's digits, kept left to right in Persian.
pub fn number(n: f64, decimals: usize, lang: Lang) -> String {
    let text = format!("{n:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (text.clone(), None),
    };
    // Thousands separated from four digits on, as the organisation prints them.
    let digits_only = int.trim_start_matches('-');
    let mut grouped = String::new();
    for (i, c) in digits_only.chars().enumerate() {
        if i > 0 && (digits_only.len() - i) % 3 == 0 && digits_only.len() >= 4 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let mut int = if int.starts_with('-') {
        format!("-{grouped}")
    } else {
        grouped
    };
    if let Some(f) = frac {
        int.push('.');
        int.push_str(&f);
    }
    match lang {
        Lang::Fa => format!("<bdi dir=\"ltr\">{}</bdi>", persian(&int)),
        Lang::En => int,
    }
}

/// How many decimals an indicator's values show, by its unit.
pub fn decimals(unit: &str) -> usize {
    match unit {
        "persons" | "rials" | "claims" => 0,
        _ => 1,
    }
}

/// A value for display in a table cell.
pub fn value(v: &Value, lang: Lang) -> String {
    match v {
        Value::Null => "—".into(),
        Value::Int(i) => number(*i as f64, 0, lang),
        Value::Num(n) => number(*n, 2, lang),
        Value::Bool(b) => match (b, lang) {
            (true, Lang::Fa) => "بله".into(),
            (false, Lang::Fa) => "خیر".into(),
            (true, Lang::En) => "yes".into(),
            (false, Lang::En) => "no".into(),
        },
        Value::Time(at) => when(at, lang),
        Value::Text(text) => crate::display::display(Some(text), lang),
    }
}

const MONTHS_EN: [&str; 12] = [
    "Farvardin",
    "Ordibehesht",
    "Khordad",
    "Tir",
    "Mordad",
    "Shahrivar",
    "Mehr",
    "Aban",
    "Azar",
    "Dey",
    "Bahman",
    "Esfand",
];

/// A moment as a Jalali date and time in Tehran.
pub fn when(at: &DateTime<Utc>, lang: Lang) -> String {
    let local = at.with_timezone(&chrono_tz::Asia::Tehran);
    let days = (local.date_naive()
        - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default())
    .num_days() as i32;
    let Ok(date) = amar_catalog::jalali::from_days(days) else {
        return escape(&local.format("%Y-%m-%d %H:%M").to_string());
    };
    let time = local.format("%H:%M").to_string();
    let month = usize::from(date.month.saturating_sub(1)).min(11);
    match lang {
        Lang::Fa => format!(
            "{} {} {}، ساعت {}",
            persian(&date.day.to_string()),
            amar_catalog::persian::MONTH_NAMES[month],
            persian(&date.year.to_string()),
            persian(&time)
        ),
        Lang::En => format!("{} {} {}, {time}", date.day, MONTHS_EN[month], date.year),
    }
}

/// A Jalali period key (`1403-07`, `1403Q4`, `1403`) as a reader says it.
pub fn period(key: &str, lang: Lang) -> String {
    let quarter_fa = ["بهار", "تابستان", "پاییز", "زمستان"];
    let quarter_en = ["spring", "summer", "autumn", "winter"];
    if let Some((year, month)) = key.split_once('-')
        && let (Ok(_), Ok(m)) = (year.parse::<i32>(), month.parse::<usize>())
        && (1..=12).contains(&m)
    {
        return match lang {
            Lang::Fa => format!(
                "{} {}",
                amar_catalog::persian::MONTH_NAMES[m - 1],
                persian(year)
            ),
            Lang::En => format!("{} {year}", MONTHS_EN[m - 1]),
        };
    }
    if let Some((year, q)) = key.split_once('Q')
        && let (Ok(_), Ok(q)) = (year.parse::<i32>(), q.parse::<usize>())
        && (1..=4).contains(&q)
    {
        return match lang {
            Lang::Fa => format!("{} {}", quarter_fa[q - 1], persian(year)),
            Lang::En => format!("Q{q} ({}) {year}", quarter_en[q - 1]),
        };
    }
    digits(&escape(key), lang)
}

/// A unit of measure in the page's language.
pub fn unit_name(unit: &str, lang: Lang) -> String {
    let fa = match unit {
        "persons" => "نفر",
        "percent" => "درصد",
        "rials" => "ریال",
        "claims" => "پرونده",
        "per 100 insured" => "به ازای ۱۰۰ بیمه‌شده",
        "per 1,000 insured" => "به ازای ۱٬۰۰۰ بیمه‌شده",
        other => return escape(other),
    };
    match lang {
        Lang::Fa => fa.to_string(),
        Lang::En => escape(unit),
    }
}

/// A department's name.
pub fn department(name: &str, lang: Lang) -> String {
    let fa = match name {
        "insurance" => "بیمه",
        "pension" => "مستمری",
        "health" => "درمان",
        "finance" => "مالی",
        other => return escape(other),
    };
    match lang {
        Lang::Fa => fa.to_string(),
        Lang::En => {
            let mut c = name.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    }
}

/// Periodicity in words.
pub fn periodicity(p: &str, lang: Lang) -> String {
    crate::display::display(Some(p), lang)
}

/// A status against the norm: its class, symbol and words (colour is never the only
/// carrier: each status has its own symbol and text).
pub fn status(status: &str, lang: Lang) -> (&'static str, &'static str, &'static str) {
    match status {
        "on target" => ("on", "✓", t(lang, "در هدف", "On target")),
        "warning" => ("warn", "!", t(lang, "هشدار", "Warning")),
        "off target" => ("off", "✗", t(lang, "دور از هدف", "Off target")),
        "suppressed" => ("sup", "◼", t(lang, "پنهان", "Suppressed")),
        _ => ("none", "–", t(lang, "بدون مقدار", "No value")),
    }
}

/// A status as a badge.
pub fn status_badge(s: &str, lang: Lang) -> String {
    let (class, symbol, words) = status(s, lang);
    format!(
        "<span class=\"status {class}\"><span class=\"sym\" aria-hidden=\"true\">{symbol}</span>{words}</span>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_periods_read_in_each_language() {
        assert_eq!(number(1234567.0, 0, Lang::En), "1,234,567");
        assert_eq!(number(94.5, 1, Lang::En), "94.5");
        assert_eq!(number(94.0, 1, Lang::En), "94");
        assert_eq!(number(-1234.25, 2, Lang::En), "-1,234.25");
        assert_eq!(
            number(1234.5, 1, Lang::Fa),
            "<bdi dir=\"ltr\">۱٬۲۳۴٫۵</bdi>"
        );
        assert_eq!(period("1403-07", Lang::Fa), "مهر ۱۴۰۳");
        assert_eq!(period("1403-07", Lang::En), "Mehr 1403");
        assert_eq!(period("1403Q4", Lang::Fa), "زمستان ۱۴۰۳");
        assert_eq!(period("1403Q4", Lang::En), "Q4 (winter) 1403");
        assert_eq!(period("<x>", Lang::En), "&lt;x&gt;");
    }

    #[test]
    fn times_are_jalali_in_tehran() {
        // 2024-03-19 20:30 UTC is 1 Farvardin 1403 (20 March 2024), 00:00 in Tehran (UTC+3:30).
        let at = DateTime::parse_from_rfc3339("2024-03-19T20:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(when(&at, Lang::En), "1 Farvardin 1403, 00:00");
        assert_eq!(when(&at, Lang::Fa), "۱ فروردین ۱۴۰۳، ساعت ۰۰:۰۰");
    }

    #[test]
    fn links_keep_the_language() {
        let frame = Frame {
            lang: Lang::En,
            path: "/units".into(),
            query: vec![("sort".into(), "rank".into())],
            user: None,
            staff: false,
            csrf: None,
            notice: None,
            name: ("نام".into(), "Name".into()),
        };
        assert_eq!(frame.link("/indicators/x"), "/indicators/x?lang=en");
        assert_eq!(frame.link("/x?a=1"), "/x?a=1&lang=en");
        assert_eq!(frame.switch(), "/units?sort=rank");
        let fa = Frame {
            lang: Lang::Fa,
            ..frame
        };
        assert_eq!(fa.switch(), "/units?sort=rank&lang=en");
        let page = fa.render("<t>", "<p>body</p>");
        assert!(page.contains("<html lang=\"fa\" dir=\"rtl\">"));
        assert!(page.contains("&lt;t&gt;"));
    }
}
