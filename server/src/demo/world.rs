//! The people and organisations of the demo, generated once and shared by the three
//! departments' datasets (so that health claims name insured persons who exist).

use amar_catalog::jalali::JalaliDate;
use chrono::NaiveDate;

use super::names::{self, PROVINCES};
use super::rng::Rng;

/// Monthly minimum wage in rials, by Jalali year (Supreme Labour Council).
pub fn minimum_wage(jalali_year: i32) -> i64 {
    match jalali_year {
        ..=1402 => 53_082_000,
        _ => 71_661_840,
    }
}

/// The contribution rate on wages: 7% employee, 20% employer, 3% unemployment insurance.
pub const CONTRIBUTION_RATE: f64 = 0.30;

/// The Jalali months the demo covers, 1402/01 to 1403/12, as (Jalali, first Gregorian day).
pub fn periods() -> Vec<(JalaliDate, NaiveDate)> {
    let mut out = vec![];
    for year in [1402, 1403] {
        for month in 1..=12u8 {
            let j = JalaliDate::new(year, month, 1).expect("valid Jalali month start");
            let g = j.to_gregorian().expect("in range");
            out.push((j, g));
        }
    }
    out
}

pub struct Branch {
    pub code: i32,
    pub province: usize,
    pub name_fa: String,
    pub opened: NaiveDate,
}

pub struct Employer {
    pub id: i64,
    pub name_fa: String,
    pub branch: usize,
    pub sector: usize,
    pub registered: NaiveDate,
    pub workforce: i32,
}

pub struct Person {
    pub id: i64,
    pub national_id: String,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub female: bool,
    pub birth_date: NaiveDate,
    pub employer: usize,
    /// Index of the first and one past the last period with a contribution.
    pub months: (usize, usize),
    /// Monthly wage as a multiple of the minimum wage.
    pub wage_factor: f64,
}

pub struct World {
    pub branches: Vec<Branch>,
    pub employers: Vec<Employer>,
    pub persons: Vec<Person>,
}

/// A ten-digit Iranian national id with a valid check digit.
pub fn national_id(rng: &mut Rng) -> String {
    let digits: Vec<u32> = (0..9).map(|_| rng.below(10) as u32).collect();
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| d * (10 - i as u32))
        .sum();
    let r = sum % 11;
    let check = if r < 2 { r } else { 11 - r };
    digits
        .iter()
        .chain(std::iter::once(&check))
        .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
        .collect()
}

/// Checks a national id's check digit (used by the tests and by validation rules).
pub fn national_id_is_valid(id: &str) -> bool {
    let digits: Vec<u32> = id.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 10 || id.len() != 10 {
        return false;
    }
    let sum: u32 = digits[..9]
        .iter()
        .enumerate()
        .map(|(i, d)| d * (10 - i as u32))
        .sum();
    let r = sum % 11;
    digits[9] == if r < 2 { r } else { 11 - r }
}

pub fn random_date(rng: &mut Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days().max(1) as u64;
    from + chrono::Duration::days(rng.below(span) as i64)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid calendar date")
}

impl World {
    pub fn generate(scale: f64) -> World {
        let mut rng = Rng::new(0x414D_4152); // "AMAR"
        let weights: Vec<f64> = PROVINCES.iter().map(|p| p.population_m).collect();

        // Branches: about one per 250,000 people, at least three per province.
        let mut branches = vec![];
        for (p, province) in PROVINCES.iter().enumerate() {
            let count = ((province.population_m * 4.0).round() as usize).max(3);
            for n in 1..=count {
                branches.push(Branch {
                    code: province.code as i32 * 100 + n as i32,
                    province: p,
                    name_fa: format!(
                        "شعبه {} {}",
                        names::persian_digits(n as u64),
                        province.center_fa
                    ),
                    opened: random_date(&mut rng, date(1975, 1, 1), date(2020, 1, 1)),
                });
            }
        }
        let branches_of: Vec<Vec<usize>> = (0..PROVINCES.len())
            .map(|p| {
                (0..branches.len())
                    .filter(|b| branches[*b].province == p)
                    .collect()
            })
            .collect();

        let sector_weights: Vec<f64> = names::SECTORS.iter().map(|s| s.3).collect();
        let employer_count = ((12_000.0 * scale) as usize).max(50);
        let mut employers = Vec::with_capacity(employer_count);
        for i in 0..employer_count {
            let province = rng.weighted(&weights);
            let branch = *rng.pick(&branches_of[province]);
            let name_fa = format!(
                "{} {} {}",
                rng.pick(&names::EMPLOYER_KINDS),
                rng.pick(&names::EMPLOYER_WORDS),
                rng.pick(&names::LAST_NAMES)
            );
            employers.push(Employer {
                id: 500_000 + i as i64,
                name_fa,
                branch,
                sector: rng.weighted(&sector_weights),
                registered: random_date(&mut rng, date(1990, 1, 1), date(2023, 1, 1)),
                workforce: (rng.lognormal(1.2) * 6.0).ceil() as i32,
            });
        }

        let person_count = ((52_000.0 * scale) as usize).max(200);
        let mut persons = Vec::with_capacity(person_count);
        for i in 0..person_count {
            let female = rng.chance(0.19);
            let first_name = if female {
                *rng.pick(&names::FEMALE_NAMES)
            } else {
                *rng.pick(&names::MALE_NAMES)
            };
            let months = if rng.chance(0.25) {
                (0, 24)
            } else {
                let start = rng.below(24) as usize;
                let len = 1 + rng.below((24 - start) as u64) as usize;
                (start, start + len)
            };
            persons.push(Person {
                id: 1_000_000 + i as i64,
                national_id: national_id(&mut rng),
                first_name,
                last_name: names::LAST_NAMES[rng.below(names::LAST_NAMES.len() as u64) as usize],
                female,
                birth_date: random_date(&mut rng, date(1960, 1, 1), date(2005, 1, 1)),
                employer: rng.below(employers.len() as u64) as usize,
                months,
                wage_factor: (0.85 + rng.lognormal(0.55) * 0.6).min(12.0),
            });
        }
        World {
            branches,
            employers,
            persons,
        }
    }

    pub fn province_of_employer(&self, e: usize) -> usize {
        self.branches[self.employers[e].branch].province
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_ids_carry_valid_check_digits() {
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            let id = national_id(&mut rng);
            assert!(national_id_is_valid(&id), "{id}");
        }
        // A published example of a valid id.
        assert!(national_id_is_valid("0499370899"));
        assert!(!national_id_is_valid("0499370898"));
    }

    #[test]
    fn periods_start_on_jalali_month_starts() {
        let p = periods();
        assert_eq!(p.len(), 24);
        assert_eq!(p[0].1, date(2023, 3, 21));
        assert_eq!(p[12].1, date(2024, 3, 20));
        assert_eq!(p[23].1, date(2025, 2, 19));
    }

    #[test]
    fn the_world_is_deterministic() {
        let a = World::generate(0.01);
        let b = World::generate(0.01);
        assert_eq!(a.persons.len(), b.persons.len());
        assert_eq!(a.persons[7].national_id, b.persons[7].national_id);
        assert_eq!(a.employers[3].name_fa, b.employers[3].name_fa);
    }
}
