//! The embedded demo: a deterministic synthetic dataset of a social-security
//! organisation, spread over three departments of different kinds so that the demo is
//! itself federated:
//!
//! | schema      | kind   | tables |
//! |-------------|--------|--------|
//! | `insurance` | SQLite | provinces, branches, economic_sectors, employers, insured_persons, contributions |
//! | `pension`   | Parquet| pensioners, payments (a folder of four files) |
//! | `health`    | CSV    | providers, claims |
//!
//! At scale 1 it holds about a million rows and is written in seconds, on first start,
//! into `<data dir>/demo`. It is written into a temporary folder and renamed into place,
//! so an interrupted start never leaves half a dataset; a later start with the same
//! scale reuses it.

mod health;
mod insurance;
pub mod names;
mod pension;
pub mod releases;
mod rng;
pub mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use amar_connectors::{FilesOptions, Mode, SourceConfig, SourceKind, SqliteOptions};
use amar_policies::UsersFile;
use anyhow::Context;

/// Bump when the generated data changes, so old demo folders are rebuilt.
const GENERATOR_VERSION: u32 = 2;

/// The demo on disk.
#[derive(Debug, Clone)]
pub struct Demo {
    pub dir: PathBuf,
    pub rows: u64,
    /// True when this start generated it (false when an existing one was reused).
    pub generated: bool,
}

impl Demo {
    /// The three demo sources.
    pub fn sources(&self) -> Vec<SourceConfig> {
        vec![
            SourceConfig {
                name: "insurance".into(),
                mode: Mode::Live,
                kind: SourceKind::Sqlite(SqliteOptions {
                    path: self.dir.join("insurance.db"),
                    tables: None,
                }),
                accelerate: false,
            },
            SourceConfig {
                name: "pension".into(),
                mode: Mode::Live,
                kind: SourceKind::Files(FilesOptions {
                    path: self.dir.join("pension"),
                    format: None,
                    has_header: true,
                    delimiter: b',',
                }),
                accelerate: false,
            },
            SourceConfig {
                name: "health".into(),
                mode: Mode::Live,
                kind: SourceKind::Files(FilesOptions {
                    path: self.dir.join("health"),
                    format: None,
                    has_header: true,
                    delimiter: b',',
                }),
                accelerate: false,
            },
        ]
    }
}

fn manifest(scale: f64, rows: u64) -> String {
    format!("generator_version = {GENERATOR_VERSION}\nscale = {scale:?}\nrows = {rows}\n")
}

fn read_manifest(dir: &Path) -> Option<(u32, f64, u64)> {
    let text = std::fs::read_to_string(dir.join("manifest.toml")).ok()?;
    let table: BTreeMap<String, toml::Value> = toml::from_str(&text).ok()?;
    Some((
        table.get("generator_version")?.as_integer()? as u32,
        table.get("scale")?.as_float()?,
        table.get("rows")?.as_integer()? as u64,
    ))
}

/// Makes sure the demo dataset at `scale` is in `<data_dir>/demo`, generating it if needed.
pub fn ensure(data_dir: &Path, scale: f64) -> anyhow::Result<Demo> {
    anyhow::ensure!(
        scale.is_finite() && scale > 0.0 && scale <= 200.0,
        "--demo-scale must be a number above 0 and at most 200, not {scale}"
    );
    let dir = data_dir.join("demo");
    if let Some((version, existing_scale, rows)) = read_manifest(&dir)
        && version == GENERATOR_VERSION
        && existing_scale == scale
    {
        return Ok(Demo {
            dir,
            rows,
            generated: false,
        });
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
    let tmp = data_dir.join(format!(".demo.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    let started = Instant::now();
    let rows = generate(&tmp, scale)
        .with_context(|| format!("generating the demo dataset in {}", tmp.display()))?;
    std::fs::write(tmp.join("manifest.toml"), manifest(scale, rows))?;
    if dir.exists() {
        let old = data_dir.join(format!(".demo.old-{}", std::process::id()));
        std::fs::rename(&dir, &old)?;
        std::fs::rename(&tmp, &dir)?;
        std::fs::remove_dir_all(&old)?;
    } else {
        std::fs::rename(&tmp, &dir)?;
    }
    tracing::info!(rows, seconds = started.elapsed().as_secs_f64(), dir = %dir.display(), "demo dataset generated");
    Ok(Demo {
        dir,
        rows,
        generated: true,
    })
}

fn generate(dir: &Path, scale: f64) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir.join("pension"))?;
    std::fs::create_dir_all(dir.join("health"))?;
    let world = world::World::generate(scale);
    let (a, (b, c)) = std::thread::scope(|s| {
        let insurance = s.spawn(|| insurance::write(&dir.join("insurance.db"), &world, 11));
        let pension = pension::write(&dir.join("pension"), &world, scale, 12);
        let health = health::write(&dir.join("health"), &world, scale, 13);
        let insurance = insurance
            .join()
            .map_err(|_| anyhow::anyhow!("the insurance writer panicked"));
        (insurance, (pension, health))
    });
    Ok(a?? + b? + c?)
}

/// The demo's statistics catalog: ten indicators of a social-security organisation,
/// the glossary they use and validation rules (two of which the demo data violates on
/// purpose: payments to unknown pensioners, and full months below the minimum wage).
pub fn catalog() -> anyhow::Result<amar_catalog::statistics::Definitions> {
    let text = format!("{}\n{}", include_str!("catalog.toml"), provinces_toml());
    Ok(crate::config::definitions::parse(
        &text,
        "server/src/demo/catalog.toml",
    )?)
}

/// The classification of Iran's 31 provinces, by the Statistical Centre of Iran's
/// codes, as a `[[classification]]` entry (the demo's indicators name it).
fn provinces_toml() -> String {
    let mut text = String::from(
        "# ---------------------------------------------------------------- classifications\n\n\
         [[classification]]\nid = \"province\"\ntitle_fa = \"استان\"\ntitle_en = \"Province\"\ncodes = [\n",
    );
    for p in names::PROVINCES {
        text.push_str(&format!(
            "  {{ code = \"{}\", fa = \"{}\", en = \"{}\" }},\n",
            p.code, p.name_fa, p.name_en
        ));
    }
    text.push_str("]\n");
    text
}

/// The demo's users, created in the users file where missing: `admin` (everything),
/// `tehran` (Tehran's rows, national ids masked), `auditor` (the query log),
/// `statistician` (an analyst of the statistics office, who releases figures) and
/// `public` (indicators). Passwords equal user names: for the demo only.
pub fn ensure_users(users_file: &Path) -> anyhow::Result<()> {
    let mut file = UsersFile::load(users_file)?;
    let mut changed = false;
    for (name, roles, attributes) in demo_users() {
        if file.get(name).is_none() {
            file.add(name, roles, attributes, name)?;
            changed = true;
        }
    }
    if changed {
        file.save()?;
    }
    Ok(())
}

fn demo_users() -> Vec<(&'static str, Vec<String>, BTreeMap<String, String>)> {
    vec![
        ("admin", vec!["admin".to_string()], BTreeMap::new()),
        (
            "tehran",
            vec!["analyst".to_string(), "provincial".to_string()],
            BTreeMap::from([("province_code".to_string(), "23".to_string())]),
        ),
        ("auditor", vec!["auditor".to_string()], BTreeMap::new()),
        (
            "statistician",
            vec!["analyst".to_string(), "statistician".to_string()],
            BTreeMap::new(),
        ),
        ("public", vec!["public".to_string()], BTreeMap::new()),
    ]
}

/// The demo's access policy (casbin CSV), written once; edits stick, and the server
/// reloads the file when it changes.
pub const DEMO_POLICY: &str = "\
# Amar demo policy (casbin). Edit and save: the server reloads it within seconds.
#
# Analysts read the three departments' tables; national ids are masked for them.
p, role:analyst, insurance.*, read, allow
p, role:analyst, pension.*, read, allow
p, role:analyst, health.*, read, allow
p2, role:analyst, insurance.insured_persons, national_id, mask, hash
p2, role:analyst, pension.pensioners, national_id, mask, hash
#
# Provincial staff see their own province's rows only.
p3, role:provincial, insurance.contributions, province_code = ${user.province_code}
p3, role:provincial, insurance.insured_persons, province_code = ${user.province_code}
p3, role:provincial, insurance.employers, province_code = ${user.province_code}
p3, role:provincial, insurance.branches, province_code = ${user.province_code}
p3, role:provincial, pension.pensioners, province_code = ${user.province_code}
p3, role:provincial, pension.payments, province_code = ${user.province_code}
p3, role:provincial, health.claims, province_code = ${user.province_code}
p3, role:provincial, health.providers, province_code = ${user.province_code}
#
# Auditors read the query log only.
p, role:auditor, amar.query_log, read, allow
p, role:auditor, amar.query_history, read, allow
p, role:auditor, amar.policy_status, read, allow
#
# Everyone but the public reads the statistics catalog; provincial staff see their
# own province's evaluation (indicator rows are filtered through the tables under them).
p, role:analyst, indicators.*, read, allow
p, role:analyst, amar.indicators, read, allow
p, role:analyst, amar.glossary, read, allow
p, role:analyst, amar.classifications, read, allow
p, role:analyst, amar.indicator_status, read, allow
p, role:analyst, amar.validation_rules, read, allow
p, role:analyst, amar.validation_results, read, allow
p3, role:provincial, amar.indicator_status, unit = CAST(${user.province_code} AS VARCHAR)
#
# The public reads published indicators only, with small cells suppressed.
p, role:public, indicators.*, read, allow
p, role:public, amar.indicators, read, allow
p, role:public, amar.glossary, read, allow
p, role:public, amar.classifications, read, allow
p, role:public, amar.indicator_status, read, allow
#
# Official (released) figures: for analysts and the public, the public in the form
# with small cells suppressed; provincial staff see their own province's cells.
p, role:analyst, official.*, read, allow
p, role:analyst, official_history.*, read, allow
p, role:analyst, amar.releases, read, allow
p, role:analyst, amar.revisions, read, allow
p, role:analyst, amar.release_calendar, read, allow
p, role:public, official.*, read, allow
p, role:public, official_history.*, read, allow
p, role:public, amar.releases, read, allow
p, role:public, amar.revisions, read, allow
p, role:public, amar.release_calendar, read, allow
p3, role:provincial, official.active_insured, province_code = ${user.province_code}
p3, role:provincial, official_history.active_insured, province_code = ${user.province_code}
p3, role:provincial, official.contribution_collection_rate, province_code = ${user.province_code}
p3, role:provincial, official_history.contribution_collection_rate, province_code = ${user.province_code}
p3, role:provincial, official.average_wage, province_code = ${user.province_code}
p3, role:provincial, official_history.average_wage, province_code = ${user.province_code}
p3, role:provincial, official.pensioner_contributor_ratio, province_code = ${user.province_code}
p3, role:provincial, official_history.pensioner_contributor_ratio, province_code = ${user.province_code}
p3, role:provincial, official.average_pension, province_code = ${user.province_code}
p3, role:provincial, official_history.average_pension, province_code = ${user.province_code}
p3, role:provincial, official.claims_per_thousand, province_code = ${user.province_code}
p3, role:provincial, official_history.claims_per_thousand, province_code = ${user.province_code}
p3, role:provincial, official.claim_approval_rate, province_code = ${user.province_code}
p3, role:provincial, official_history.claim_approval_rate, province_code = ${user.province_code}
p3, role:provincial, official.contributions_collected, province_code = ${user.province_code}
p3, role:provincial, official_history.contributions_collected, province_code = ${user.province_code}
p3, role:provincial, official.rehabilitation_claims, province_code = ${user.province_code}
p3, role:provincial, official_history.rehabilitation_claims, province_code = ${user.province_code}
#
# The statistics office releases figures, verifies releases, and sees releases
# under embargo before their time.
p, role:statistician, indicators.*, release, allow
p, role:statistician, amar.releases, release, allow
p, role:statistician, official.*, prerelease, allow
#
# The statistics office reports every quarter on how the directive is carried out
# (amar report quarterly): sources, their probes, scores, and the use of the system.
p, role:statistician, amar.sources, read, allow
p, role:statistician, amar.source_probes, read, allow
p, role:statistician, amar.unit_scores, read, allow
p, role:statistician, amar.query_history, read, allow
";

/// Writes the demo policy unless a policy file is already there.
pub fn ensure_policy(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, DEMO_POLICY)?;
    }
    Ok(())
}
