//! The cost of a policy decision: deciding one table for one user (casbin matching,
//! row-filter templates), cold and cached, and rewriting a plan's scan with the user's
//! row filter.
//!
//! `cargo bench -p amar-policies --bench decision`.

use std::collections::BTreeMap;

use amar_policies::enforce::{Planner, enforce};
use amar_policies::{PolicyStore, ScramVerifier, User};
use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::{LogicalPlan, table_scan};
use datafusion::prelude::{col, lit};

const POLICY: &str = "\
p, role:analyst, insurance.*, read, allow
p, role:analyst, pension.*, read, allow
p, role:analyst, health.*, read, allow
p2, role:analyst, insurance.insured_persons, national_id, mask, hash
p2, role:analyst, pension.pensioners, national_id, mask, hash
p3, role:provincial, insurance.contributions, province_code = ${user.province_code}
p3, role:provincial, insurance.insured_persons, province_code = ${user.province_code}
p3, role:provincial, pension.payments, province_code = ${user.province_code}
p, role:public, indicators.*, read, allow
";

fn tehran() -> User {
    User {
        name: "tehran".into(),
        roles: vec!["analyst".into(), "provincial".into()],
        attributes: BTreeMap::from([("province_code".to_string(), "23".to_string())]),
        verifier: ScramVerifier::from_password("x", b"salt", 4096),
        disabled: false,
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.csv");
    std::fs::write(&path, POLICY).unwrap();
    let user = tehran();
    let store = runtime
        .block_on(PolicyStore::load(
            Some(&path),
            None,
            std::slice::from_ref(&user),
        ))
        .unwrap();
    let mut group = c.benchmark_group("policy");
    group.bench_function("decide_table_cold", |b| {
        b.iter(|| {
            let access = store.for_user(&user);
            assert!(access.table("insurance", "contributions").readable);
        })
    });
    let access = store.for_user(&user);
    group.bench_function("decide_table_cached", |b| {
        b.iter(|| assert!(access.table("insurance", "contributions").readable))
    });
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("province_code", DataType::Int16, false),
        Field::new("wage", DataType::Decimal128(14, 0), false),
    ]);
    let plan: LogicalPlan = table_scan(Some("insurance.contributions"), &schema, None)
        .unwrap()
        .build()
        .unwrap();
    let parse = |_: &str, _: &datafusion::common::DFSchema| Ok(col("province_code").eq(lit(23i16)));
    let definer = |_: &datafusion::logical_expr::TableScan| Ok(None);
    let keep = |_: &datafusion::logical_expr::TableScan, plan| Ok(plan);
    let planner = Planner {
        default_schema: "public",
        definer_schema: "public",
        parse: &parse,
        definer: &definer,
        keep: &keep,
        mask_key: &amar_policies::mask::MaskKey::random(),
    };
    group.bench_function("enforce_scan_with_row_filter", |b| {
        b.iter(|| {
            let (rewritten, report) = enforce(plan.clone(), &access, &planner).unwrap();
            assert_eq!(report.filtered.len(), 1);
            rewritten
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
