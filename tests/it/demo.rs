//! `journeyd demo` as a user runs it: the built binary, output captured
//! (not a terminal). While it runs, `/metrics` answers and its consumed
//! counter grows, and an outside Kafka client reading the printed bootstrap
//! address receives stage changes; then the demo stops by itself and exits 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use journeyd::clock::Stopwatch;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// How long the demo runs.
const DEMO_SECONDS: u64 = 20;
/// The longest the whole run may take, start-up and shutdown included.
const EXIT_WITHIN: Duration = Duration::from_secs(40);
const STAGE_CHANGES: &str = "journey.stage-changes";

/// Kills the demo on every way out of the test, passing or failing.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Standard output, line by line, as it comes.
fn lines_of(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Standard error, collected whole for the final checks and diagnostics.
fn collect(stream: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    (text, reader)
}

/// The value after `label` on the first line of `stdout` that has it.
fn wait_for_line(stdout: &Receiver<String>, label: &str) -> String {
    loop {
        let line = stdout
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("no {label:?} line on standard output: {e}"));
        if let Some(value) = line.trim().strip_prefix(label) {
            return value.trim().to_owned();
        }
    }
}

/// `GET path` over a fresh connection: status and body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_owned()))
}

/// The sum of every `journeyd_events_consumed_total` series in a scrape.
fn consumed(scrape: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with("journeyd_events_consumed_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Scrapes until the consumed counter is above `above`; the value seen.
fn consumed_above(port: u16, above: f64, within: Duration) -> f64 {
    let clock = Stopwatch::start();
    let mut last = None;
    while clock.elapsed() < within {
        if let Ok((status, body)) = http_get(port, "/metrics") {
            assert_eq!(status, 200, "GET /metrics: {body}");
            let value = consumed(&body);
            if value > above {
                return value;
            }
            last = Some(value);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("journeyd_events_consumed_total stayed at {last:?}, not above {above}");
}

/// Reads `journey.stage-changes` from the beginning, as an outside client,
/// until a record arrives; its payload.
fn first_stage_change(bootstrap: &str) -> Result<String, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "demo-test")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(Some(STAGE_CHANGES), Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let mut assignment = TopicPartitionList::new();
    for topic in metadata.topics() {
        for partition in topic.partitions() {
            assignment
                .add_partition_offset(topic.name(), partition.id(), Offset::Beginning)
                .map_err(|e| e.to_string())?;
        }
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    let clock = Stopwatch::start();
    while clock.elapsed() < Duration::from_secs(15) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let payload = message.payload().unwrap_or_default();
            return Ok(String::from_utf8_lossy(payload).into_owned());
        }
    }
    Err(format!("no record on {STAGE_CHANGES} within 15 s"))
}

/// Waits for the demo to exit by itself.
fn exit_status(demo: &mut Running, clock: &Stopwatch) -> std::process::ExitStatus {
    while clock.elapsed() < EXIT_WITHIN {
        if let Some(status) = demo.0.try_wait().expect("try_wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the demo did not exit within {EXIT_WITHIN:?}");
}

#[test]
fn the_demo_serves_metrics_publishes_stage_changes_and_exits_cleanly() {
    let clock = Stopwatch::start();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .args(["demo", "--duration", &DEMO_SECONDS.to_string()])
        .args(["--http-port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start journeyd demo");
    let mut demo = Running(child);
    let stdout = lines_of(demo.0.stdout.take().expect("stdout"));
    let (stderr, stderr_reader) = collect(demo.0.stderr.take().expect("stderr"));

    let bootstrap = wait_for_line(&stdout, "bootstrap:");
    assert!(bootstrap.starts_with("127.0.0.1:"), "{bootstrap}");
    let metrics = wait_for_line(&stdout, "metrics:");
    assert_eq!(metrics, format!("http://127.0.0.1:{port}/metrics"));
    let reader = {
        let bootstrap = bootstrap.clone();
        std::thread::spawn(move || first_stage_change(&bootstrap))
    };

    let first = consumed_above(port, 0.0, Duration::from_secs(15));
    let later = consumed_above(port, first, Duration::from_secs(10));
    assert!(later > first);
    let change = reader
        .join()
        .expect("consumer thread")
        .expect("a stage change");
    assert!(change.contains("\"to_stage\""), "{change}");

    let status = exit_status(&mut demo, &clock);
    stderr_reader.join().expect("stderr reader");
    let stderr = stderr.lock().unwrap().clone();
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(stderr.contains("journeyd demo stopped after"), "{stderr}");
    assert!(stderr.contains("consumed="), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "no terminal codes when not a terminal"
    );
}
