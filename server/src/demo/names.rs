//! Persian reference data for the demo: Iran's 31 provinces and the names people,
//! employers and providers carry. Text uses Persian ی (U+06CC) and ک (U+06A9); a test
//! checks that no Arabic ي or ك slipped in.

/// A province: the Statistical Centre of Iran's code, Persian and English names, its
/// centre, and its population in millions (2016 census, rounded) for realistic weights.
pub struct Province {
    pub code: i16,
    pub name_fa: &'static str,
    pub name_en: &'static str,
    pub center_fa: &'static str,
    pub population_m: f64,
}

pub const PROVINCES: [Province; 31] = [
    Province {
        code: 0,
        name_fa: "مرکزی",
        name_en: "Markazi",
        center_fa: "اراک",
        population_m: 1.43,
    },
    Province {
        code: 1,
        name_fa: "گیلان",
        name_en: "Gilan",
        center_fa: "رشت",
        population_m: 2.53,
    },
    Province {
        code: 2,
        name_fa: "مازندران",
        name_en: "Mazandaran",
        center_fa: "ساری",
        population_m: 3.28,
    },
    Province {
        code: 3,
        name_fa: "آذربایجان شرقی",
        name_en: "East Azerbaijan",
        center_fa: "تبریز",
        population_m: 3.91,
    },
    Province {
        code: 4,
        name_fa: "آذربایجان غربی",
        name_en: "West Azerbaijan",
        center_fa: "ارومیه",
        population_m: 3.27,
    },
    Province {
        code: 5,
        name_fa: "کرمانشاه",
        name_en: "Kermanshah",
        center_fa: "کرمانشاه",
        population_m: 1.95,
    },
    Province {
        code: 6,
        name_fa: "خوزستان",
        name_en: "Khuzestan",
        center_fa: "اهواز",
        population_m: 4.71,
    },
    Province {
        code: 7,
        name_fa: "فارس",
        name_en: "Fars",
        center_fa: "شیراز",
        population_m: 4.85,
    },
    Province {
        code: 8,
        name_fa: "کرمان",
        name_en: "Kerman",
        center_fa: "کرمان",
        population_m: 3.16,
    },
    Province {
        code: 9,
        name_fa: "خراسان رضوی",
        name_en: "Razavi Khorasan",
        center_fa: "مشهد",
        population_m: 6.43,
    },
    Province {
        code: 10,
        name_fa: "اصفهان",
        name_en: "Isfahan",
        center_fa: "اصفهان",
        population_m: 5.12,
    },
    Province {
        code: 11,
        name_fa: "سیستان و بلوچستان",
        name_en: "Sistan and Baluchestan",
        center_fa: "زاهدان",
        population_m: 2.78,
    },
    Province {
        code: 12,
        name_fa: "کردستان",
        name_en: "Kurdistan",
        center_fa: "سنندج",
        population_m: 1.60,
    },
    Province {
        code: 13,
        name_fa: "همدان",
        name_en: "Hamadan",
        center_fa: "همدان",
        population_m: 1.74,
    },
    Province {
        code: 14,
        name_fa: "چهارمحال و بختیاری",
        name_en: "Chaharmahal and Bakhtiari",
        center_fa: "شهرکرد",
        population_m: 0.95,
    },
    Province {
        code: 15,
        name_fa: "لرستان",
        name_en: "Lorestan",
        center_fa: "خرم‌آباد",
        population_m: 1.76,
    },
    Province {
        code: 16,
        name_fa: "ایلام",
        name_en: "Ilam",
        center_fa: "ایلام",
        population_m: 0.58,
    },
    Province {
        code: 17,
        name_fa: "کهگیلویه و بویراحمد",
        name_en: "Kohgiluyeh and Boyer-Ahmad",
        center_fa: "یاسوج",
        population_m: 0.71,
    },
    Province {
        code: 18,
        name_fa: "بوشهر",
        name_en: "Bushehr",
        center_fa: "بوشهر",
        population_m: 1.16,
    },
    Province {
        code: 19,
        name_fa: "زنجان",
        name_en: "Zanjan",
        center_fa: "زنجان",
        population_m: 1.06,
    },
    Province {
        code: 20,
        name_fa: "سمنان",
        name_en: "Semnan",
        center_fa: "سمنان",
        population_m: 0.70,
    },
    Province {
        code: 21,
        name_fa: "یزد",
        name_en: "Yazd",
        center_fa: "یزد",
        population_m: 1.14,
    },
    Province {
        code: 22,
        name_fa: "هرمزگان",
        name_en: "Hormozgan",
        center_fa: "بندرعباس",
        population_m: 1.78,
    },
    Province {
        code: 23,
        name_fa: "تهران",
        name_en: "Tehran",
        center_fa: "تهران",
        population_m: 13.27,
    },
    Province {
        code: 24,
        name_fa: "اردبیل",
        name_en: "Ardabil",
        center_fa: "اردبیل",
        population_m: 1.27,
    },
    Province {
        code: 25,
        name_fa: "قم",
        name_en: "Qom",
        center_fa: "قم",
        population_m: 1.29,
    },
    Province {
        code: 26,
        name_fa: "قزوین",
        name_en: "Qazvin",
        center_fa: "قزوین",
        population_m: 1.27,
    },
    Province {
        code: 27,
        name_fa: "گلستان",
        name_en: "Golestan",
        center_fa: "گرگان",
        population_m: 1.87,
    },
    Province {
        code: 28,
        name_fa: "خراسان شمالی",
        name_en: "North Khorasan",
        center_fa: "بجنورد",
        population_m: 0.86,
    },
    Province {
        code: 29,
        name_fa: "خراسان جنوبی",
        name_en: "South Khorasan",
        center_fa: "بیرجند",
        population_m: 0.77,
    },
    Province {
        code: 30,
        name_fa: "البرز",
        name_en: "Alborz",
        center_fa: "کرج",
        population_m: 2.71,
    },
];

/// Economic sectors (ISIC Rev.4 sections) with their share of insured workers.
pub const SECTORS: [(&str, &str, &str, f64); 10] = [
    ("A", "کشاورزی", "Agriculture", 0.06),
    ("B", "معدن", "Mining", 0.02),
    ("C", "صنعت", "Manufacturing", 0.27),
    ("F", "ساختمان", "Construction", 0.12),
    ("G", "بازرگانی", "Wholesale and retail trade", 0.18),
    ("H", "حمل و نقل", "Transportation", 0.08),
    ("I", "هتلداری و رستوران", "Accommodation and food", 0.04),
    ("P", "آموزش", "Education", 0.06),
    ("Q", "بهداشت و درمان", "Health", 0.07),
    ("S", "سایر خدمات", "Other services", 0.10),
];

pub const MALE_NAMES: [&str; 24] = [
    "محمد",
    "علی",
    "حسین",
    "رضا",
    "مهدی",
    "امیر",
    "حسن",
    "سعید",
    "مصطفی",
    "جواد",
    "احمد",
    "مجید",
    "حمید",
    "محسن",
    "ابوالفضل",
    "یوسف",
    "کریم",
    "بهروز",
    "فرهاد",
    "کامران",
    "یاسر",
    "کیوان",
    "امیرحسین",
    "محمدرضا",
];

pub const FEMALE_NAMES: [&str; 24] = [
    "فاطمه",
    "زهرا",
    "مریم",
    "معصومه",
    "سمیه",
    "زینب",
    "سارا",
    "نرگس",
    "الهام",
    "لیلا",
    "مهسا",
    "نازنین",
    "کوثر",
    "ریحانه",
    "فریبا",
    "شیرین",
    "پریسا",
    "مینا",
    "ساناز",
    "نیلوفر",
    "کیمیا",
    "یاسمن",
    "فاطمه‌زهرا",
    "یگانه",
];

/// Family names; some carry a zero-width non-joiner (U+200C), as Persian spelling does.
pub const LAST_NAMES: [&str; 36] = [
    "محمدی",
    "حسینی",
    "احمدی",
    "رضایی",
    "موسوی",
    "کریمی",
    "جعفری",
    "رحیمی",
    "صادقی",
    "کاظمی",
    "هاشمی",
    "قاسمی",
    "عباسی",
    "مرادی",
    "نوری",
    "اکبری",
    "زارعی",
    "سلیمانی",
    "یزدانی",
    "کیانی",
    "شریفی",
    "ملکی",
    "طاهری",
    "فراهانی",
    "تهرانی",
    "شیرازی",
    "اصفهانی",
    "کرمانی",
    "رستمی",
    "بهرامی",
    "علی‌پور",
    "حسن‌زاده",
    "محمدی‌نیا",
    "کاظم‌پور",
    "نیک‌نام",
    "یوسفی",
];

/// Words employers are named after.
pub const EMPLOYER_WORDS: [&str; 20] = [
    "پارس",
    "البرز",
    "سپاهان",
    "آریا",
    "کوثر",
    "نوین",
    "پیشگامان",
    "ایران",
    "خلیج فارس",
    "کاوه",
    "زاگرس",
    "دماوند",
    "مهر",
    "کیمیا",
    "سبلان",
    "یکتا",
    "آفتاب",
    "نیکان",
    "کارون",
    "سینا",
];

pub const EMPLOYER_KINDS: [&str; 6] = ["شرکت", "کارخانه", "فروشگاه", "کارگاه", "مؤسسه", "تعاونی"];

pub const PENSION_TYPES: [(&str, f64); 3] = [
    ("بازنشستگی", 0.78),
    ("ازکارافتادگی", 0.07),
    ("بازماندگان", 0.15),
];

pub const SERVICE_TYPES: [(&str, f64); 6] = [
    ("سرپایی", 0.42),
    ("دارو", 0.28),
    ("بستری", 0.10),
    ("آزمایشگاه", 0.12),
    ("دندانپزشکی", 0.05),
    ("توانبخشی", 0.03),
];

pub const CLAIM_STATUSES: [(&str, f64); 3] = [
    ("تایید شده", 0.86),
    ("رد شده", 0.06),
    ("در حال بررسی", 0.08),
];

pub const PROVIDER_KINDS: [&str; 5] = ["بیمارستان", "درمانگاه", "داروخانه", "آزمایشگاه", "مطب"];

/// Persian digits for names like «شعبه ۳ مشهد».
pub fn persian_digits(n: u64) -> String {
    n.to_string()
        .chars()
        .map(|c| char::from_u32('۰' as u32 + c.to_digit(10).unwrap_or(0)).unwrap_or(c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persian_text_has_no_arabic_yeh_or_kaf() {
        let mut all: Vec<&str> = vec![];
        for p in &PROVINCES {
            all.push(p.name_fa);
            all.push(p.center_fa);
        }
        all.extend(SECTORS.iter().map(|s| s.1));
        all.extend(MALE_NAMES);
        all.extend(FEMALE_NAMES);
        all.extend(LAST_NAMES);
        all.extend(EMPLOYER_WORDS);
        all.extend(EMPLOYER_KINDS);
        all.extend(PENSION_TYPES.iter().map(|p| p.0));
        all.extend(SERVICE_TYPES.iter().map(|p| p.0));
        all.extend(CLAIM_STATUSES.iter().map(|p| p.0));
        all.extend(PROVIDER_KINDS);
        for text in all {
            assert!(
                !text.contains('\u{064A}') && !text.contains('\u{0643}'),
                "{text}"
            );
        }
        let codes: Vec<i16> = PROVINCES.iter().map(|p| p.code).collect();
        assert_eq!(codes, (0..31).collect::<Vec<_>>());
        assert_eq!(PROVINCES[23].name_en, "Tehran");
        assert_eq!(persian_digits(305), "۳۰۵");
    }
}
