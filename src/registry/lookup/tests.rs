//! The look-up rules of [`SchemaSource`], driven by a scripted registry.

use std::sync::Mutex;

use super::*;
use crate::clock::Stopwatch;
use crate::codec::avro;
use crate::codec::schemas::TOUCHPOINT;
use crate::model::Touchpoint;

const NOW: EventTime = EventTime(1_767_225_600_000);

/// A registry that knows some ids and can be taken down; it counts the
/// requests it is asked.
#[derive(Clone, Default)]
struct Scripted(Arc<Mutex<Script>>);

#[derive(Default)]
struct Script {
    schemas: HashMap<u32, String>,
    down: bool,
    requests: Vec<u32>,
}

impl FetchSchema for Scripted {
    fn fetch(&self, id: u32) -> Result<String, RegistryError> {
        let mut script = self.0.lock().unwrap();
        script.requests.push(id);
        if script.down {
            return Err(RegistryError::Unavailable("connection refused".into()));
        }
        script
            .schemas
            .get(&id)
            .cloned()
            .ok_or_else(|| RegistryError::NotFound {
                code: Some(40403),
                message: "Schema not found".into(),
            })
    }
}

impl Scripted {
    fn with(id: u32, schema: &str) -> Scripted {
        let scripted = Scripted::default();
        scripted.0.lock().unwrap().schemas.insert(id, schema.into());
        scripted
    }

    fn set_down(&self, down: bool) {
        self.0.lock().unwrap().down = down;
    }

    fn requests(&self) -> Vec<u32> {
        self.0.lock().unwrap().requests.clone()
    }
}

fn policy() -> LookupPolicy {
    let mut policy = LookupPolicy::new(Duration::from_millis(20));
    policy.retry.first_backoff = Duration::from_millis(1);
    policy.retry.max_backoff = Duration::from_millis(2);
    policy
}

fn source(registry: &Scripted, policy: LookupPolicy) -> (SchemaSource, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new().unwrap());
    let source = SchemaSource::with_registry(
        WriterSchemas::new(),
        Box::new(registry.clone()),
        policy,
        metrics.clone(),
    );
    (source, metrics)
}

fn framed(id: u32) -> Vec<u8> {
    let tp = Touchpoint {
        event_id: "e1".into(),
        customer_id: "c1".into(),
        occurred_at: NOW,
        channel: crate::model::Channel::Web,
        action: "login".into(),
        value: None,
        session_id: None,
        attributes: Default::default(),
    };
    let mut body = Vec::new();
    avro::encode_datum(&tp, &mut body);
    let mut out = Vec::new();
    confluent::frame(id, &body, &mut out);
    out
}

/// The dead-letter detail of resolving `id`, or `None` when it decodes.
fn resolve(source: &mut SchemaSource, id: u32, at: EventTime) -> Option<String> {
    let bytes = framed(id);
    match source.resolve(&bytes, at) {
        Ok(schemas) => {
            schemas.decode(&bytes).unwrap();
            None
        }
        Err(invalid) => {
            assert_eq!(invalid.reason, InvalidReason::UnknownSchemaId);
            Some(invalid.detail)
        }
    }
}

fn lookups(metrics: &Metrics, result: &str) -> u64 {
    let text = metrics.encode_text();
    let line = format!("journeyd_schema_lookups_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |v| v.parse().unwrap())
}

#[test]
fn an_unknown_id_is_fetched_once_and_kept() {
    let registry = Scripted::with(7, TOUCHPOINT);
    let (mut source, metrics) = source(&registry, policy());
    assert_eq!(resolve(&mut source, 7, NOW), None);
    assert_eq!(resolve(&mut source, 7, NOW.plus_ms(1)), None);
    registry.set_down(true);
    assert_eq!(resolve(&mut source, 7, NOW.plus_ms(2)), None);
    assert_eq!(registry.requests(), [7]);
    assert!(source.known().contains(7));
    assert_eq!(lookups(&metrics, "fetched"), 1);
}

#[test]
fn local_schemas_come_first_and_unframed_records_pass_to_the_decoder() {
    let registry = Scripted::default();
    let mut known = WriterSchemas::new();
    known.insert_json(3, TOUCHPOINT).unwrap();
    let metrics = Arc::new(Metrics::new().unwrap());
    let mut source =
        SchemaSource::with_registry(known, Box::new(registry.clone()), policy(), metrics);
    assert_eq!(resolve(&mut source, 3, NOW), None);
    assert!(source.resolve(b"{\"json\":1}", NOW).is_ok());
    assert!(source.resolve(&[0, 0], NOW).is_ok());
    assert!(registry.requests().is_empty());
}

#[test]
fn without_a_registry_unknown_ids_are_left_to_the_decoder() {
    let mut source = SchemaSource::local(WriterSchemas::new());
    let bytes = framed(9);
    let schemas = source.resolve(&bytes, NOW).unwrap();
    assert_eq!(
        schemas.decode(&bytes).unwrap_err().reason,
        InvalidReason::UnknownSchemaId
    );
}

#[test]
fn ids_the_registry_does_not_know_are_remembered_for_a_while() {
    let registry = Scripted::default();
    let (mut source, metrics) = source(&registry, policy());
    let detail = resolve(&mut source, 40, NOW).unwrap();
    assert_eq!(
        detail,
        "schema id 40: not found (HTTP 404, error 40403): Schema not found"
    );
    for ms in [1, 1000, 59_999] {
        assert_eq!(
            resolve(&mut source, 40, NOW.plus_ms(ms)).unwrap(),
            "schema id 40: no usable schema in the schema registry at the last look-up"
        );
    }
    assert_eq!(registry.requests(), [40], "one request per id and TTL");
    registry
        .0
        .lock()
        .unwrap()
        .schemas
        .insert(40, TOUCHPOINT.into());
    assert_eq!(resolve(&mut source, 40, NOW.plus_ms(60_000)), None);
    assert_eq!(registry.requests(), [40, 40]);
    assert_eq!(lookups(&metrics, "unknown"), 4);
}

#[test]
fn the_memory_of_unknown_ids_is_bounded() {
    let mut policy = policy();
    policy.max_unknown = 3;
    let mut unknown = UnknownIds::default();
    for id in 0..10 {
        unknown.insert(id, NOW.plus_ms(i64::from(id)), &policy);
        assert!(unknown.len() <= 3);
    }
    assert!(unknown.contains(9, NOW.plus_ms(10)));
    assert!(
        !unknown.contains(0, NOW.plus_ms(10)),
        "the oldest is forgotten"
    );
    unknown.insert(9, NOW.plus_ms(20), &policy);
    assert!(unknown.contains(9, NOW.plus_ms(60_019)));
    assert!(!unknown.contains(9, NOW.plus_ms(60_020)));
    policy.max_unknown = 0;
    unknown.insert(11, NOW, &policy);
    assert_eq!(unknown.len(), 0);
}

#[test]
fn schemas_journeyd_cannot_read_are_unknown() {
    let registry = Scripted::with(5, "{\"type\": \"record\"}");
    let (mut source, _) = source(&registry, policy());
    let detail = resolve(&mut source, 5, NOW).unwrap();
    assert!(
        detail.starts_with("schema id 5: not a valid Avro schema: "),
        "{detail}"
    );
    assert!(resolve(&mut source, 5, NOW.plus_ms(1)).is_some());
    assert_eq!(registry.requests(), [5]);
}

#[test]
fn an_unreachable_registry_is_retried_then_left_alone_then_probed() {
    let registry = Scripted::with(7, TOUCHPOINT);
    registry.set_down(true);
    let (mut source, metrics) = source(&registry, policy());
    let detail = resolve(&mut source, 7, NOW).unwrap();
    assert_eq!(
        detail,
        "schema id 7: the schema registry is unreachable (unavailable: connection refused)"
    );
    let retried = registry.requests().len();
    assert!(retried >= 2, "retried with backoff: {retried}");

    // Within the probe interval: dead-lettered without a request.
    let detail = resolve(&mut source, 8, NOW.plus_ms(9_000)).unwrap();
    assert!(
        detail.starts_with("schema id 8: not looked up, the schema registry was unreachable"),
        "{detail}"
    );
    assert_eq!(registry.requests().len(), retried);

    // After it: one probe, no retries.
    assert!(resolve(&mut source, 7, NOW.plus_ms(10_100)).is_some());
    assert_eq!(registry.requests().len(), retried + 1);

    registry.set_down(false);
    assert_eq!(resolve(&mut source, 7, NOW.plus_ms(20_200)), None);
    assert_eq!(lookups(&metrics, "unavailable"), 3);
    assert_eq!(lookups(&metrics, "fetched"), 1);
}

#[test]
fn a_flood_of_unknown_ids_is_throttled() {
    let registry = Scripted::default();
    let mut policy = policy();
    policy.max_lookups_per_second = 3;
    let (mut source, metrics) = source(&registry, policy);
    for id in 100..110 {
        assert!(resolve(&mut source, id, NOW.plus_ms(500)).is_some());
    }
    assert_eq!(registry.requests(), [100, 101, 102]);
    let detail = resolve(&mut source, 110, NOW.plus_ms(999)).unwrap();
    assert_eq!(
        detail,
        "schema id 110: not looked up, more than 3 unknown schema ids this second"
    );
    assert!(resolve(&mut source, 110, NOW.plus_ms(1000)).is_some());
    assert_eq!(registry.requests(), [100, 101, 102, 110]);
    assert_eq!(lookups(&metrics, "throttled"), 8);
}

/// A registry whose answers wait until the test lets them through.
struct Gated {
    inner: Scripted,
    gate: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl FetchSchema for Gated {
    fn fetch(&self, id: u32) -> Result<String, RegistryError> {
        self.inner.0.lock().unwrap().requests.push(id);
        let _ = self.gate.lock().unwrap().recv();
        let script = self.inner.0.lock().unwrap();
        Ok(script.schemas.get(&id).cloned().unwrap_or_default())
    }
}

/// A source whose registry knows 7 and 8 and answers once per `()` sent.
fn gated(max_concurrent: usize) -> (SchemaSource, Scripted, std::sync::mpsc::Sender<()>) {
    let inner = Scripted::with(7, TOUCHPOINT);
    inner.0.lock().unwrap().schemas.insert(8, TOUCHPOINT.into());
    let (open, gate) = std::sync::mpsc::channel();
    let mut known = WriterSchemas::new();
    known.insert_json(3, TOUCHPOINT).unwrap();
    let mut policy = policy();
    policy.max_concurrent = max_concurrent;
    let fetch = Gated {
        inner: inner.clone(),
        gate: Mutex::new(gate),
    };
    let metrics = Arc::new(Metrics::new().unwrap());
    let source = SchemaSource::with_registry(known, Box::new(fetch), policy, metrics);
    (source, inner, open)
}

/// Polls `completed` until a look-up ends.
fn next_completed(source: &mut SchemaSource) -> Vec<Completed> {
    let clock = Stopwatch::start();
    loop {
        let completed = source.completed(NOW);
        if !completed.is_empty() || clock.elapsed() > Duration::from_secs(10) {
            return completed;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn pending(source: &mut SchemaSource, id: u32) -> bool {
    matches!(source.try_resolve(&framed(id), NOW), Ok(Resolved::Pending(p)) if p == id)
}

#[test]
fn a_look_up_runs_aside_while_known_ids_resolve() {
    let (mut source, registry, open) = gated(4);
    assert!(pending(&mut source, 7));
    assert!(pending(&mut source, 7), "still under way");
    assert!(source.looking_up());
    assert!(matches!(
        source.try_resolve(&framed(3), NOW),
        Ok(Resolved::Ready(_))
    ));
    assert!(source.completed(NOW).is_empty());
    open.send(()).unwrap();
    assert_eq!(
        next_completed(&mut source),
        [Completed {
            id: 7,
            outcome: Ok(())
        }]
    );
    assert!(!source.looking_up());
    assert!(matches!(
        source.try_resolve(&framed(7), NOW),
        Ok(Resolved::Ready(_))
    ));
    assert_eq!(registry.requests(), [7], "one request per id");
}

#[test]
fn look_ups_beyond_the_limit_wait_for_a_free_one() {
    let (mut source, registry, open) = gated(1);
    assert!(pending(&mut source, 7));
    assert!(pending(&mut source, 8), "pending, not started");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(registry.requests(), [7]);
    open.send(()).unwrap();
    assert_eq!(next_completed(&mut source)[0].id, 7);
    assert!(pending(&mut source, 8), "started now");
    open.send(()).unwrap();
    assert_eq!(next_completed(&mut source)[0].id, 8);
    assert_eq!(registry.requests(), [7, 8]);
}
