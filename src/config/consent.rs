//! `[consent]`: whether touchpoints need the customer's consent for a
//! purpose before journeyd keeps or derives anything from them
//! (docs/personal-data.md#consent).

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Whose touchpoints are processed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMode {
    /// Everyone's: consent touchpoints are ordinary touchpoints.
    #[default]
    Off,
    /// Everyone's until they withdraw consent for the purpose.
    OptOut,
    /// Only those of customers who granted consent for the purpose.
    OptIn,
}

impl ConsentMode {
    /// The configuration value, also shown by the customer view.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConsentMode::Off => "off",
            ConsentMode::OptOut => "opt_out",
            ConsentMode::OptIn => "opt_in",
        }
    }
}

/// Consent for one purpose, given and withdrawn by touchpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsentConfig {
    /// `off` (default: everything is processed), `opt_out` or `opt_in`.
    pub mode: ConsentMode,
    /// The purpose journeyd processes for; consent touchpoints for other
    /// purposes change nothing here.
    pub purpose: CompactString,
    /// The attribute of a consent touchpoint that names its purpose.
    pub purpose_attribute: CompactString,
    /// The action that grants consent.
    pub granted_action: CompactString,
    /// The action that withdraws consent (and erases the customer).
    pub withdrawn_action: CompactString,
}

impl Default for ConsentConfig {
    fn default() -> Self {
        ConsentConfig {
            mode: ConsentMode::Off,
            purpose: "analytics".into(),
            purpose_attribute: "purpose".into(),
            granted_action: "consent_granted".into(),
            withdrawn_action: "consent_withdrawn".into(),
        }
    }
}
