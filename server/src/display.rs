//! How values read in each language, for every page Amar writes (the quarterly
//! report, the portal): Persian first, right to left, with Persian digits and
//! separators, numbers kept left to right inside a Persian line; English by choice.
//! Everything written into HTML passes through [`escape`].

/// A page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Fa,
    En,
}

impl Lang {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text.trim() {
            "fa" => Ok(Lang::Fa),
            "en" => Ok(Lang::En),
            other => anyhow::bail!("{other}: the languages are fa and en"),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fa => "fa",
            Lang::En => "en",
        }
    }
}

/// Text made safe for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn pick(lang: Lang, pair: (&str, &str)) -> String {
    match lang {
        Lang::Fa => pair.0.to_string(),
        Lang::En => pair.1.to_string(),
    }
}

/// Digits in Persian, with the Persian decimal and thousands separators.
pub fn persian(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32('۰' as u32 + (c as u32 - '0' as u32)).unwrap_or(c),
            '.' => '٫',
            ',' => '٬',
            c => c,
        })
        .collect()
}

/// Whether a value is a number or a date or time (digits and their punctuation).
pub fn numeric(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    body.starts_with(|c: char| c.is_ascii_digit())
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '/' | ':' | ' ' | '-'))
}

/// An integer of five digits or more with thousands separators.
pub fn grouped(text: &str) -> String {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", text),
    };
    if digits.len() < 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return text.to_string();
    }
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// Words the tables hold that a Persian reader reads in Persian.
pub fn word_fa(text: &str) -> Option<&'static str> {
    Some(match text {
        "online" => "برخط",
        "offline" => "برون‌خط",
        "published" => "منتشرشده",
        "superseded" => "جایگزین‌شده",
        "embargoed" => "در انتظار زمان انتشار",
        "planned" => "برنامه‌ریزی‌شده",
        "late" => "با تأخیر",
        "broken" => "مخدوش",
        "revision" => "بازنگری با داده‌ی بهتر",
        "recalculation" => "محاسبه‌ی دوباره",
        "method" => "تغییر روش",
        "correction" => "اصلاح خطا",
        "error" => "خطا",
        "warning" => "هشدار",
        "higher" => "بیشتر بهتر",
        "lower" => "کمتر بهتر",
        "monthly" => "ماهانه",
        "quarterly" => "فصلی",
        "yearly" => "سالانه",
        "percent" => "درصد",
        "persons" => "نفر",
        "rials" => "ریال",
        "(none)" => "(بدون نقش)",
        _ => return None,
    })
}

/// A value as a reader sees it; `None` is SQL's NULL.
pub fn display(value: Option<&str>, lang: Lang) -> String {
    let Some(value) = value else {
        return "—".to_string();
    };
    match (value, lang) {
        ("t", Lang::Fa) => return "بله".into(),
        ("f", Lang::Fa) => return "خیر".into(),
        ("t", Lang::En) => return "yes".into(),
        ("f", Lang::En) => return "no".into(),
        _ => {}
    }
    if numeric(value) {
        let text = escape(&grouped(value));
        return match lang {
            // Kept left to right inside the Persian line, so that a minus sign stays
            // in front of its number.
            Lang::Fa => format!("<bdi dir=\"ltr\">{}</bdi>", persian(&text)),
            Lang::En => text,
        };
    }
    if lang == Lang::Fa
        && let Some(word) = word_fa(value)
    {
        return word.to_string();
    }
    // Codes and names keep their own direction inside the line, and may break
    // after an underscore (long indicator ids in narrow columns).
    format!("<bdi>{}</bdi>", escape(value).replace('_', "_<wbr>"))
}

/// The column headings.
pub fn heading(column: &str) -> (&str, &str) {
    match column {
        "source" => ("منبع", "Source"),
        "kind" => ("نوع", "Kind"),
        "connection" => ("اتصال", "Connection"),
        "healthy" => ("در دسترس", "Reachable"),
        "tables" => ("جدول‌ها", "Tables"),
        "data_taken" => ("زمان برداشت داده", "Data taken"),
        "data_rows" => ("سطرها", "Rows"),
        "probes" => ("بررسی‌ها", "Checks"),
        "availability_pct" => ("دسترس‌پذیری (٪)", "Availability (%)"),
        "max_latency_ms" => ("بیشترین تأخیر (میلی‌ثانیه)", "Longest answer (ms)"),
        "latest_data" => ("تازه‌ترین داده", "Latest data"),
        "oldest_data_hours" => ("کهنه‌ترین داده (ساعت)", "Oldest data (hours)"),
        "department" => ("اداره", "Department"),
        "rule" => ("قاعده", "Rule"),
        "rules" => ("قاعده‌ها", "Rules"),
        "severity" => ("شدت", "Severity"),
        "runs" => ("اجراها", "Runs"),
        "passed" => ("قبول", "Passed"),
        "violated" => ("نقض", "Violated"),
        "could_not_run" => ("اجرانشده", "Could not run"),
        "pass_pct" => ("نرخ قبولی (٪)", "Pass rate (%)"),
        "indicators" => ("شاخص‌ها", "Indicators"),
        "indicator" => ("شاخص", "Indicator"),
        "with_norm" => ("دارای هنجار", "With a norm"),
        "verified" => ("تأییدشده", "Verified"),
        "title_fa" => ("عنوان", "Title (Persian)"),
        "title_en" => ("عنوان انگلیسی", "Title"),
        "unit_fa" | "unit_en" => ("نام واحد", "Unit name"),
        "unit" => ("واحد", "Unit"),
        "periodicity" => ("دوره‌ی تناوب", "Periodicity"),
        "target" => ("هدف", "Target"),
        "direction" => ("جهت", "Direction"),
        "period" => ("دوره", "Period"),
        "scheduled" => ("زمان برنامه", "Scheduled"),
        "status" => ("وضعیت", "Status"),
        "on_time" => ("به‌موقع", "On time"),
        "release_id" => ("شناسه‌ی انتشار", "Release"),
        "old_release_id" => ("انتشار پیشین", "Previous release"),
        "moves" => ("جابه‌جایی‌ها", "Moves"),
        "published" => ("زمان انتشار", "Published"),
        "released_by" => ("منتشرکننده", "Released by"),
        "class" => ("گونه‌ی بازنگری", "Revision class"),
        "reason" => ("دلیل", "Reason"),
        "cells_changed" => ("خانه‌های تغییرکرده", "Cells changed"),
        "score" => ("امتیاز", "Score"),
        "rank" => ("رتبه", "Rank"),
        "on_target" => ("در هدف", "On target"),
        "warning" => ("هشدار", "Warning"),
        "off_target" => ("دور از هدف", "Off target"),
        "previous_period" => ("دوره‌ی پیشین", "Previous period"),
        "previous_score" => ("امتیاز پیشین", "Previous score"),
        "previous_rank" => ("رتبه‌ی پیشین", "Previous rank"),
        "score_change" => ("تغییر امتیاز", "Score change"),
        "rank_change" => ("تغییر رتبه", "Rank change"),
        "front_end" => ("درگاه", "Front end"),
        "statements" => ("دستورها", "Statements"),
        "users" => ("کاربران", "Users"),
        "failed" => ("ناموفق", "Failed"),
        "refused" => ("ردشده", "Refused"),
        "role" => ("نقش", "Role"),
        "schema" => ("طرح", "Schema"),
        "reads" => ("خواندن‌ها", "Reads"),
        "official_reads" => ("از ارقام رسمی", "Of official figures"),
        "user_name" => ("کاربر", "User"),
        "attempts" => ("تلاش‌ها", "Attempts"),
        "first_at" => ("نخستین بار", "First at"),
        "sources" => ("منابع متصل", "Sources connected"),
        "online_sources" => ("منابع برخط", "Online sources"),
        "validation_runs" => ("اجرای قواعد اعتبارسنجی", "Validation runs"),
        "validation_pass_pct" => ("نرخ قبولی اعتبارسنجی (٪)", "Validation pass rate (%)"),
        "indicators_with_norm" => ("شاخص‌های دارای هنجار", "Indicators with a norm"),
        "indicators_verified" => ("شاخص‌های تأییدشده", "Indicators verified"),
        "releases_published" => ("انتشارهای فصل", "Releases in the quarter"),
        "revisions" => ("بازنگری‌ها", "Revisions"),
        "refused_statements" => ("دستورهای ردشده", "Statements refused"),
        other => (other, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_their_language_writes_them() {
        assert_eq!(display(Some("1234567"), Lang::En), "1,234,567");
        let fa = |v: &str| display(Some(v), Lang::Fa);
        assert_eq!(fa("1234567"), "<bdi dir=\"ltr\">۱٬۲۳۴٬۵۶۷</bdi>");
        assert_eq!(fa("97.5"), "<bdi dir=\"ltr\">۹۷٫۵</bdi>");
        assert_eq!(fa("-7.1"), "<bdi dir=\"ltr\">-۷٫۱</bdi>");
        assert_eq!(
            fa("1405/09/15 14:30"),
            "<bdi dir=\"ltr\">۱۴۰۵/۰۹/۱۵ ۱۴:۳۰</bdi>"
        );
        assert_eq!(display(Some("-12"), Lang::En), "-12");
        assert_eq!(display(None, Lang::Fa), "—");
        assert_eq!(display(Some("t"), Lang::Fa), "بله");
        assert_eq!(display(Some("published"), Lang::Fa), "منتشرشده");
        assert_eq!(display(Some("published"), Lang::En), "<bdi>published</bdi>");
        assert_eq!(
            display(Some("<script>"), Lang::En),
            "<bdi>&lt;script&gt;</bdi>"
        );
        // A code with letters keeps its digits.
        assert_eq!(display(Some("1403Q4-2"), Lang::Fa), "<bdi>1403Q4-2</bdi>");
    }
}
