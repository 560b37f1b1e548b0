//! `journeyd model`: fitting the churn and spend models to purchase summaries,
//! and lifetime value line by line (docs/lifetime-value.md).
//!
//! `fit` reads CSV with a header naming the columns as `lifetimes` does
//! (`frequency`, `recency`, `T`, `monetary_value`; `x`, `t_x` and
//! `monetary` also do; other columns, such as a customer id, are ignored)
//! and prints one JSON object. `clv` reads NDJSON and writes one line per
//! input line: the result, or `{"error": ...}` for a line it cannot use,
//! so output line n always answers input line n.

use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::json;

use crate::config::{ChurnModelKind, ChurnParams};
use crate::engine::clv::{Horizon, PurchaseModel, SpendParams, Summary};
use crate::engine::fit::{self, Spend};

/// Column positions in a summaries CSV.
struct Columns {
    x: usize,
    t_x: usize,
    t: usize,
    monetary: Option<usize>,
}

impl Columns {
    fn from_header(header: &str) -> anyhow::Result<Columns> {
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(n));
        let need = |wanted: &[&str]| {
            find(wanted).with_context(|| format!("the CSV header has no `{}` column", wanted[0]))
        };
        Ok(Columns {
            x: need(&["frequency", "x"])?,
            t_x: need(&["recency", "t_x"])?,
            t: need(&["T", "t"])?,
            monetary: find(&["monetary_value", "monetary"]),
        })
    }
}

/// Customers read from a summaries CSV.
struct Summaries {
    purchases: Vec<Summary>,
    spend: Vec<Spend>,
}

fn read_summaries(input: impl BufRead, with_spend: bool) -> anyhow::Result<Summaries> {
    let mut lines = input.lines();
    let header = lines.next().context("the CSV input is empty")??;
    let columns = Columns::from_header(&header)?;
    let monetary = match (with_spend, columns.monetary) {
        (true, None) => bail!("--spend needs a `monetary_value` column"),
        (_, m) => m.filter(|_| with_spend),
    };
    let mut out = Summaries {
        purchases: Vec::new(),
        spend: Vec::new(),
    };
    for (n, line) in lines.enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let number = |i: usize| -> anyhow::Result<f64> {
            let field = fields.get(i).map(|f| f.trim()).unwrap_or_default();
            field
                .parse()
                .with_context(|| format!("line {}: `{field}` is not a number", n + 2))
        };
        let (x, t_x, t) = (number(columns.x)?, number(columns.t_x)?, number(columns.t)?);
        out.purchases.push(Summary { x, t_x, t });
        if let Some(m) = monetary {
            out.spend.push(Spend {
                x,
                monetary: number(m)?,
            });
        }
    }
    Ok(out)
}

/// `journeyd model fit`: fits `kind` (and with `with_spend` the Gamma-Gamma
/// model) to the summaries CSV on `input` and writes the result as JSON.
pub fn fit(
    kind: ChurnModelKind,
    with_spend: bool,
    input: impl BufRead,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let data = read_summaries(input, with_spend)?;
    let line_of = |e: fit::FitError| match e {
        fit::FitError::Invalid { index, reason } => {
            anyhow::anyhow!("line {}: {reason}", index + 2)
        }
        other => other.into(),
    };
    let purchases = fit::fit_purchases(kind, &data.purchases).map_err(line_of)?;
    let ChurnParams { r, alpha, a, b } = purchases.model.params;
    let mut result = json!({
        "model": kind,
        "customers": purchases.customers,
        "params": {"r": r, "alpha": alpha, "a": a, "b": b},
        "log_likelihood": purchases.log_likelihood,
        "evaluations": purchases.evaluations,
    });
    if with_spend {
        let spend = fit::fit_spend(&data.spend).map_err(line_of)?;
        let SpendParams { p, q, v } = spend.params;
        result["spend"] = json!({
            "customers": spend.customers,
            "params": {"p": p, "q": q, "v": v},
            "log_likelihood": spend.log_likelihood,
            "evaluations": spend.evaluations,
        });
    }
    writeln!(out, "{result}")?;
    Ok(())
}

/// One line of `journeyd model clv` input; absent parameters are the
/// model's CDNOW defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClvLine {
    model: Option<ChurnModelKind>,
    x: f64,
    t_x: f64,
    #[serde(rename = "T")]
    t: f64,
    #[serde(default)]
    monetary: f64,
    r: Option<f64>,
    alpha: Option<f64>,
    a: Option<f64>,
    b: Option<f64>,
    p: Option<f64>,
    q: Option<f64>,
    v: Option<f64>,
}

/// `journeyd model clv`: for each NDJSON line on `input`, the expected
/// purchases, order value and lifetime value over `horizon`. Returns the
/// number of lines answered with an error.
pub fn clv(
    default_kind: ChurnModelKind,
    horizon: &Horizon,
    input: impl BufRead,
    mut out: impl Write,
) -> anyhow::Result<u64> {
    let mut errors = 0;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match clv_line(default_kind, horizon, &line) {
            Ok(answer) => answer,
            Err(reason) => {
                errors += 1;
                json!({ "error": reason })
            }
        };
        writeln!(out, "{answer}")?;
    }
    out.flush()?;
    Ok(errors)
}

fn clv_line(
    default_kind: ChurnModelKind,
    horizon: &Horizon,
    line: &str,
) -> Result<serde_json::Value, String> {
    let l: ClvLine = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let kind = l.model.unwrap_or(default_kind);
    let d = kind.default_params();
    let c = SpendParams::CDNOW;
    let model = PurchaseModel {
        kind,
        params: ChurnParams {
            r: l.r.unwrap_or(d.r),
            alpha: l.alpha.unwrap_or(d.alpha),
            a: l.a.unwrap_or(d.a),
            b: l.b.unwrap_or(d.b),
        },
    };
    let spend = SpendParams {
        p: l.p.unwrap_or(c.p),
        q: l.q.unwrap_or(c.q),
        v: l.v.unwrap_or(c.v),
    };
    let ChurnParams { r, alpha, a, b } = model.params;
    if ![r, alpha, a, b, spend.p, spend.v]
        .iter()
        .all(|v| *v > 0.0 && v.is_finite())
    {
        return Err("parameters must be positive finite numbers".into());
    }
    if !(spend.q > 1.0 && spend.q.is_finite()) {
        return Err("q must be above 1 (the mean spend is infinite otherwise)".into());
    }
    let summary = Summary {
        x: l.x,
        t_x: l.t_x,
        t: l.t,
    };
    summary.check()?;
    if l.x > 0.0 && !(l.monetary > 0.0 && l.monetary.is_finite()) {
        return Err("monetary must be positive with repeat purchases".into());
    }
    let value = model.lifetime_value(&spend, &summary, l.monetary, horizon);
    let numbers = [
        value.expected_purchases,
        value.expected_order_value,
        value.value,
    ];
    if !numbers.iter().all(|v| v.is_finite()) {
        return Err("no finite result for these parameters".into());
    }
    Ok(json!({
        "expected_purchases": value.expected_purchases,
        "expected_order_value": value.expected_order_value,
        "clv": value.value,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clv_answers_every_line_in_order() {
        let input = concat!(
            r#"{"model": "bgnbd", "x": 2, "t_x": 30.43, "T": 38.86, "monetary": 22.35, "r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "v": 15.44}"#,
            "\n",
            r#"{"x": 1, "t_x": 5, "T": 3}"#,
            "\n\n",
            "not json\n",
            r#"{"x": 0, "t_x": 0, "T": 10, "q": 1}"#,
            "\n",
            r#"{"x": 0, "t_x": 0, "T": 10}"#,
            "\n",
        );
        let h = Horizon::new(12.0 * 4.345, 4.345, 0.01).unwrap();
        let mut out = Vec::new();
        let errors = clv(ChurnModelKind::Mbgnbd, &h, input.as_bytes(), &mut out).unwrap();
        assert_eq!(errors, 3);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 5);
        let clv = lines[0]["clv"].as_f64().unwrap();
        assert!((clv / 36.28921112559952 - 1.0).abs() < 1e-12, "{clv}");
        assert!(lines[1]["error"].as_str().unwrap().contains("t_x"));
        assert!(lines[2]["error"].is_string());
        assert!(lines[3]["error"].as_str().unwrap().contains("q must be"));
        assert!(lines[4]["clv"].as_f64().unwrap() > 0.0);
    }

    #[test]
    fn fit_reads_lifetimes_columns_and_names_bad_lines() {
        let mut csv = String::from("customer_id,frequency,recency,T,monetary_value\n");
        for i in 0..200 {
            let x = i % 7;
            let t_x = if x == 0 { 0.0 } else { f64::from(x) * 3.5 };
            csv += &format!("{i},{x},{t_x},38,{}\n", 10 + i % 13);
        }
        let mut out = Vec::new();
        fit(ChurnModelKind::Bgnbd, true, csv.as_bytes(), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["customers"], 200);
        assert!(v["params"]["r"].as_f64().unwrap() > 0.0);
        assert!(v["spend"]["params"]["q"].as_f64().unwrap() > 0.0);
        let bad = "frequency,recency,T\n1,2,3\n1,4,3\n";
        let err = fit(ChurnModelKind::Bgnbd, false, bad.as_bytes(), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let bad = "frequency,recency,T\n1,x,3\n";
        let err = fit(ChurnModelKind::Bgnbd, false, bad.as_bytes(), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = fit(
            ChurnModelKind::Bgnbd,
            true,
            "x,t_x,T\n".as_bytes(),
            Vec::new(),
        );
        assert!(err.unwrap_err().to_string().contains("monetary_value"));
        let err = fit(ChurnModelKind::Bgnbd, false, "".as_bytes(), Vec::new());
        assert!(err.unwrap_err().to_string().contains("empty"));
    }
}
