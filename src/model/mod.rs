//! The vocabulary shared by every part of journeyd: event time, touchpoints,
//! stages, the derived outputs and the erasure confirmation.
//!
//! These types carry no behaviour beyond small conversions; decoding lives in
//! [`crate::codec`] and the journey logic in [`crate::engine`].

mod erasure;
mod output;
mod time;
mod touchpoint;

pub use erasure::{CustomerErased, ErasureSource};
pub use output::{
    Band, CesScore, ChannelCount, ChurnCause, ChurnRiskChanged, ConversionTimes, CsatScore,
    CustomerEvicted, Direction, ExperienceScores, FunnelWindow, MomentCounts, MomentEnded,
    MomentOutcome, NpsScore, Output, OutputKind, PairCount, StageChanged, StageCount, StageScores,
};
pub use time::EventTime;
pub use touchpoint::{Channel, KeptAttributes, MAX_KEPT_ATTRIBUTES, Touchpoint};
