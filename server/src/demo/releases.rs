//! The demo's release calendar and history, so that a new user sees every state of a
//! release at once: past releases published on time and one late, one revised, one
//! moved with its reason, one prepared and under embargo, and some still planned.
//!
//! Times are counted from the demo's first start (kept in `<data dir>/demo-anchor`),
//! so the calendar and the releases agree across restarts; the embargoed one becomes
//! official three days after that start, by itself. The past releases are made when
//! the demo first starts, as if at their times: their cells are the demo's data as
//! it is (the demo's sources never change).

use std::path::Path;

use amar_catalog::releases::calendar::{Move, Planned};
use amar_catalog::releases::{Request, RevisionClass};
use amar_catalog::statistics::Trigger;
use anyhow::Context;
use chrono::{DateTime, Duration, Utc};

use crate::engine::Engine;

/// The demo's first start, written on that start.
pub fn anchor(data_dir: &Path) -> anyhow::Result<DateTime<Utc>> {
    let path = data_dir.join("demo-anchor");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(t) = DateTime::parse_from_rfc3339(text.trim())
    {
        return Ok(t.with_timezone(&Utc));
    }
    // On the hour in Tehran (UTC+03:30): announced times look like announced times.
    let now = Utc::now().timestamp();
    let anchor = DateTime::from_timestamp(now - (now + 12_600).rem_euclid(3_600), 0)
        .context("the clock is out of range")?;
    std::fs::create_dir_all(data_dir)?;
    std::fs::write(&path, anchor.to_rfc3339()).with_context(|| path.display().to_string())?;
    Ok(anchor)
}

fn names(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|i| i.to_string()).collect()
}

/// The calendar, counted from `anchor`.
pub fn calendar(anchor: DateTime<Utc>) -> Vec<Planned> {
    let day = Duration::days(1);
    let plan = |ids: &[&str], period: &str, at: DateTime<Utc>, moves: Vec<Move>| Planned {
        indicators: names(ids),
        period: period.to_string(),
        at,
        moves,
    };
    let claims = ["claims_per_thousand", "claim_approval_rate"];
    vec![
        plan(&claims, "1403Q3", anchor - day * 75, vec![]),
        plan(
            &["contributions_collected"],
            "1403Q3",
            anchor - day * 70,
            vec![],
        ),
        plan(&claims, "1403Q4", anchor - day * 20, vec![]),
        plan(
            &["contributions_collected"],
            "1403Q4",
            anchor - day * 15,
            vec![Move {
                from: anchor - day * 18,
                reason: "Sistan and Baluchestan's provincial returns arrived late".into(),
            }],
        ),
        plan(&["average_wage"], "1403-12", anchor + day * 3, vec![]),
        plan(
            &["rehabilitation_claims"],
            "1403-12",
            anchor + day * 10,
            vec![],
        ),
        plan(&["active_insured"], "1403-12", anchor + day * 20, vec![]),
    ]
}

/// Makes the demo's releases on its first start (nothing if it has any).
pub async fn seed(engine: &Engine, anchor: DateTime<Utc>) -> anyhow::Result<()> {
    let releases = engine.releases();
    if !releases.all().is_empty() || !releases.broken().is_empty() {
        return Ok(());
    }
    // Releases record whether their indicators' rules passed: run them first.
    engine.statistics().validate(Trigger::Start, None).await;
    let day = Duration::days(1);
    let request = |ids: &[&str], period: &str| Request {
        indicators: names(ids),
        period: period.to_string(),
        publish_at: None,
        class: None,
        reason: None,
        force: None,
        by: "statistician".to_string(),
    };
    let claims = ["claims_per_thousand", "claim_approval_rate"];
    let history = [
        (request(&claims, "1403Q3"), anchor - day * 75, None),
        // A day late.
        (
            request(&["contributions_collected"], "1403Q3"),
            anchor - day * 69,
            None,
        ),
        (request(&claims, "1403Q4"), anchor - day * 20, None),
        (
            request(&["contributions_collected"], "1403Q4"),
            anchor - day * 15,
            None,
        ),
        (
            Request {
                class: Some(RevisionClass::Recalculation),
                reason: Some(
                    "Annual reconciliation of claims with the providers' ledgers; no figure changed"
                        .into(),
                ),
                ..request(&claims, "1403Q4")
            },
            anchor - day * 6,
            None,
        ),
        // Prepared now, official in three days.
        (
            request(&["average_wage"], "1403-12"),
            anchor,
            Some(anchor + day * 3),
        ),
    ];
    for (mut request, at, publish_at) in history {
        request.publish_at = Some(publish_at.unwrap_or(at));
        let what = format!("{} {}", request.indicators.join(", "), request.period);
        releases
            .release_as_of(request, at)
            .await
            .map_err(|e| anyhow::anyhow!("the demo's release of {what}: {e}"))?;
    }
    Ok(())
}
