//! P(alive) agrees with the published closed forms (docs/configuration.md, `[churn]`) to 1e-9
//! relative, for both models, computed here independently of the engine.

use std::time::Duration;

use journeyd::config::{ChurnConfig, ChurnModelKind, ChurnParams};
use journeyd::engine::churn::{ChurnModel, PurchaseHistory};
use journeyd::model::EventTime;

const TOLERANCE: f64 = 1e-9;
const WEEK_MS: i64 = 7 * 86_400_000;

/// (x, t_x, T) in weeks, with T >= t_x.
const TABLE: &[(u32, f64, f64)] = &[
    (0, 0.0, 0.0),
    (0, 0.0, 1.0),
    (0, 0.0, 13.5),
    (0, 0.0, 52.0),
    (0, 0.0, 520.0),
    (1, 0.0, 0.0),
    (1, 2.0, 2.0),
    (1, 2.0, 30.0),
    (1, 30.0, 38.5),
    (2, 10.0, 10.0),
    (2, 10.0, 13.96),
    (2, 10.0, 26.9),
    (3, 5.0, 78.0),
    (5, 40.0, 41.0),
    (7, 20.0, 100.0),
    (12, 51.0, 52.0),
    (20, 60.0, 200.0),
    (50, 100.0, 104.0),
    (100, 300.0, 400.0),
];

fn mbgnbd_p_alive(p: ChurnParams, x: f64, t_x: f64, t: f64) -> f64 {
    1.0 / (1.0 + p.a / (p.b + x) * ((p.alpha + t) / (p.alpha + t_x)).powf(p.r + x))
}

fn bgnbd_p_alive(p: ChurnParams, x: f64, t_x: f64, t: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    1.0 / (1.0 + p.a / (p.b + x - 1.0) * ((p.alpha + t) / (p.alpha + t_x)).powf(p.r + x))
}

fn model(kind: ChurnModelKind, params: Option<ChurnParams>) -> ChurnModel {
    ChurnModel::new(&ChurnConfig {
        model: kind,
        params,
        ..ChurnConfig::default()
    })
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    let relative = ((actual - expected) / expected).abs();
    assert!(
        relative <= TOLERANCE,
        "{what}: {actual} vs {expected} (relative error {relative:e})"
    );
}

fn check_table(
    kind: ChurnModelKind,
    params: ChurnParams,
    reference: fn(ChurnParams, f64, f64, f64) -> f64,
) {
    let m = model(kind, Some(params));
    for &(x, t_x, t) in TABLE {
        let expected = reference(params, f64::from(x), t_x, t);
        let what = format!("{kind:?} {params:?} x={x} t_x={t_x} T={t}");
        assert_close(m.p_alive(x, t_x, t), expected, &what);
    }
}

#[test]
fn mbgnbd_matches_the_closed_form() {
    let cdnow = ChurnModelKind::Mbgnbd.default_params();
    check_table(ChurnModelKind::Mbgnbd, cdnow, mbgnbd_p_alive);
    let custom = ChurnParams {
        r: 1.7,
        alpha: 0.8,
        a: 2.5,
        b: 0.3,
    };
    check_table(ChurnModelKind::Mbgnbd, custom, mbgnbd_p_alive);
}

#[test]
fn bgnbd_matches_the_closed_form() {
    let cdnow = ChurnModelKind::Bgnbd.default_params();
    check_table(ChurnModelKind::Bgnbd, cdnow, bgnbd_p_alive);
    let custom = ChurnParams {
        r: 0.1,
        alpha: 12.0,
        a: 0.4,
        b: 5.0,
    };
    check_table(ChurnModelKind::Bgnbd, custom, bgnbd_p_alive);
}

#[test]
fn hand_computed_values_with_the_cdnow_parameters() {
    let mbgnbd = model(ChurnModelKind::Mbgnbd, None);
    let bgnbd = model(ChurnModelKind::Bgnbd, None);
    // x = 0 at the first purchase: 1 / (1 + a / b) = 1.614 / 2.505.
    assert_close(
        mbgnbd.p_alive(0, 0.0, 0.0),
        0.644_311_377_245_509,
        "mbgnbd x=0",
    );
    // bgnbd never lets a one-time buyer die.
    assert_eq!(bgnbd.p_alive(0, 0.0, 0.0), 1.0);
    assert_eq!(bgnbd.p_alive(0, 0.0, 1e6), 1.0);
    // x = 1, T = t_x: 1 / (1 + a / b) = 2.426 / 3.219.
    assert_close(
        bgnbd.p_alive(1, 7.0, 7.0),
        0.753_650_201_926_064,
        "bgnbd x=1",
    );
    // x = 2, t_x = 10, T = 10: 1 / (1 + 0.891 / 3.614).
    assert_close(
        mbgnbd.p_alive(2, 10.0, 10.0),
        1.0 - 0.197_780_244_173_140_97,
        "mbgnbd x=2",
    );
}

#[test]
fn default_parameters_are_the_cdnow_fits() {
    let m = model(ChurnModelKind::Mbgnbd, None);
    let explicit = model(
        ChurnModelKind::Mbgnbd,
        Some(ChurnParams {
            r: 0.525,
            alpha: 6.183,
            a: 0.891,
            b: 1.614,
        }),
    );
    let b = model(ChurnModelKind::Bgnbd, None);
    let b_explicit = model(
        ChurnModelKind::Bgnbd,
        Some(ChurnParams {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        }),
    );
    for &(x, t_x, t) in TABLE {
        assert_eq!(m.p_alive(x, t_x, t), explicit.p_alive(x, t_x, t));
        assert_eq!(b.p_alive(x, t_x, t), b_explicit.p_alive(x, t_x, t));
    }
}

#[test]
fn assess_measures_time_in_the_configured_unit_from_the_first_purchase() {
    let first = EventTime(1_700_000_000_000);
    for (unit_ms, kind) in [
        (WEEK_MS, ChurnModelKind::Mbgnbd),
        (86_400_000, ChurnModelKind::Bgnbd),
    ] {
        let m = ChurnModel::new(&ChurnConfig {
            model: kind,
            time_unit: Duration::from_millis(unit_ms as u64),
            ..ChurnConfig::default()
        });
        let params = kind.default_params();
        for &(x, t_x, t) in TABLE {
            let h = PurchaseHistory {
                purchases: x + 1,
                first,
                last: first.plus_ms((t_x * unit_ms as f64).round() as i64),
            };
            let now = first.plus_ms((t * unit_ms as f64).round() as i64);
            let expected = match kind {
                ChurnModelKind::Mbgnbd => mbgnbd_p_alive(params, f64::from(x), t_x, t),
                ChurnModelKind::Bgnbd => bgnbd_p_alive(params, f64::from(x), t_x, t),
            };
            let what = format!("{kind:?} unit={unit_ms}ms x={x} t_x={t_x} T={t}");
            assert_close(m.assess(&h, 0.0, false, now).p_alive, expected, &what);
        }
    }
}
