//! The values apache_avro must read for each output, in schema field order.

use super::*;

pub(super) fn long(v: u64) -> Value {
    Value::Long(i64::try_from(v).unwrap_or(i64::MAX))
}

pub(super) fn string(v: &str) -> Value {
    Value::String(v.to_owned())
}

pub(super) fn optional(v: Option<Value>) -> Value {
    match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(v)),
    }
}

pub(super) fn opt_str(v: Option<&str>) -> Value {
    optional(v.map(string))
}

pub(super) fn symbol<T: serde::Serialize>(index: i64, v: T) -> Value {
    let name = serde_json::to_value(v).unwrap();
    Value::Enum(index as u32, name.as_str().unwrap().to_owned())
}

pub(super) fn record(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

pub(super) fn expected_scores<'a>(
    nps: &NpsScore,
    csat: &CsatScore,
    ces: &CesScore,
) -> Vec<(&'a str, Value)> {
    let score = |v: Option<f64>| optional(v.map(Value::Double));
    vec![
        (
            "nps",
            record(vec![
                ("responses", long(nps.responses)),
                ("promoters", long(nps.promoters)),
                ("passives", long(nps.passives)),
                ("detractors", long(nps.detractors)),
                ("score", score(nps.score)),
            ]),
        ),
        (
            "csat",
            record(vec![
                ("responses", long(csat.responses)),
                ("satisfied", long(csat.satisfied)),
                ("score", score(csat.score)),
            ]),
        ),
        (
            "ces",
            record(vec![
                ("responses", long(ces.responses)),
                ("score", score(ces.score)),
            ]),
        ),
    ]
}

pub(super) fn expected(output: &Output) -> Value {
    match output {
        Output::StageChanged(o) => record(vec![
            ("customer_id", string(&o.customer_id)),
            ("sequence", long(o.sequence)),
            ("from_stage", opt_str(o.from_stage.as_deref())),
            ("to_stage", string(&o.to_stage)),
            (
                "direction",
                symbol(direction_index(o.direction), o.direction),
            ),
            ("trigger_event_id", opt_str(o.trigger_event_id.as_deref())),
            ("trigger_action", opt_str(o.trigger_action.as_deref())),
            ("trigger_channel", opt_str(o.trigger_channel)),
            ("event_time", Value::TimestampMillis(o.event_time)),
            ("detected_at", Value::TimestampMillis(o.detected_at)),
            (
                "time_in_previous_stage_ms",
                Value::Long(o.time_in_previous_stage_ms),
            ),
            ("touchpoint_count", long(o.touchpoint_count)),
            (
                "time_since_first_touchpoint_ms",
                optional(o.time_since_first_touchpoint_ms.map(Value::Long)),
            ),
        ]),
        Output::ChurnRiskChanged(o) => record(vec![
            ("customer_id", string(&o.customer_id)),
            ("sequence", long(o.sequence)),
            ("risk", Value::Double(o.risk)),
            ("band", symbol(band_index(o.band), o.band)),
            (
                "previous_band",
                optional(o.previous_band.map(|b| symbol(band_index(b), b))),
            ),
            ("p_alive", Value::Double(o.p_alive)),
            (
                "signals",
                Value::Array(o.signals.iter().map(|v| string(v)).collect()),
            ),
            ("cause", symbol(cause_index(o.cause), o.cause)),
            ("trigger_event_id", opt_str(o.trigger_event_id.as_deref())),
            ("event_time", Value::TimestampMillis(o.event_time)),
            ("detected_at", Value::TimestampMillis(o.detected_at)),
        ]),
        Output::FunnelWindow(o) => record(vec![
            ("sequence", long(o.sequence)),
            ("window_start", Value::TimestampMillis(o.window_start)),
            ("window_end", Value::TimestampMillis(o.window_end)),
            (
                "entries",
                Value::Array(o.entries.iter().map(expected_entry).collect()),
            ),
            (
                "pairs",
                Value::Array(o.pairs.iter().map(expected_pair).collect()),
            ),
            ("active_customers", long(o.active_customers)),
            ("revenue", Value::Double(o.revenue)),
            ("late_events", long(o.late_events)),
            (
                "channels",
                Value::Array(
                    (o.channels.iter())
                        .map(|c| {
                            record(vec![
                                ("channel", string(c.channel)),
                                ("touchpoints", long(c.touchpoints)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "scores",
                record(expected_scores(
                    &o.scores.nps,
                    &o.scores.csat,
                    &o.scores.ces,
                )),
            ),
            (
                "scores_by_stage",
                Value::Array(
                    (o.scores_by_stage.iter())
                        .map(|s| {
                            let mut fields = vec![("stage", string(&s.stage))];
                            fields.extend(expected_scores(&s.nps, &s.csat, &s.ces));
                            record(fields)
                        })
                        .collect(),
                ),
            ),
            (
                "time_to_convert",
                Value::Array(
                    (o.time_to_convert.iter())
                        .map(|t| {
                            record(vec![
                                ("from_stage", string(&t.from_stage)),
                                ("to_stage", string(&t.to_stage)),
                                ("conversions", long(t.conversions)),
                                (
                                    "buckets",
                                    Value::Array(t.buckets.iter().map(|&n| long(n)).collect()),
                                ),
                                ("p50_ms", optional(t.p50_ms.map(Value::Long))),
                                ("p90_ms", optional(t.p90_ms.map(Value::Long))),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "moments",
                Value::Array(
                    (o.moments.iter())
                        .map(|m| {
                            record(vec![
                                ("moment", string(&m.moment)),
                                ("started", long(m.started)),
                                ("completed", long(m.completed)),
                                ("abandoned", long(m.abandoned)),
                                (
                                    "abandonment_rate",
                                    optional(m.abandonment_rate.map(Value::Double)),
                                ),
                                (
                                    "buckets",
                                    Value::Array(m.buckets.iter().map(|&n| long(n)).collect()),
                                ),
                                ("p50_ms", optional(m.p50_ms.map(Value::Long))),
                                ("p90_ms", optional(m.p90_ms.map(Value::Long))),
                            ])
                        })
                        .collect(),
                ),
            ),
        ]),
        Output::MomentCompleted(o) | Output::MomentAbandoned(o) => record(vec![
            ("customer_id", string(&o.customer_id)),
            ("sequence", long(o.sequence)),
            ("moment", string(&o.moment)),
            ("outcome", symbol(outcome_index(o.outcome), o.outcome)),
            ("started_at", Value::TimestampMillis(o.started_at)),
            ("event_time", Value::TimestampMillis(o.event_time)),
            ("duration_ms", Value::Long(o.duration_ms)),
            ("trigger_event_id", opt_str(o.trigger_event_id.as_deref())),
            ("detected_at", Value::TimestampMillis(o.detected_at)),
        ]),
        Output::CustomerEvicted(o) => record(vec![
            ("customer_id", string(&o.customer_id)),
            ("last_seen", Value::TimestampMillis(o.last_seen)),
            ("evicted_at", Value::TimestampMillis(o.evicted_at)),
            ("detected_at", Value::TimestampMillis(o.detected_at)),
            ("last_stage_sequence", long(o.last_stage_sequence)),
            ("last_churn_sequence", long(o.last_churn_sequence)),
        ]),
        Output::CustomerErased(o) => record(vec![
            ("customer_id", string(&o.customer_id)),
            ("requested_at", Value::TimestampMillis(o.requested_at)),
            ("completed_at", Value::TimestampMillis(o.completed_at)),
            ("source", symbol(source_index(o.source), o.source)),
            ("state_found", Value::Boolean(o.state_found)),
        ]),
    }
}

pub(super) fn expected_entry(e: &StageCount) -> Value {
    record(vec![("stage", string(&e.stage)), ("count", long(e.count))])
}

pub(super) fn expected_pair(p: &PairCount) -> Value {
    record(vec![
        ("from_stage", string(&p.from_stage)),
        ("to_stage", string(&p.to_stage)),
        ("conversions", long(p.conversions)),
        ("dropoffs", long(p.dropoffs)),
        (
            "dropoff_ratio",
            optional(p.dropoff_ratio.map(Value::Double)),
        ),
        ("in_flight", long(p.in_flight)),
    ])
}
