//! The Avro schemas shipped in `schemas/`, compiled into the binary.
//!
//! The `.avsc` files are the contract with producers and consumers; this
//! module only exposes their text. The tests here keep them honest: each
//! parses, and each output schema has exactly the fields of its model type
//! in [`crate::model`], with compatible types.

/// Input: `schemas/touchpoint.avsc`, the reader schema for touchpoints.
pub const TOUCHPOINT: &str = include_str!("../../schemas/touchpoint.avsc");
/// Output `journey.stage-changes`: `schemas/stage_changed.avsc`.
pub const STAGE_CHANGED: &str = include_str!("../../schemas/stage_changed.avsc");
/// Output `journey.churn-risk`: `schemas/churn_risk_changed.avsc`.
pub const CHURN_RISK_CHANGED: &str = include_str!("../../schemas/churn_risk_changed.avsc");
/// Output `journey.funnel`: `schemas/funnel_window.avsc`.
pub const FUNNEL_WINDOW: &str = include_str!("../../schemas/funnel_window.avsc");
/// Output `journey.moments`: `schemas/moment_ended.avsc`.
pub const MOMENT_ENDED: &str = include_str!("../../schemas/moment_ended.avsc");
/// Output `journey.audit`: `schemas/customer_erased.avsc`.
pub const CUSTOMER_ERASED: &str = include_str!("../../schemas/customer_erased.avsc");
/// Output `journey.audit`: `schemas/customer_evicted.avsc`.
pub const CUSTOMER_EVICTED: &str = include_str!("../../schemas/customer_evicted.avsc");

/// Every shipped schema with its file name.
pub const ALL: [(&str, &str); 7] = [
    ("touchpoint.avsc", TOUCHPOINT),
    ("stage_changed.avsc", STAGE_CHANGED),
    ("churn_risk_changed.avsc", CHURN_RISK_CHANGED),
    ("funnel_window.avsc", FUNNEL_WINDOW),
    ("moment_ended.avsc", MOMENT_ENDED),
    ("customer_erased.avsc", CUSTOMER_ERASED),
    ("customer_evicted.avsc", CUSTOMER_EVICTED),
];

/// Parses every shipped schema; the first failure names its file.
pub fn parse_all() -> Result<Vec<apache_avro::Schema>, String> {
    ALL.iter()
        .map(|(file, text)| {
            apache_avro::Schema::parse_str(text).map_err(|e| format!("{file}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use apache_avro::Schema;
    use apache_avro::schema::RecordSchema;
    use compact_str::CompactString;
    use serde::Serialize;

    use super::*;
    use crate::model::{
        Band, CesScore, ChannelCount, ChurnCause, ChurnRiskChanged, ConversionTimes, CsatScore,
        CustomerErased, CustomerEvicted, Direction, ErasureSource, ExperienceScores, FunnelWindow,
        MomentCounts, MomentEnded, MomentOutcome, NpsScore, PairCount, StageChanged, StageCount,
        StageScores,
    };

    #[test]
    fn every_schema_parses_in_namespace_v1() {
        let schemas = parse_all().unwrap();
        assert_eq!(schemas.len(), ALL.len());
        for s in schemas {
            let name = s.name().expect("a named record");
            assert_eq!(name.namespace(), Some("journeyd.v1"));
        }
    }

    fn field_names(schema: &Schema) -> Vec<String> {
        match schema {
            Schema::Record(RecordSchema { fields, .. }) => {
                fields.iter().map(|f| f.name.clone()).collect()
            }
            other => panic!("not a record: {other:?}"),
        }
    }

    /// The schema has exactly the model's fields and the model's value
    /// validates against it.
    fn assert_matches<T: Serialize>(text: &str, sample: &T) {
        let schema = Schema::parse_str(text).unwrap();
        let json = serde_json::to_value(sample).unwrap();
        assert_eq!(sorted(field_names(&schema)), keys(&json));
        // Through JSON: apache_avro's own serializer writes u64 as fixed(8).
        let value = apache_avro::types::Value::try_from(json).unwrap();
        let resolved = value.resolve(&schema).unwrap();
        assert!(resolved.validate(&schema));
        apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value_to_vec(resolved)
            .unwrap();
    }

    fn sorted(mut names: Vec<String>) -> Vec<String> {
        names.sort();
        names
    }

    fn keys(json: &serde_json::Value) -> Vec<String> {
        sorted(json.as_object().unwrap().keys().cloned().collect())
    }

    fn s(v: &str) -> CompactString {
        CompactString::from(v)
    }

    #[test]
    fn stage_changed_matches_the_model() {
        for from in [None, Some(s("awareness"))] {
            let sample = StageChanged {
                customer_id: s("c1"),
                sequence: 3,
                from_stage: from.clone(),
                to_stage: s("purchase"),
                direction: Direction::Return,
                trigger_event_id: from.as_ref().map(|_| s("e9")),
                trigger_action: from.as_ref().map(|_| s("purchase")),
                trigger_channel: from.as_ref().map(|_| "web"),
                event_time: 1_700_000_000_000,
                detected_at: 1_700_000_000_500,
                time_in_previous_stage_ms: 86_400_000,
                touchpoint_count: 12,
                time_since_first_touchpoint_ms: from.as_ref().map(|_| 90_000_000),
            };
            assert_matches(STAGE_CHANGED, &sample);
        }
    }

    #[test]
    fn churn_risk_changed_matches_the_model() {
        for previous in [None, Some(Band::Low)] {
            let sample = ChurnRiskChanged {
                customer_id: s("c1"),
                sequence: 1,
                risk: 0.61,
                band: Band::High,
                previous_band: previous,
                p_alive: 0.42,
                signals: vec![s("support_ticket"), s("payment_failed")],
                cause: ChurnCause::Timer,
                trigger_event_id: None,
                event_time: 1_700_000_000_000,
                detected_at: 1_700_000_000_001,
            };
            assert_matches(CHURN_RISK_CHANGED, &sample);
        }
    }

    #[test]
    fn funnel_window_matches_the_model() {
        let pair = |ratio| PairCount {
            from_stage: s("consideration"),
            to_stage: s("purchase"),
            conversions: 3,
            dropoffs: 1,
            dropoff_ratio: ratio,
            in_flight: 3,
        };
        let sample = FunnelWindow {
            sequence: 1,
            window_start: 1_700_000_040_000,
            window_end: 1_700_000_100_000,
            entries: vec![StageCount {
                stage: s("awareness"),
                count: 10,
            }],
            pairs: vec![pair(Some(0.25)), pair(None)],
            active_customers: 42,
            revenue: 99.5,
            late_events: 0,
            channels: vec![ChannelCount {
                channel: "web",
                touchpoints: 7,
            }],
            scores: ExperienceScores {
                nps: NpsScore {
                    responses: 2,
                    promoters: 1,
                    passives: 0,
                    detractors: 1,
                    score: Some(0.0),
                },
                ..ExperienceScores::default()
            },
            scores_by_stage: vec![StageScores {
                stage: s("retention"),
                nps: NpsScore::default(),
                csat: CsatScore {
                    responses: 1,
                    satisfied: 1,
                    score: Some(100.0),
                },
                ces: CesScore::default(),
            }],
            time_to_convert: vec![ConversionTimes {
                from_stage: s("awareness"),
                to_stage: s("consideration"),
                conversions: 1,
                buckets: vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                p50_ms: Some(30_000),
                p90_ms: Some(54_000),
            }],
            moments: vec![MomentCounts {
                moment: s("cart"),
                started: 4,
                completed: 1,
                abandoned: 1,
                abandonment_rate: Some(0.5),
                buckets: vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                p50_ms: Some(180_000),
                p90_ms: Some(276_000),
            }],
        };
        assert_matches(FUNNEL_WINDOW, &sample);
        let nested = Schema::parse_str(FUNNEL_WINDOW).unwrap();
        let json = serde_json::to_value(&sample).unwrap();
        assert_eq!(
            sorted(nested_fields(&nested, "pairs")),
            keys(&json["pairs"][0])
        );
        assert_eq!(
            sorted(nested_fields(&nested, "entries")),
            keys(&json["entries"][0])
        );
    }

    #[test]
    fn customer_erased_matches_the_model() {
        for (source, state_found) in [(ErasureSource::Http, true), (ErasureSource::Topic, false)] {
            let sample = CustomerErased {
                customer_id: s("c1"),
                requested_at: 1_700_000_000_000,
                completed_at: 1_700_000_000_250,
                source,
                state_found,
            };
            assert_matches(CUSTOMER_ERASED, &sample);
        }
    }

    #[test]
    fn customer_evicted_matches_the_model() {
        let sample = CustomerEvicted {
            customer_id: s("c1"),
            last_seen: 1_700_000_000_000,
            evicted_at: 1_734_560_000_000,
            detected_at: 1_734_560_000_250,
            last_stage_sequence: 3,
            last_churn_sequence: 2,
        };
        assert_matches(CUSTOMER_EVICTED, &sample);
    }

    #[test]
    fn moment_ended_matches_the_model() {
        for outcome in MomentOutcome::ALL {
            let completed = outcome == MomentOutcome::Completed;
            let sample = MomentEnded {
                customer_id: s("c1"),
                sequence: 2,
                moment: s("cart"),
                outcome,
                started_at: 1_700_000_000_000,
                event_time: 1_700_003_600_000,
                duration_ms: 3_600_000,
                trigger_event_id: completed.then(|| s("e7")),
                detected_at: 1_700_003_600_250,
            };
            assert_matches(MOMENT_ENDED, &sample);
        }
    }

    fn nested_fields(schema: &Schema, array_field: &str) -> Vec<String> {
        let Schema::Record(RecordSchema { fields, .. }) = schema else {
            panic!("not a record")
        };
        let field = fields.iter().find(|f| f.name == array_field).unwrap();
        match &field.schema {
            Schema::Array(a) => field_names(&a.items),
            other => panic!("not an array: {other:?}"),
        }
    }
}
