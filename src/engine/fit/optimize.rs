//! Unconstrained minimisation with `argmin`'s Nelder-Mead, restarted from
//! the best point until a restart no longer improves.

use std::cell::Cell;

use argmin::core::{CostFunction, Error, Executor, State};
use argmin::solver::neldermead::NelderMead;

/// Iterations of one Nelder-Mead run, at most.
const MAX_ITERS: u64 = 4_000;
/// Restarts, at most.
const MAX_RUNS: u32 = 8;
/// A run stops when the spread of the simplex's costs falls below this
/// (the cost is a mean log-likelihood, of order 1).
const SD_TOLERANCE: f64 = 1e-13;

/// The best point found, and what it cost to find.
pub struct Minimum {
    /// Where the cost is lowest.
    pub point: Vec<f64>,
    /// Evaluations of the cost.
    pub evaluations: u64,
}

/// The cost function as `argmin` wants it; non-finite costs become +inf so
/// the simplex moves away from them.
struct Problem<F> {
    cost: F,
    evaluations: Cell<u64>,
}

impl<F: Fn(&[f64]) -> f64> CostFunction for Problem<F> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, param: &Vec<f64>) -> Result<f64, Error> {
        self.evaluations.set(self.evaluations.get() + 1);
        let c = (self.cost)(param);
        Ok(if c.is_finite() { c } else { f64::INFINITY })
    }
}

/// Minimises `cost` from `start`: Nelder-Mead runs from simplices of
/// shrinking size around the best point so far, until one improves the
/// cost by less than 1e-12 (or after [`MAX_RUNS`]).
pub fn minimize(cost: impl Fn(&[f64]) -> f64, start: &[f64]) -> Minimum {
    let problem = Problem {
        cost,
        evaluations: Cell::new(0),
    };
    let mut best = start.to_vec();
    let mut best_cost = problem.cost(&best).unwrap_or(f64::INFINITY);
    let mut step = 1.0;
    for _ in 0..MAX_RUNS {
        let Some((point, cost)) = run(&problem, &best, step) else {
            break;
        };
        let gain = best_cost - cost;
        if cost < best_cost {
            best = point;
            best_cost = cost;
        }
        let settled = gain.is_nan() || gain <= 1e-12;
        if settled && best_cost.is_finite() {
            break;
        }
        step = (step * 0.5).max(0.05);
    }
    Minimum {
        point: best,
        evaluations: problem.evaluations.get(),
    }
}

/// One Nelder-Mead run from the simplex `start`, `start + step * e_i`.
fn run<F: Fn(&[f64]) -> f64>(
    problem: &Problem<F>,
    start: &[f64],
    step: f64,
) -> Option<(Vec<f64>, f64)> {
    let mut simplex = vec![start.to_vec()];
    for i in 0..start.len() {
        let mut vertex = start.to_vec();
        vertex[i] += step;
        simplex.push(vertex);
    }
    let solver = NelderMead::new(simplex)
        .with_sd_tolerance(SD_TOLERANCE)
        .ok()?;
    let result = Executor::new(Wrapped(problem), solver)
        .configure(|state| state.max_iters(MAX_ITERS))
        .timer(false)
        .run()
        .ok()?;
    let state = result.state();
    let point = state.get_best_param()?.clone();
    Some((point, state.get_best_cost()))
}

/// `argmin` takes the problem by value; this lends it.
struct Wrapped<'a, F>(&'a Problem<F>);

impl<F: Fn(&[f64]) -> f64> CostFunction for Wrapped<'_, F> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, param: &Vec<f64>) -> Result<f64, Error> {
        self.0.cost(param)
    }
}
