//! The churn-risk model: buy-till-you-die parameters, negative signals and bands.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which buy-till-you-die model gives P(alive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChurnModelKind {
    /// Modified BG/NBD (Batislam, Denizel & Filiztekin 2007): one-time buyers can churn.
    #[default]
    Mbgnbd,
    /// BG/NBD (Fader, Hardie & Lee 2005).
    Bgnbd,
}

impl ChurnModelKind {
    /// The parameters fitted on the CDNOW data set, used when none are configured.
    pub fn default_params(self) -> ChurnParams {
        match self {
            ChurnModelKind::Mbgnbd => ChurnParams {
                r: 0.525,
                alpha: 6.183,
                a: 0.891,
                b: 1.614,
            },
            ChurnModelKind::Bgnbd => ChurnParams {
                r: 0.243,
                alpha: 4.414,
                a: 0.793,
                b: 2.426,
            },
        }
    }
}

/// Model parameters, as fitted for example by the Python `lifetimes` package.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// Churn-risk configuration (docs/configuration.md, `[churn]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChurnConfig {
    /// `mbgnbd` (default) or `bgnbd`.
    pub model: ChurnModelKind,
    /// Parameters; the model's CDNOW fit when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<ChurnParams>,
    /// The model's time unit (weeks by default): `x`, `t_x` and `T` are in it.
    #[serde(with = "humantime_serde")]
    pub time_unit: Duration,
    /// Actions that count as purchases for the model.
    pub purchase_actions: Vec<String>,
    /// Actions that set the risk to 1 (until the next purchase).
    pub cancel_actions: Vec<String>,
    /// A negative signal raises the risk while its latest occurrence is
    /// within this window.
    #[serde(with = "humantime_serde")]
    pub signal_window: Duration,
    /// Negative signals and their weights on the logit scale.
    pub signals: Vec<ChurnSignalConfig>,
    /// Band thresholds and hysteresis.
    pub bands: BandConfig,
}

/// A negative signal: matching events add `weight` to the risk's logit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnSignalConfig {
    /// The name reported in `ChurnRiskChanged.signals`.
    pub name: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
    /// Added to logit(risk) while the signal is active; positive raises risk.
    pub weight: f64,
}

/// Where the bands start, and how far risk must fall to leave one downward.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BandConfig {
    /// Risk at which `medium` starts.
    pub medium: f64,
    /// Risk at which `high` starts.
    pub high: f64,
    /// A band is left downward only when risk falls below its lower bound minus this.
    pub hysteresis: f64,
}

impl Default for BandConfig {
    fn default() -> Self {
        BandConfig {
            medium: 0.3,
            high: 0.6,
            hysteresis: 0.05,
        }
    }
}

fn churn_signal(
    name: &str,
    action: &str,
    max_value: Option<f64>,
    weight: f64,
) -> ChurnSignalConfig {
    ChurnSignalConfig {
        name: name.to_owned(),
        action: action.to_owned(),
        min_value: None,
        max_value,
        weight,
    }
}

impl Default for ChurnConfig {
    fn default() -> Self {
        ChurnConfig {
            model: ChurnModelKind::Mbgnbd,
            params: None,
            time_unit: Duration::from_secs(7 * 86_400),
            purchase_actions: vec!["purchase".to_owned()],
            cancel_actions: vec!["subscription_cancelled".to_owned()],
            signal_window: Duration::from_secs(30 * 86_400),
            signals: vec![
                churn_signal("support_ticket", "support_ticket", None, 0.4),
                churn_signal("detractor_nps", "nps_response", Some(6.0), 0.8),
                churn_signal("payment_failed", "payment_failed", None, 1.0),
                churn_signal("unsubscribe", "unsubscribe", None, 0.7),
            ],
            bands: BandConfig::default(),
        }
    }
}

impl ChurnConfig {
    /// The configured parameters, or the model's defaults.
    pub fn effective_params(&self) -> ChurnParams {
        self.params.unwrap_or_else(|| self.model.default_params())
    }
}
