//! `journeyd model`: fit the churn and spend models, and compute lifetime
//! value, from standard input to standard output.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::config::ChurnModelKind;
use crate::engine::clv::Horizon;

/// Options of `journeyd model`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

/// What `journeyd model` does.
#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Fit the churn model (and with --spend the Gamma-Gamma spend model) by
    /// maximum likelihood to customer summaries, CSV on standard input with
    /// a header naming `frequency`, `recency`, `T` (and `monetary_value`);
    /// print the parameters and log-likelihood as JSON.
    Fit {
        /// The buy-till-you-die model.
        #[arg(long, value_parser = parse_kind, default_value = "mbgnbd")]
        model: ChurnModelKind,
        /// Also fit the spend model to the customers with repeat purchases.
        #[arg(long)]
        spend: bool,
    },
    /// Expected purchases, order value and lifetime value for each NDJSON
    /// line on standard input ({"x", "t_x", "T", "monetary", and optionally
    /// "model", "r", "alpha", "a", "b", "p", "q", "v"}), one line out per line
    /// in; a line that cannot be used gets {"error": ...}.
    Clv {
        /// The model for lines that do not name one.
        #[arg(long, value_parser = parse_kind, default_value = "mbgnbd")]
        model: ChurnModelKind,
        /// How far ahead, in the model's time unit (52: a year in weeks).
        #[arg(long, default_value_t = 52.0)]
        horizon: f64,
        /// The discounting period in the model's time unit (lifetimes'
        /// month: 4.345 weeks, 30 days, 720 hours).
        #[arg(long, default_value_t = 4.345)]
        period: f64,
        /// Discount rate per period.
        #[arg(long, default_value_t = 0.0)]
        discount_rate: f64,
    },
}

fn parse_kind(s: &str) -> Result<ChurnModelKind, String> {
    match s {
        "mbgnbd" => Ok(ChurnModelKind::Mbgnbd),
        "bgnbd" => Ok(ChurnModelKind::Bgnbd),
        _ => Err("expected `mbgnbd` or `bgnbd`".into()),
    }
}

/// Runs `journeyd model`.
pub fn run(args: ModelArgs) -> anyhow::Result<()> {
    let input = std::io::stdin().lock();
    let output = std::io::BufWriter::new(std::io::stdout().lock());
    match args.command {
        ModelCommand::Fit { model, spend } => crate::tools::model::fit(model, spend, input, output),
        ModelCommand::Clv {
            model,
            horizon,
            period,
            discount_rate,
        } => {
            let horizon = Horizon::new(horizon, period, discount_rate).context(
                "--horizon and --period must be positive with at most 10000 periods, \
                 --discount-rate above -1",
            )?;
            let errors = crate::tools::model::clv(model, &horizon, input, output)?;
            if errors > 0 {
                bail!("{errors} input lines had errors (answered with {{\"error\": ...}})");
            }
            Ok(())
        }
    }
}
