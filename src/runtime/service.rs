//! `journeyd run`: wiring the service together and taking it down.
//!
//! [`Service::start`] refuses settings meant for replays only, then builds
//! metrics, the HTTP server (on a small tokio runtime of its own), the
//! producer, the pipeline, checks or creates the changelog and output
//! topics ([`super::provision`]), then the consumer, the group directory
//! that routes customer lookups ([`crate::source::group`]) and the driver
//! thread;
//! [`Service::stop`] asks the driver to finish and joins everything,
//! reporting how each part ended. [`run`] is `start`, wait for
//! SIGTERM or SIGINT, `stop`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context;
use rdkafka::consumer::Consumer as _;
use tokio::sync::{mpsc, oneshot};

use crate::codec::confluent::WriterSchemas;
use crate::codec::output::OutputEncoder;
use crate::codec::schemas;
use crate::config::{Config, InputEncoding, OutputFormat};
use crate::engine::Engine;
use crate::http::HttpState;
use crate::http::routing::{Forwarder, Partitioner, Routing};
use crate::registry::{
    LookupPolicy, RegistryClient, Retry, SchemaSource, register_outputs, value_subject,
};
use crate::sink::kafka::{Sink, transactional_id};
use crate::sink::transactions::ProducerHook;
use crate::source::group::{DirectoryChannels, GroupDirectory};
use crate::source::kafka;
use crate::telemetry::Readiness;
use crate::telemetry::events::{InternalEvent, OutputSchemaRegistered};
use crate::telemetry::{Metrics, rule_actions};

use super::driver::{Driver, Requests};
use super::pipeline::{Pipeline, PipelineParts};
use super::provision::ensure_topics;
use super::restore::Restorer;

/// Customer lookups waiting for the driver, at most.
const QUERY_QUEUE: usize = 64;

/// HTTP erasure requests waiting for the driver, at most.
const ERASURE_QUEUE: usize = 64;

/// A running service.
pub struct Service {
    metrics: Arc<Metrics>,
    readiness: Readiness,
    stop: Arc<AtomicBool>,
    driver: JoinHandle<anyhow::Result<()>>,
    http_addr: SocketAddr,
    http_stop: oneshot::Sender<()>,
    runtime: tokio::runtime::Runtime,
    http: tokio::task::JoinHandle<()>,
    directory: GroupDirectory,
}

impl Service {
    /// Starts consuming, processing and serving HTTP.
    pub fn start(config: Config) -> anyhow::Result<Service> {
        Service::start_with(config, None)
    }

    /// Like [`Service::start`], with every producer wrapped by `hook`: a
    /// seam to observe the transactional calls and inject failures.
    pub fn start_with(mut config: Config, hook: Option<ProducerHook>) -> anyhow::Result<Service> {
        config.validate_for_run()?;
        if config.runtime.exactly_once {
            // Fixed once: the default is unique to the process.
            config.runtime.transactional_id = Some(transactional_id(&config));
        }
        let metrics = Arc::new(Metrics::new()?);
        metrics.resolve_output_topics(config.outputs.topics().into_iter().map(|(_, t)| t));
        let readiness = Readiness::new();
        tracing::debug!(?config, "Configuration loaded.");
        let (query_tx, query_rx) = mpsc::channel(QUERY_QUEUE);
        let (erasure_tx, erasure_rx) = mpsc::channel(ERASURE_QUEUE);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("journeyd-http")
            .enable_all()
            .build()?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(config.http.listen))
            .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
        let http_addr = listener.local_addr()?;
        let (routing, directory) = routing(&mut config, http_addr)?;
        let token = config
            .http
            .auth_token
            .as_ref()
            .map(|t| t.expose().to_owned());
        let state = HttpState::new(metrics.clone(), readiness.clone(), query_tx, token)
            .with_erasures(erasure_tx, &config.outputs.audit)
            .with_config(&config.http)
            .with_routing(routing);
        let (http_stop, stopped) = oneshot::channel::<()>();
        let http = runtime.spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(error) = crate::http::serve(listener, state, shutdown).await {
                tracing::error!(%error, "HTTP server failed.");
            }
        });
        let mut pipeline = build_pipeline(&config, metrics.clone(), readiness.clone(), hook)?;
        let topics = runtime.block_on(ensure_topics(&config))?;
        tracing::debug!(
            changelog = config.runtime.changelog_topic.as_str(),
            partitions = topics.partitions,
            changelog_created = topics.changelog_created,
            outputs_created = ?topics.outputs_created,
            "Topics checked."
        );
        pipeline.init_transactions().with_context(|| {
            format!(
                "runtime.exactly_once = true: cannot initialise Kafka transactions with \
                 transactional.id \"{}\"",
                config
                    .runtime
                    .transactional_id
                    .as_deref()
                    .unwrap_or_default()
            )
        })?;
        let pipeline = Arc::new(Mutex::new(pipeline));
        let consumer = kafka::subscribe(
            &config,
            pipeline.clone(),
            metrics.clone(),
            readiness.clone(),
        )
        .context("cannot create the Kafka consumer (kafka.*)")?;
        let partitions = u32::try_from(topics.partitions).unwrap_or(0);
        let directory = GroupDirectory::start(&config, partitions, directory)
            .context("cannot create the consumer that describes the group (kafka.*)")?;
        let refresh = directory.refresh();
        consumer.context().hooks().rebalances().connect(refresh);
        let driver = Driver::new(
            &config,
            consumer,
            pipeline,
            Requests {
                queries: query_rx,
                erasures: erasure_rx,
            },
            metrics.clone(),
            readiness.clone(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let driver_stop = stop.clone();
        let driver = std::thread::Builder::new()
            .name("journeyd-driver".into())
            .spawn(move || driver.run(&driver_stop))?;
        tracing::info!(http = %http_addr, brokers = %config.kafka.brokers, "journeyd is running.");
        Ok(Service {
            metrics,
            readiness,
            stop,
            driver,
            http_addr,
            http_stop,
            runtime,
            http,
            directory,
        })
    }

    /// Where the HTTP server listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The service's readiness.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Whether the driver thread has ended (it only ends when asked, when
    /// a record can never be delivered, or on a panic).
    pub fn is_finished(&self) -> bool {
        self.driver.is_finished()
    }

    /// Stops consuming, delivers and commits, then stops HTTP.
    pub fn stop(self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        let driver = self.driver.join();
        self.directory.stop();
        let _ = self.http_stop.send(());
        let http = self.runtime.block_on(self.http);
        self.runtime.shutdown_background();
        driver.map_err(|_| anyhow::anyhow!("the processing thread panicked"))??;
        http.context("the HTTP server task failed")?;
        tracing::info!("journeyd stopped.");
        Ok(())
    }
}

/// How the HTTP side routes customer lookups (docs/operations.md#any-instance-answers),
/// with the channels of the group directory that keeps its table. Resolves
/// `http.advertised_url` now that the port is bound (the group member's
/// `client.id` carries it).
fn routing(config: &mut Config, bound: SocketAddr) -> anyhow::Result<(Routing, DirectoryChannels)> {
    config.http.advertised_url = config.http.advertised(bound);
    let me = config.http.advertised_url.as_deref();
    match me {
        Some(url) => tracing::info!(
            advertised_url = url,
            "The other instances forward lookups of the customers held here to this address."
        ),
        None => tracing::warn!(
            listen = %bound,
            "http.listen is a wildcard address and http.advertised_url is not set: the other \
             instances cannot forward lookups of the customers held here (they answer 503)."
        ),
    }
    let partitioner = Partitioner::of(&config.kafka)
        .context("kafka.producer_properties.partitioner: must partition by key")?;
    let (channels, owners, refresh) = DirectoryChannels::new();
    let routing = Routing {
        me: me.map(Arc::from),
        partitioner,
        owners,
        refresh,
        forwarder: Forwarder::new(me),
    };
    Ok((routing, channels))
}

fn build_pipeline(
    config: &Config,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    hook: Option<ProducerHook>,
) -> anyhow::Result<Pipeline> {
    let engine = Engine::new(config)?;
    let restorer = Restorer::new(config, metrics.clone(), readiness)
        .context("cannot create the changelog consumer (kafka.*)")?;
    let registry = registry_client(config, &metrics)?;
    let encoder = output_encoder(config, registry.as_ref(), &metrics)?;
    let schemas = schema_source(config, registry, metrics.clone())?;
    let (sink, deliveries) = Sink::with_hook(config, metrics.clone(), hook)
        .context("cannot create the Kafka producer (kafka.*)")?;
    let topics: Vec<&str> = config.inputs.iter().map(|i| i.topic.as_str()).collect();
    let consumed = metrics.consumed_counters(&topics, engine.rules(), rule_actions(config));
    let parts = PipelineParts {
        engine,
        restorer,
        sink,
        deliveries,
        encoder,
        schemas,
        metrics,
        consumed,
    };
    Ok(Pipeline::new(config, parts))
}

/// The client of `schema_registry.url`, when one is configured. Nothing is
/// sent yet.
fn registry_client(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<RegistryClient>> {
    let registry = &config.schema_registry;
    let Some(url) = &registry.url else {
        return Ok(None);
    };
    let client = RegistryClient::new(url, registry.timeout, metrics.clone())
        .map_err(|e| anyhow::anyhow!("schema_registry.url: {e}"))?;
    Ok(Some(client))
}

/// The encoder of derived records. Avro values carry the schema ids of
/// `schema_registry.output_schema_ids` (and `audit_schema_id`) or, without
/// them, the ids the registry gives the output schemas when they are
/// registered now.
fn output_encoder(
    config: &Config,
    registry: Option<&RegistryClient>,
    metrics: &Metrics,
) -> anyhow::Result<OutputEncoder> {
    if config.outputs.format == OutputFormat::Json {
        return Ok(OutputEncoder::json());
    }
    let ids = match (config.schema_registry.output_schema_ids, registry) {
        (Some(ids), _) => ids,
        (None, Some(client)) => {
            let retry = Retry::new(config.schema_registry.retry_for);
            register_outputs(client, &config.outputs, retry, metrics).with_context(|| {
                format!(
                    "schema_registry.url: registering the output schemas with {}",
                    client.base_url()
                )
            })?
        }
        (None, None) => anyhow::bail!(
            "schema_registry.output_schema_ids: outputs.format = \"avro\" needs the schema ids \
             to write, or schema_registry.url to register the output schemas with"
        ),
    };
    let mut encoder = OutputEncoder::new(OutputFormat::Avro, ids);
    if let Some(id) = audit_schema_id(config, registry, metrics)? {
        encoder = encoder.with_audit_schema_id(id);
    }
    if let Some(id) = evicted_schema_id(config, registry, metrics)? {
        encoder = encoder.with_evicted_schema_id(id);
    }
    Ok(encoder)
}

/// The schema id of Avro `CustomerEvicted` records: configured, or
/// registered now under `<audit topic>-journeyd.v1.CustomerEvicted` (the
/// subject Confluent's `TopicRecordNameStrategy` names), so that the audit
/// topic's own subject keeps `CustomerErased` alone and its consumers
/// unchanged. `None` without either: evictions are announced as JSON.
fn evicted_schema_id(
    config: &Config,
    registry: Option<&RegistryClient>,
    metrics: &Metrics,
) -> anyhow::Result<Option<u32>> {
    let client = match (config.schema_registry.evicted_schema_id, registry) {
        (Some(id), _) => return Ok(Some(id)),
        (None, Some(client)) => client,
        (None, None) => {
            tracing::warn!(
                topic = %config.outputs.audit,
                "schema_registry.evicted_schema_id is not set: CustomerEvicted records on the \
                 audit topic are written as JSON."
            );
            return Ok(None);
        }
    };
    let subject = format!("{}-journeyd.v1.CustomerEvicted", config.outputs.audit);
    register_schema(config, client, metrics, &subject, schemas::CUSTOMER_EVICTED).map(Some)
}

/// The schema id of Avro `CustomerErased` records: configured, or
/// registered now. `None` without either: audit records are then written
/// as JSON, which a warning says.
fn audit_schema_id(
    config: &Config,
    registry: Option<&RegistryClient>,
    metrics: &Metrics,
) -> anyhow::Result<Option<u32>> {
    match (config.schema_registry.audit_schema_id, registry) {
        (Some(id), _) => Ok(Some(id)),
        (None, Some(client)) => register_audit_schema(config, client, metrics).map(Some),
        (None, None) => {
            tracing::warn!(
                topic = %config.outputs.audit,
                "schema_registry.audit_schema_id is not set: CustomerErased records on the audit \
                 topic are written as JSON."
            );
            Ok(None)
        }
    }
}

/// Registers `schemas/customer_erased.avsc` under the audit topic's
/// subject; the id to write.
fn register_audit_schema(
    config: &Config,
    client: &RegistryClient,
    metrics: &Metrics,
) -> anyhow::Result<u32> {
    let subject = value_subject(&config.outputs.audit);
    register_schema(config, client, metrics, &subject, schemas::CUSTOMER_ERASED)
}

/// Registers `schema` under `subject` for an audit record; the id to write.
fn register_schema(
    config: &Config,
    client: &RegistryClient,
    metrics: &Metrics,
    subject: &str,
    schema: &str,
) -> anyhow::Result<u32> {
    let retry = Retry::new(config.schema_registry.retry_for);
    let id = retry
        .run(|| client.register(subject, schema))
        .with_context(|| {
            format!(
                "schema_registry.url: cannot register the schema of outputs.audit under subject \
                 \"{subject}\" with {}",
                client.base_url()
            )
        })?;
    OutputSchemaRegistered { subject, id }.emit(metrics);
    Ok(id)
}

/// Writer schemas for Confluent-framed inputs: those of
/// `schema_registry.schemas_dir` (files named `<id>.avsc`) first, then,
/// with `schema_registry.url`, those the registry has.
fn schema_source(
    config: &Config,
    registry: Option<RegistryClient>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<SchemaSource> {
    let mut schemas = WriterSchemas::new();
    let confluent = config
        .inputs
        .iter()
        .any(|i| i.encoding == InputEncoding::Confluent);
    if let (true, Some(dir)) = (confluent, &config.schema_registry.schemas_dir) {
        load_schema_dir(dir, &mut schemas)?;
    }
    Ok(match registry {
        Some(client) if confluent => {
            let policy = LookupPolicy::new(config.schema_registry.retry_for);
            SchemaSource::with_registry(schemas, Box::new(client), policy, metrics)
        }
        _ => SchemaSource::local(schemas),
    })
}

fn load_schema_dir(dir: &Path, schemas: &mut WriterSchemas) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("schema_registry.schemas_dir: cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let Some(id) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path)?;
        schemas
            .insert_json(id, &text)
            .map_err(|e| anyhow::anyhow!("schema_registry.schemas_dir: {}: {e}", path.display()))?;
    }
    Ok(())
}

/// `journeyd run`: start, wait for SIGTERM or SIGINT, stop.
pub fn run(config: Config) -> anyhow::Result<()> {
    let service = Service::start(config)?;
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    signals.block_on(wait_for_signal(&service));
    service.stop()
}

async fn wait_for_signal(service: &Service) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%error, "Cannot listen for SIGTERM; only Ctrl-C stops journeyd.");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = ticker.tick() => if service.is_finished() { break },
        }
    }
    tracing::info!("Shutdown requested.");
}
