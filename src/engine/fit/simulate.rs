//! Customers drawn from the models, with a seeded generator: data whose
//! true parameters are known, for checking that a fit recovers them and
//! for benchmarks. The same seed gives the same customers.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::Spend;
use crate::config::{ChurnModelKind, ChurnParams};
use crate::engine::clv::{SpendParams, Summary};

/// A gamma variate (Marsaglia & Tsang 2000) with the given shape and rate.
pub fn gamma(rng: &mut Pcg64Mcg, shape: f64, rate: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random();
        return gamma(rng, shape + 1.0, rate) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let (u1, u2): (f64, f64) = (rng.random(), rng.random());
        let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let v = (1.0 + c * z).powi(3);
        let u: f64 = rng.random();
        if v > 0.0 && (1.0 - u).ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d * v / rate;
        }
    }
}

/// `n` customers drawn from BG/NBD or MBG/NBD, each observed for 26 to 78
/// time units since their first purchase, as `lifetimes`'
/// `beta_geometric_nbd_model` and its modified twin draw them: a purchase
/// rate from Gamma(r, alpha), a drop-out probability from Beta(a, b), tried
/// after each repeat purchase (and, for MBG/NBD, after the first).
pub fn simulate_purchases(
    kind: ChurnModelKind,
    p: &ChurnParams,
    n: usize,
    seed: u64,
) -> Vec<Summary> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let t = rng.random_range(26.0..78.0);
            let rate = gamma(&mut rng, p.r, p.alpha);
            let g = gamma(&mut rng, p.a, 1.0);
            let dropout = g / (g + gamma(&mut rng, p.b, 1.0));
            let mut alive = kind == ChurnModelKind::Bgnbd || rng.random::<f64>() > dropout;
            let (mut x, mut t_x) = (0.0, 0.0);
            while alive {
                let u: f64 = rng.random();
                let next = t_x - (1.0 - u).ln() / rate;
                if next >= t {
                    break;
                }
                (x, t_x) = (x + 1.0, next);
                alive = rng.random::<f64>() > dropout;
            }
            Summary { x, t_x, t }
        })
        .collect()
}

/// `n` customers with 1 to 10 repeat purchases whose mean value follows
/// the Gamma-Gamma model: each customer's rate from Gamma(q, v), and the
/// mean of x Gamma(p, rate) amounts.
pub fn simulate_spend(s: &SpendParams, n: usize, seed: u64) -> Vec<Spend> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let x = f64::from(rng.random_range(1..=10u32));
            let nu = gamma(&mut rng, s.q, s.v);
            let monetary = gamma(&mut rng, s.p * x, nu * x);
            Spend { x, monetary }
        })
        .collect()
}
