//! What lifetime value and the model fits cost, per call (README.md, "Lifetime
//! value and model fits").
//!
//! `cargo bench --bench clv`:
//! - `clv/expected_purchases/*`: one conditional expectation over 52 weeks
//!   (one hypergeometric series) for a customer with 2 or 200 repeat
//!   purchases, and for a new customer (T = 0, the slowest series), also
//!   with alpha = 0.01 (where the connection formula to 1 - z takes over);
//! - `clv/lifetime_value_12_months`: lifetimes' default horizon (twelve
//!   months, thirteen series, discounted);
//! - `clv/log_likelihood`: one customer's MBG/NBD log-likelihood (the
//!   per-customer cost of one step of a fit);
//! - `clv/fit_mbgnbd_2000`: a whole fit of 2,000 customers drawn from
//!   the model with the CDNOW parameters.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use journeyd::config::ChurnModelKind;
use journeyd::engine::clv::{Horizon, PurchaseModel, SpendParams, Summary};
use journeyd::engine::fit::simulate::simulate_purchases;
use journeyd::engine::fit::{fit_purchases, likelihood};

fn model(kind: ChurnModelKind) -> PurchaseModel {
    PurchaseModel {
        kind,
        params: kind.default_params(),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("clv");
    let regular = Summary {
        x: 2.0,
        t_x: 30.43,
        t: 38.86,
    };
    let frequent = Summary {
        x: 200.0,
        t_x: 70.0,
        t: 72.0,
    };
    let new = Summary::default();
    for (name, kind, s) in [
        ("bgnbd_x2", ChurnModelKind::Bgnbd, regular),
        ("mbgnbd_x2", ChurnModelKind::Mbgnbd, regular),
        ("mbgnbd_x200", ChurnModelKind::Mbgnbd, frequent),
        ("mbgnbd_new", ChurnModelKind::Mbgnbd, new),
    ] {
        let m = model(kind);
        g.bench_function(format!("expected_purchases/{name}"), |b| {
            b.iter(|| m.expected_purchases(black_box(&s), black_box(52.0)))
        });
    }
    // A new customer where alpha is far below the horizon: the connection
    // formula instead of the series in z.
    let mut frequent = model(ChurnModelKind::Mbgnbd);
    frequent.params.alpha = 0.01;
    g.bench_function("expected_purchases/mbgnbd_new_alpha_0.01", |b| {
        b.iter(|| frequent.expected_purchases(black_box(&new), black_box(52.0)))
    });
    let m = model(ChurnModelKind::Mbgnbd);
    let h = Horizon::new(12.0 * 4.345, 4.345, 0.01).unwrap();
    g.bench_function("lifetime_value_12_months", |b| {
        b.iter(|| m.lifetime_value(&SpendParams::CDNOW, black_box(&regular), 22.35, &h))
    });
    g.bench_function("log_likelihood", |b| {
        b.iter(|| likelihood::purchases(m.kind, &m.params, black_box(&regular)))
    });
    let data = simulate_purchases(ChurnModelKind::Mbgnbd, &m.params, 2_000, 1);
    g.sample_size(10);
    g.bench_function("fit_mbgnbd_2000", |b| {
        b.iter(|| fit_purchases(ChurnModelKind::Mbgnbd, black_box(&data)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
