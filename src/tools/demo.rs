//! `journeyd demo`: the whole pipeline with nothing installed (README.md#quick-start).
//!
//! One process runs, in this order:
//!
//! 1. an embedded Kafka-protocol cluster ([`cluster`]: librdkafka's mock
//!    broker on 127.0.0.1) with the input, output and changelog topics;
//! 2. the real service ([`Service::start`]) against it: consumer, engine,
//!    producer, metrics and HTTP on `127.0.0.1:<http-port>`;
//! 3. a producer thread ([`feed`](crate::tools::feed)) writing the synthetic clickstream live,
//!    at most `--rate` touchpoints per second;
//! 4. a consumer thread ([`watch`]) reading `journey.stage-changes` back,
//!    as any downstream service would;
//! 5. on this thread, a summary refreshed every second ([`dashboard`]) from
//!    the service's Prometheus registry, until Ctrl-C, SIGTERM or
//!    `--duration` ends the demo.
//!
//! Then the producer stops, the service drains and commits
//! ([`Service::stop`]), the final summary is printed and the cluster goes
//! away. Standard output carries the connection details (a
//! `bootstrap: host:port` line for any Kafka client, the metrics URL);
//! standard error carries the summary.
//!
//! Simulated months play out over minutes: the generator's calendar runs
//! [`timescale::SPEEDUP`] times faster than real time (one simulated day
//! every two seconds), touchpoints are stamped with the wall-clock instant
//! they are produced at, and the journey model's durations are compressed
//! by the same factor, so a customer silent for 90 simulated days lapses
//! after 3 real minutes and the hybrid watermark fires such timers even
//! while the stream is thin. See [`timescale`].

mod cluster;
mod dashboard;
mod reading;
mod screen;
mod summary;
pub(crate) mod timescale;
mod watch;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};

use self::cluster::{Cluster, INPUT_PARTITIONS};
use self::dashboard::{Dashboard, Sources};
use self::reading::Layout;
use self::watch::Recent;
use crate::config::{Config, TimeMode};
use crate::model::OutputKind;
use crate::runtime::Service;
use crate::tools::feed::{self, FeedPlan, FeedStats, Timing};

/// How often the summary refreshes.
const REFRESH: Duration = Duration::from_secs(1);
/// How long the service may take to drain and commit on the way out.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of `journeyd demo`.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Touchpoints per second the producer writes, at most.
    pub rate: u64,
    /// Customers per generator run.
    pub customers: u64,
    /// The HTTP port, on 127.0.0.1 (0: any free port).
    pub http_port: u16,
    /// Stop by itself after this long; `None`: until Ctrl-C or SIGTERM.
    pub duration: Option<Duration>,
}

/// Runs the demo until Ctrl-C, SIGTERM or the duration ends it; `Ok` when
/// everything shut down cleanly.
pub fn run(options: &DemoOptions) -> anyhow::Result<()> {
    check(options)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut signals = runtime.block_on(async { Signals::new() })?;
    let mut config = demo_config(options.http_port);
    let cluster = Cluster::start(&config)?;
    config.kafka.brokers = cluster.bootstrap().to_owned();
    config.validate().context("the demo configuration")?;
    let service = Service::start(config.clone()).context("cannot start the pipeline")?;
    let helpers = match Helpers::start(options, &config, &cluster) {
        Ok(helpers) => helpers,
        Err(error) => {
            let _ = service.stop();
            return Err(error);
        }
    };
    print_banner(&config, &cluster, service.http_addr());
    let mut dashboard = Dashboard::new(Layout::of(&config));
    let ended = {
        let sources = helpers.sources(&service, &cluster);
        let gone = || helpers.gone(&service);
        let wait = wait_for_end(
            &mut signals,
            &mut dashboard,
            &sources,
            options.duration,
            gone,
        );
        runtime.block_on(wait)
    };
    shut_down(ended, service, helpers, &mut dashboard, cluster)
}

/// Options the demo cannot run with.
fn check(options: &DemoOptions) -> anyhow::Result<()> {
    anyhow::ensure!(options.rate > 0, "--rate must be at least 1");
    anyhow::ensure!(options.customers > 0, "--customers must be at least 1");
    Ok(())
}

/// The service's configuration, but for the brokers: the defaults, HTTP
/// on 127.0.0.1, hybrid time and the journey model on the demo's time
/// scale. Consumer statistics (hence the lag shown) refresh every second.
fn demo_config(http_port: u16) -> Config {
    let mut config = Config::default();
    config.kafka.group_id = "journeyd-demo".to_owned();
    config
        .kafka
        .consumer_properties
        .insert("statistics.interval.ms", "1000");
    config.http.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, http_port));
    config.time.mode = TimeMode::Hybrid;
    config.runtime.shutdown_timeout = SHUTDOWN_TIMEOUT;
    timescale::compress_model(&mut config);
    config
}

/// The demo's own threads: the producer and the stage-change consumer.
struct Helpers {
    /// The producer thread; `None` once joined.
    feed: Option<JoinHandle<anyhow::Result<()>>>,
    /// Asks the producer to flush and end.
    feed_stop: Arc<AtomicBool>,
    /// What the producer has sent, for the summary.
    feed_stats: Arc<FeedStats>,
    /// The stage-change consumer thread.
    watch: JoinHandle<()>,
    /// Asks the consumer to end; set last, after the service has drained.
    watch_stop: Arc<AtomicBool>,
    /// The stage changes read back, for the summary.
    recent: Arc<Recent>,
}

impl Helpers {
    fn start(options: &DemoOptions, config: &Config, cluster: &Cluster) -> anyhow::Result<Helpers> {
        let topic = &config.outputs.stage_changes;
        let partitions = cluster.partitions(topic).unwrap_or(1);
        let (recent, watch_stop) = (Arc::new(Recent::default()), Arc::default());
        let watch = watch::spawn(
            cluster.bootstrap(),
            topic,
            partitions,
            recent.clone(),
            Arc::clone(&watch_stop),
        )?;
        let plan = FeedPlan {
            bootstrap: cluster.bootstrap().to_owned(),
            topic: config.inputs[0].topic.clone(),
            rate: Some(options.rate),
            timing: Timing::Live {
                customers: options.customers,
            },
            limit: None,
            client_id: "journeyd-demo-feed".into(),
            properties: Vec::new(),
        };
        let (feed_stats, feed_stop) = (Arc::new(FeedStats::default()), Arc::default());
        let feed = match feed::spawn(plan, Arc::clone(&feed_stats), Arc::clone(&feed_stop)) {
            Ok(feed) => feed,
            Err(error) => {
                watch_stop.store(true, Relaxed);
                let _ = watch.join();
                return Err(error);
            }
        };
        Ok(Helpers {
            feed: Some(feed),
            feed_stop,
            feed_stats,
            watch,
            watch_stop,
            recent,
        })
    }

    fn sources<'a>(&'a self, service: &'a Service, cluster: &'a Cluster) -> Sources<'a> {
        Sources {
            registry: service.metrics().registry(),
            readiness: service.readiness(),
            feed: &self.feed_stats,
            recent: &self.recent,
            bootstrap: cluster.bootstrap(),
            http: service.http_addr(),
        }
    }

    /// Whether the service or the producer, which run until asked to
    /// stop, has ended by itself.
    fn gone(&self, service: &Service) -> Option<Ended> {
        if service.is_finished() {
            Some(Ended::Service)
        } else if self.feed.as_ref().is_some_and(JoinHandle::is_finished) {
            Some(Ended::Producer)
        } else {
            None
        }
    }

    /// Stops the producer and reports how it ended.
    fn stop_feed(&mut self) -> anyhow::Result<()> {
        self.feed_stop.store(true, Relaxed);
        match self.feed.take() {
            Some(feed) => feed
                .join()
                .map_err(|_| anyhow::anyhow!("the demo's producer thread panicked"))?,
            None => Ok(()),
        }
    }

    /// Stops the stage-change consumer.
    fn stop_watch(self) {
        self.watch_stop.store(true, Relaxed);
        let _ = self.watch.join();
    }
}

/// Connection details on standard output, for people and scripts.
fn print_banner(config: &Config, cluster: &Cluster, http: SocketAddr) {
    let bootstrap = cluster.bootstrap();
    let outputs = &config.outputs;
    println!("journeyd demo: the whole pipeline on an embedded Kafka cluster.");
    println!("  bootstrap: {bootstrap}");
    println!(
        "  input:     {} ({INPUT_PARTITIONS} partitions, JSON)",
        config.inputs[0].topic
    );
    let derived: Vec<&str> = OutputKind::ALL.map(|k| outputs.topic(k)).into();
    println!("  outputs:   {}", derived.join(" "));
    println!(
        "             {} {}",
        outputs.dlq,
        outputs.topic(OutputKind::Audit)
    );
    println!("  metrics:   http://{http}/metrics");
    println!("  customer:  http://{http}/customers/c-0000000001");
    println!(
        "  watch:     kcat -b {bootstrap} -t {} -C",
        outputs.stage_changes
    );
    println!(
        "  time:      one simulated day every {} s; 90 silent days lapse in 3 min",
        timescale::DAY_WALL.as_secs()
    );
}

/// SIGINT and SIGTERM, registered before anything slow starts.
struct Signals {
    /// Ctrl-C.
    interrupt: Signal,
    /// `kill`, service managers, container runtimes.
    terminate: Signal,
}

impl Signals {
    /// Must run inside the runtime that later waits for them.
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }
}

/// Why the demo ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// Ctrl-C or SIGTERM.
    Signal(&'static str),
    /// `--duration` passed.
    Duration,
    /// The service's processing thread ended by itself.
    Service,
    /// The producer thread ended by itself (an error).
    Producer,
}

impl Ended {
    fn describe(self) -> &'static str {
        match self {
            Ended::Signal(name) => name,
            Ended::Duration => "--duration reached",
            Ended::Service => "the processing thread ended",
            Ended::Producer => "the producer ended",
        }
    }
}

/// Refreshes the summary every second until a signal, the duration or a
/// thread that should not end does.
async fn wait_for_end(
    signals: &mut Signals,
    dashboard: &mut Dashboard,
    sources: &Sources<'_>,
    duration: Option<Duration>,
    gone: impl Fn() -> Option<Ended>,
) -> Ended {
    let deadline = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(REFRESH);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = signals.interrupt.recv() => return Ended::Signal("SIGINT"),
            _ = signals.terminate.recv() => return Ended::Signal("SIGTERM"),
            () = &mut deadline => return Ended::Duration,
            _ = ticker.tick() => dashboard.refresh(sources),
        }
        if let Some(ended) = gone() {
            return ended;
        }
    }
}

/// Stops the producer, drains the service, prints the final summary and
/// stops the cluster; the first error wins.
fn shut_down(
    ended: Ended,
    service: Service,
    mut helpers: Helpers,
    dashboard: &mut Dashboard,
    cluster: Cluster,
) -> anyhow::Result<()> {
    let fed = helpers.stop_feed();
    let metrics = Arc::clone(service.metrics());
    let (readiness, http) = (service.readiness().clone(), service.http_addr());
    let service_died = service.is_finished();
    let stopped = service.stop();
    let sources = Sources {
        registry: metrics.registry(),
        readiness: &readiness,
        feed: &helpers.feed_stats,
        recent: &helpers.recent,
        bootstrap: cluster.bootstrap(),
        http,
    };
    let closing = closing_line(ended, dashboard.uptime(), &helpers.feed_stats);
    dashboard.finish(&sources, &closing);
    helpers.stop_watch();
    cluster.stop();
    fed?;
    stopped?;
    anyhow::ensure!(!service_died, "the processing thread ended unexpectedly");
    Ok(())
}

/// The last line: how long, why it stopped, what was produced.
fn closing_line(ended: Ended, uptime: Duration, feed: &FeedStats) -> String {
    let delivered = feed.delivered.load(Relaxed);
    let invalid = feed.invalid.load(Relaxed);
    let runs = feed.run.load(Relaxed);
    format!(
        "journeyd demo stopped after {} s ({}): produced {delivered} touchpoints \
         ({invalid} invalid) in {runs} generator run(s).",
        uptime.as_secs(),
        ended.describe()
    )
}
