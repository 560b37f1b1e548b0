"""Lifetime value and model fits against the Python `lifetimes` package.

`journeyd model clv` and `journeyd model fit` read standard input and need
no broker: these tests use none of the Kafka fixtures.
"""

from __future__ import annotations

import json
import subprocess

import mpmath
import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

from harness import JOURNEYD

FITTERS = {"bgnbd": BetaGeoFitter, "mbgnbd": ModifiedBetaGeoFitter}

# lifetimes' customer_lifetime_value(time=12, discount_rate=0.01, freq="W"):
# twelve months of 4.345 weeks, T in weeks.
MONTH_WEEKS = 4.345
MONTHS = 12
RATE = 0.01


def journeyd_model(args: list[str], stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(JOURNEYD), "model", *args], input=stdin, capture_output=True,
                          text=True, timeout=300)


# Customers of a typical business, and new customers (T near 0) of one
# whose customers buy often in the time unit (alpha far below the horizon,
# where the hypergeometric series converges slowly and journeyd switches to
# the connection formula to 1 - z).
REGIMES = {
    "typical": {"alpha": (1.0, 20.0), "T": (0.5, 100.0), "sets": 25},
    "frequent_buyers": {"alpha": (0.005, 0.1), "T": (0.0, 2.0), "sets": 10},
}


def random_parameter_sets(rng, count: int, alpha: tuple[float, float]) -> list[dict]:
    sets = []
    while len(sets) < count:
        a = rng.uniform(0.3, 3.0)
        if abs(a - 1.0) < 0.05:
            continue  # lifetimes' closed form is 0/0 at a = 1
        sets.append({"r": rng.uniform(0.1, 2.0), "alpha": rng.uniform(*alpha), "a": a,
                     "b": rng.uniform(0.5, 5.0), "p": rng.uniform(1.0, 10.0),
                     "q": rng.uniform(1.5, 6.0), "v": rng.uniform(5.0, 30.0)})
    return sets


def random_customers(rng, count: int, age: tuple[float, float]) -> pd.DataFrame:
    x = np.where(rng.random(count) < 0.1, rng.integers(50, 300, count), rng.integers(0, 20, count))
    t = rng.uniform(*age, count)
    t_x = np.where(x > 0, rng.uniform(0.0, 1.0, count) * t, 0.0)
    monetary = np.where(x > 0, rng.uniform(1.0, 200.0, count), 0.0)
    return pd.DataFrame({"x": x.astype(float), "t_x": t_x, "T": t, "monetary": monetary})


def mpmath_expected_purchases(model: str, params: dict, x, t_x, t, horizon) -> float:
    """lifetimes' closed form for the expected purchases, at 40 digits."""
    with mpmath.workdps(40):
        r, alpha, a, b = (mpmath.mpf(params[k]) for k in ("r", "alpha", "a", "b"))
        x, t_x, t, horizon = (mpmath.mpf(v) for v in (x, t_x, t, horizon))
        extra = 1 if model == "mbgnbd" else 0
        c = a + b + x - 1 + extra
        hyp = mpmath.hyp2f1(r + x, b + x + extra, c, horizon / (alpha + t + horizon))
        odds = a / (b + x - 1 + extra) if (x > 0 or extra) else 0
        alive = 1 + odds * ((alpha + t) / (alpha + t_x)) ** (r + x)
        return float(c / (a - 1) * (1 - hyp * ((alpha + t) / (alpha + t + horizon)) ** (r + x)) / alive)


def lifetimes_answers(model: str, params: dict, customers: pd.DataFrame, horizon: float):
    purchases = FITTERS[model]()
    purchases.params_ = pd.Series({k: params[k] for k in ("r", "alpha", "a", "b")})
    purchases.predict = purchases.conditional_expected_number_of_purchases_up_to_time
    spend = GammaGammaFitter()
    spend.params_ = pd.Series({k: params[k] for k in ("p", "q", "v")})
    x, t_x, t = customers["x"], customers["t_x"], customers["T"]
    expected = purchases.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, t)
    clv = spend.customer_lifetime_value(purchases, x, t_x, t, customers["monetary"],
                                        time=MONTHS, discount_rate=RATE, freq="W")
    return np.asarray(expected, dtype=float), np.asarray(clv, dtype=float)


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_clv_agrees_with_lifetimes(model, regime):
    rng = np.random.default_rng(20261207 + len(model) + 10 * len(regime))
    horizon = MONTHS * MONTH_WEEKS
    ranges = REGIMES[regime]
    lines, inputs, want_expected, want_clv = [], [], [], []
    for params in random_parameter_sets(rng, ranges["sets"], ranges["alpha"]):
        customers = random_customers(rng, 50, ranges["T"])
        expected, clv = lifetimes_answers(model, params, customers, horizon)
        want_expected.extend(expected)
        want_clv.extend(clv)
        for row in customers.itertuples(index=False):
            inputs.append((params, row))
            lines.append(json.dumps({"model": model, "x": row.x, "t_x": row.t_x, "T": row.T,
                                     "monetary": row.monetary, **params}))
    done = journeyd_model(["clv", "--horizon", repr(horizon), "--period", repr(MONTH_WEEKS),
                           "--discount-rate", repr(RATE)], "\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(lines) == 50 * ranges["sets"]
    got_expected = np.array([a["expected_purchases"] for a in answers])
    got_clv = np.array([a["clv"] for a in answers])
    want_expected, want_clv = np.array(want_expected), np.array(want_clv)
    # lifetimes' MBG/NBD has no fallback when scipy's 2F1 overflows (many
    # purchases, z near 1) and answers NaN; journeyd always answers.
    assert np.all(np.isfinite(got_expected)) and np.all(np.isfinite(got_clv))
    known = np.isfinite(want_expected) & np.isfinite(want_clv)
    print(f"{model} {regime}: lifetimes has no answer for {np.sum(~known)} of {len(lines)}")
    assert known.mean() > 0.95
    for i in np.flatnonzero(~known):
        params, row = inputs[i]
        want = mpmath_expected_purchases(model, params, row.x, row.t_x, row.T, horizon)
        assert abs(got_expected[i] / want - 1) < 1e-6, f"{got_expected[i]} vs mpmath {want}"
    # A customer long gone can have a value that underflows (below 1e-300):
    # there only the absolute difference means anything.
    tiny = ~known | (np.abs(want_clv) < 1e-290) | (np.abs(want_expected) < 1e-290)
    small = tiny & known
    print(f"{model} {regime}: {small.sum()} values below 1e-290, "
          f"largest difference there {np.max(np.abs(got_clv - want_clv)[small], initial=0):.3g}")
    assert np.all(np.abs(got_clv - want_clv)[small] < 1e-290)
    for name, got, want in [("expected purchases", got_expected, want_expected),
                            ("clv", got_clv, want_clv)]:
        rel = np.where(tiny, 0.0, np.abs(got - want) / np.where(tiny, 1.0, np.abs(want)))
        worst = int(np.argmax(rel))
        print(f"{model} {regime} {name}: max relative error {rel[worst]:.3g} "
              f"({got[worst]!r} vs {want[worst]!r}, {lines[worst]})")
        assert rel[worst] < 1e-6, f"{name}: {got[worst]} vs {want[worst]} for {lines[worst]}"


def cdnow() -> pd.DataFrame:
    return load_cdnow_summary_data_with_monetary_value()


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_fit_on_cdnow_agrees_with_lifetimes(model):
    data = cdnow()
    done = journeyd_model(["fit", "--model", model, "--spend"], data.to_csv())
    assert done.returncode == 0, done.stderr
    ours = json.loads(done.stdout)
    assert ours["customers"] == len(data)

    fitter = FITTERS[model]().fit(data["frequency"], data["recency"], data["T"])
    repeat = data[data["frequency"] > 0]
    spend = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    assert ours["spend"]["customers"] == len(repeat)
    for name, theirs, mine in [*((k, fitter.params_[k], ours["params"][k]) for k in "r alpha a b".split()),
                               *((k, spend.params_[k], ours["spend"]["params"][k]) for k in "pqv")]:
        print(f"{model} {name}: lifetimes {theirs:.6f}, journeyd {mine:.6f} "
              f"({100 * (mine / theirs - 1):+.4f}%)")
        assert abs(mine / theirs - 1) < 0.01, f"{name}: {mine} vs lifetimes {theirs}"

    # The reported log-likelihood is lifetimes' own at our parameters.
    f, r, t = (np.asarray(data[c], dtype=float) for c in ("frequency", "recency", "T"))
    log_params = np.log([ours["params"][k] for k in ("r", "alpha", "a", "b")])
    theirs = -len(data) * FITTERS[model]._negative_log_likelihood(
        log_params, f, r, t, np.ones(len(data)), 0.0)
    assert abs(ours["log_likelihood"] / theirs - 1) < 1e-9, (ours["log_likelihood"], theirs)
    # And ours is at least as high as at lifetimes' optimum.
    at_lifetimes = -len(data) * FITTERS[model]._negative_log_likelihood(
        np.log(fitter.params_.to_numpy()), f, r, t, np.ones(len(data)), 0.0)
    print(f"{model} log-likelihood: journeyd {ours['log_likelihood']:.6f}, "
          f"at lifetimes' parameters {at_lifetimes:.6f}")
    assert ours["log_likelihood"] >= at_lifetimes - 1e-6


def test_bad_input_is_reported_not_dropped():
    lines = ['{"x": 1, "t_x": 2, "T": 1}', '{"x": 0, "t_x": 0, "T": 5}']
    done = journeyd_model(["clv"], "\n".join(lines) + "\n")
    assert done.returncode != 0 and "1 input lines had errors" in done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert "t_x" in answers[0]["error"] and answers[1]["clv"] > 0
    done = journeyd_model(["fit", "--model", "bgnbd"], "frequency,recency,T\n0,0,10\n0,0,20\n")
    assert done.returncode != 0 and "no customer has a repeat purchase" in done.stderr
