use super::simulate::{simulate_purchases, simulate_spend};
use super::*;
use crate::engine::clv::SpendParams;

fn summary(x: f64, t_x: f64, t: f64) -> Summary {
    Summary { x, t_x, t }
}

const BG_CDNOW: ChurnParams = ChurnParams {
    r: 0.243,
    alpha: 4.414,
    a: 0.793,
    b: 2.426,
};

const MBG_CDNOW: ChurnParams = ChurnParams {
    r: 0.525,
    alpha: 6.183,
    a: 0.891,
    b: 1.614,
};

#[test]
fn log_likelihoods_agree_with_lifetimes() {
    // -_negative_log_likelihood(log(params), ...) of lifetimes 0.11.3, one
    // customer at a time.
    let customers = [
        summary(2.0, 30.43, 38.86),
        summary(0.0, 0.0, 38.86),
        summary(1.0, 1.71, 38.86),
        summary(40.0, 70.0, 72.0),
    ];
    let bg = [
        -9.45860630706627,
        -0.5547132764381585,
        -4.469093275032588,
        -70.17715282644548,
    ];
    let mbg = [
        -9.48555131453393,
        -0.5398374635310148,
        -4.460360612584317,
        -70.53733136242526,
    ];
    for (i, s) in customers.iter().enumerate() {
        let got = likelihood::purchases(ChurnModelKind::Bgnbd, &BG_CDNOW, s);
        assert!(
            (got - bg[i]).abs() < 1e-12,
            "bgnbd {s:?}: {got} vs {}",
            bg[i]
        );
        let got = likelihood::purchases(ChurnModelKind::Mbgnbd, &MBG_CDNOW, s);
        assert!(
            (got - mbg[i]).abs() < 1e-12,
            "mbgnbd {s:?}: {got} vs {}",
            mbg[i]
        );
    }
    for (x, m, want) in [
        (2.0, 22.35, -3.551316759731691),
        (1.0, 11.77, -3.737709678740842),
        (10.0, 50.0, -4.861849005909278),
    ] {
        let got = likelihood::spend(&SpendParams::CDNOW, x, m);
        assert!(
            (got - want).abs() < 1e-12,
            "spend x {x} m {m}: {got} vs {want}"
        );
    }
}

/// Standard errors of the log-parameters at `at`: the square roots of the
/// diagonal of the inverse of the observed information (the Hessian of
/// `nll`, by central differences).
fn standard_errors(nll: impl Fn(&[f64]) -> f64, at: &[f64]) -> Vec<f64> {
    let n = at.len();
    let h = 1e-3;
    let shifted = |i: usize, di: f64, j: usize, dj: f64| {
        let mut p = at.to_vec();
        p[i] += di;
        p[j] += dj;
        nll(&p)
    };
    let mut m = vec![vec![0.0; 2 * n]; n];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().take(n).enumerate() {
            *cell = (shifted(i, h, j, h) - shifted(i, h, j, -h) - shifted(i, -h, j, h)
                + shifted(i, -h, j, -h))
                / (4.0 * h * h);
        }
        row[n + i] = 1.0;
    }
    // Gauss-Jordan with partial pivoting.
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))
            .unwrap();
        m.swap(col, pivot);
        let d = m[col][col];
        m[col].iter_mut().for_each(|v| *v /= d);
        for row in 0..n {
            if row != col {
                let f = m[row][col];
                let pivot_row = m[col].clone();
                m[row]
                    .iter_mut()
                    .zip(&pivot_row)
                    .for_each(|(v, p)| *v -= f * p);
            }
        }
    }
    (0..n).map(|i| m[i][n + i].sqrt()).collect()
}

/// Asserts every fitted log-parameter lies within 4 standard errors of
/// the true one, and that the errors are small enough for that to mean
/// something.
fn assert_recovered(names: &[&str], truth: &[f64], fitted: &[f64], se: &[f64]) {
    for i in 0..truth.len() {
        let off = (fitted[i] / truth[i]).ln();
        println!(
            "{}: true {} fitted {:.4} ({:+.2}%, {:.2} standard errors of {:.3})",
            names[i],
            truth[i],
            fitted[i],
            100.0 * (fitted[i] / truth[i] - 1.0),
            off / se[i],
            se[i]
        );
        assert!(se[i] < 0.2, "{}: standard error {}", names[i], se[i]);
        assert!(
            off.abs() < 4.0 * se[i],
            "{}: {} vs {}",
            names[i],
            fitted[i],
            truth[i]
        );
    }
}

fn churn_params(v: &[f64]) -> ChurnParams {
    ChurnParams {
        r: v[0].exp(),
        alpha: v[1].exp(),
        a: v[2].exp(),
        b: v[3].exp(),
    }
}

fn recovers(kind: ChurnModelKind, truth: ChurnParams, seed: u64) {
    let data = simulate_purchases(kind, &truth, 20_000, seed);
    let repeat = data.iter().filter(|s| s.x > 0.0).count();
    println!(
        "{kind:?}: {repeat} of {} customers with repeat purchases",
        data.len()
    );
    let fit = fit_purchases(kind, &data).unwrap();
    let f = fit.model.params;
    println!(
        "{} evaluations, log-likelihood {}",
        fit.evaluations, fit.log_likelihood
    );
    let logs = [f.r.ln(), f.alpha.ln(), f.a.ln(), f.b.ln()];
    let nll = |v: &[f64]| {
        let p = churn_params(v);
        -data
            .iter()
            .map(|s| likelihood::purchases(kind, &p, s))
            .sum::<f64>()
    };
    assert!((-nll(&logs) - fit.log_likelihood).abs() < 1e-6);
    let se = standard_errors(nll, &logs);
    assert_recovered(
        &["r", "alpha", "a", "b"],
        &[truth.r, truth.alpha, truth.a, truth.b],
        &[f.r, f.alpha, f.a, f.b],
        &se,
    );
}

#[test]
fn bgnbd_fit_recovers_the_parameters_it_was_drawn_from() {
    recovers(ChurnModelKind::Bgnbd, BG_CDNOW, 1);
}

#[test]
fn mbgnbd_fit_recovers_the_parameters_it_was_drawn_from() {
    recovers(ChurnModelKind::Mbgnbd, MBG_CDNOW, 2);
}

#[test]
fn spend_fit_recovers_the_parameters_it_was_drawn_from() {
    let truth = SpendParams::CDNOW;
    let data = simulate_spend(&truth, 20_000, 3);
    let fit = fit_spend(&data).unwrap();
    println!("{} evaluations", fit.evaluations);
    let f = fit.params;
    let nll = |v: &[f64]| {
        let p = SpendParams {
            p: v[0].exp(),
            q: v[1].exp(),
            v: v[2].exp(),
        };
        -data
            .iter()
            .map(|s| likelihood::spend(&p, s.x, s.monetary))
            .sum::<f64>()
    };
    let se = standard_errors(nll, &[f.p.ln(), f.q.ln(), f.v.ln()]);
    assert_recovered(
        &["p", "q", "v"],
        &[truth.p, truth.q, truth.v],
        &[f.p, f.q, f.v],
        &se,
    );
}

#[test]
fn fitting_is_deterministic() {
    let data = simulate_purchases(ChurnModelKind::Mbgnbd, &MBG_CDNOW, 2_000, 9);
    let one = fit_purchases(ChurnModelKind::Mbgnbd, &data).unwrap();
    let two = fit_purchases(ChurnModelKind::Mbgnbd, &data).unwrap();
    assert_eq!(one, two);
}

#[test]
fn input_that_cannot_be_fitted_is_an_error_naming_why() {
    use ChurnModelKind::*;
    assert_eq!(fit_purchases(Bgnbd, &[]), Err(FitError::Empty));
    let once = vec![summary(0.0, 0.0, 10.0); 100];
    for kind in [Bgnbd, Mbgnbd] {
        assert_eq!(
            fit_purchases(kind, &once),
            Err(FitError::NoRepeatPurchases(""))
        );
    }
    let no_time = [summary(1.0, 0.0, 0.0), summary(0.0, 0.0, 0.0)];
    assert_eq!(fit_purchases(Mbgnbd, &no_time), Err(FitError::NoTime));
    for (bad, reason) in [
        (summary(f64::NAN, 0.0, 1.0), "finite"),
        (summary(1.0, 2.0, 1.0), "between 0 and T"),
        (summary(1.0, -1.0, 1.0), "between 0 and T"),
        (summary(-1.0, 0.0, 1.0), "whole number"),
        (summary(1.5, 0.0, 1.0), "whole number"),
        (summary(0.0, 1.0, 1.0), "0 without repeat"),
        (summary(1e300, 1.0, 1e300), "at most"),
    ] {
        let data = [summary(2.0, 1.0, 3.0), bad];
        match fit_purchases(Mbgnbd, &data) {
            Err(FitError::Invalid {
                index: 1,
                reason: r,
            }) => assert!(r.contains(reason), "{r}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert_eq!(fit_spend(&[]), Err(FitError::Empty));
    let no_repeat = [Spend {
        x: 0.0,
        monetary: 0.0,
    }];
    assert!(matches!(
        fit_spend(&no_repeat),
        Err(FitError::NoRepeatPurchases(_))
    ));
    let free = [Spend {
        x: 2.0,
        monetary: 0.0,
    }];
    assert!(matches!(
        fit_spend(&free),
        Err(FitError::Invalid { index: 0, .. })
    ));
}

#[test]
fn extreme_input_never_panics() {
    use ChurnModelKind::*;
    let huge = [
        summary(1e9, 1e9, 1e9),
        summary(0.0, 0.0, 1e9),
        summary(3.0, 1.0, 1e-9),
    ];
    let tiny = [summary(1.0, 1e-300, 1e-300), summary(0.0, 0.0, 1e-300)];
    for kind in [Bgnbd, Mbgnbd] {
        for data in [&huge[..], &tiny[..]] {
            if let Ok(fit) = fit_purchases(kind, data) {
                let p = fit.model.params;
                assert!(
                    [p.r, p.alpha, p.a, p.b, fit.log_likelihood]
                        .iter()
                        .all(|v| v.is_finite())
                );
            }
        }
    }
    // Everybody spending the same: spend varies not at all between or
    // within customers, and the shape runs off to infinity.
    let alike = vec![
        Spend {
            x: 3.0,
            monetary: 20.0
        };
        50
    ];
    assert!(
        matches!(fit_spend(&alike), Err(FitError::Unbounded(_))),
        "{:?}",
        fit_spend(&alike)
    );
    let wild = [
        Spend {
            x: 1.0,
            monetary: 1e18,
        },
        Spend {
            x: 1e9,
            monetary: 1e-300,
        },
    ];
    if let Ok(fit) = fit_spend(&wild) {
        assert!(fit.log_likelihood.is_finite());
    }
}
