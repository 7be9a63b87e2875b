//! Persian text: digits between Latin, Persian and Arabic-Indic, `fa_normalize` (one
//! spelling of names typed in different systems) and `fa_fold` (a key for search and
//! joins).

const PERSIAN_ZERO: u32 = '۰' as u32;
const ARABIC_ZERO: u32 = '٠' as u32;

pub(super) fn persian_digits(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(PERSIAN_ZERO + (c as u32 - '0' as u32)).unwrap_or(c),
            '٠'..='٩' => char::from_u32(PERSIAN_ZERO + (c as u32 - ARABIC_ZERO)).unwrap_or(c),
            _ => c,
        })
        .collect()
}

pub(super) fn latin_digits(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '۰'..='۹' => char::from_u32('0' as u32 + (c as u32 - PERSIAN_ZERO)).unwrap_or(c),
            '٠'..='٩' => char::from_u32('0' as u32 + (c as u32 - ARABIC_ZERO)).unwrap_or(c),
            _ => c,
        })
        .collect()
}

const ZWNJ: char = '\u{200C}';

fn is_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{00A0}' | '\u{2007}' | '\u{202F}' | '\u{3000}')
}

/// Zero-width characters that stand for a ZWNJ when typed between letters.
fn is_zwnj_like(c: char) -> bool {
    matches!(c, ZWNJ | '\u{200B}' | '\u{00AD}' | '\u{FEFF}')
}

fn is_haraka(c: char) -> bool {
    matches!(c, '\u{064B}'..='\u{0652}' | '\u{0670}')
}

pub fn fa_normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // What the last written character was: a space, a ZWNJ, or other.
    let mut pending_space = false;
    let mut pending_zwnj = false;
    for c in text.chars() {
        let c = match c {
            'ي' | 'ى' => 'ی',
            'ك' => 'ک',
            '٠'..='٩' => char::from_u32(PERSIAN_ZERO + (c as u32 - ARABIC_ZERO)).unwrap_or(c),
            _ => c,
        };
        if c == '\u{0640}' || is_haraka(c) || matches!(c, '\u{200E}' | '\u{200F}') {
            continue;
        }
        if is_space(c) {
            pending_space = true;
            continue;
        }
        if is_zwnj_like(c) {
            pending_zwnj = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        } else if pending_zwnj && !pending_space && !out.is_empty() {
            out.push(ZWNJ);
        }
        pending_space = false;
        pending_zwnj = false;
        out.push(c);
    }
    out
}

pub fn fa_fold(text: &str) -> String {
    let normalized = fa_normalize(text);
    let mut out = String::with_capacity(normalized.len());
    for c in normalized.chars() {
        match c {
            ' ' | ZWNJ | '\u{0653}'..='\u{0655}' => {}
            'ۀ' | 'ة' | 'ه' => out.push('ه'),
            'أ' | 'إ' | 'آ' | 'ٱ' => out.push('ا'),
            'ؤ' => out.push('و'),
            'ئ' => out.push('ی'),
            '۰'..='۹' => {
                out.push(char::from_u32('0' as u32 + (c as u32 - PERSIAN_ZERO)).unwrap_or(c))
            }
            c if c.is_ascii_uppercase() => out.push(c.to_ascii_lowercase()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persian_text() {
        assert_eq!(persian_digits("1403/07"), "۱۴۰۳/۰۷");
        assert_eq!(latin_digits("۱۴۰۳/٠٧"), "1403/07");
        // Arabic yeh and kaf, tatweel, harakat, doubled spaces and a ZWSP.
        assert_eq!(fa_normalize("  علي  كريمـــي "), "علی کریمی");
        assert_eq!(fa_normalize("مُحَمَّد"), "محمد");
        assert_eq!(fa_normalize("می\u{200B}خواهم"), "می\u{200C}خواهم");
        assert_eq!(fa_normalize("می \u{200C}خواهم"), "می خواهم");
        assert_eq!(fa_normalize("خانه\u{00A0}ها"), "خانه ها");
        // Folding: spaces and ZWNJ gone, ۀ هٔ ة to ه.
        assert_eq!(fa_fold("خانه‌ها"), fa_fold("خانه ها"));
        assert_eq!(fa_fold("خانهٔ من"), fa_fold("خانۀ من"));
        assert_eq!(fa_fold("خانۀ من"), "خانهمن");
        assert_eq!(fa_fold("فاطمة"), "فاطمه");
        assert_eq!(fa_fold("علي كريمي"), fa_fold("علی کریمی"));
        assert_eq!(fa_fold("Ali ۱۲"), "ali12");
    }
}
