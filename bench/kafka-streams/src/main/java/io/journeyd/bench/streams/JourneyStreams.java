package io.journeyd.bench.streams;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.Stores;

/**
 * journeyd's default journey model on Kafka Streams: the contender beside
 * journeyd in the end-to-end benchmark (scripts/bench-e2e). It reads JSON
 * touchpoints keyed by customer, keeps each customer's journey in a
 * persistent RocksDB store with a changelog topic, and publishes stage
 * changes as JSON to the output topic.
 *
 * <pre>
 * java -cp 'target/kafka-streams/classes:target/kafka-streams/libs/*' \
 *     io.journeyd.bench.streams.JourneyStreams \
 *     BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC APPLICATION_ID GUARANTEE STATE_DIR REPORT_FILE \
 *     [PROPERTY=VALUE ...]
 * </pre>
 *
 * GUARANTEE is {@code at_least_once} or {@code exactly_once_v2}; each
 * PROPERTY=VALUE overrides a Kafka Streams setting. It runs
 * until SIGTERM, then closes cleanly (committing what it processed) and
 * writes REPORT_FILE (see {@link Report}); it exits non-zero if a stream
 * thread fails.
 */
public final class JourneyStreams {
    /** Two stream threads: the machine has two cores. */
    private static final int THREADS = 2;
    /** As journeyd's {@code runtime.commit_interval} in the benchmark. */
    private static final int COMMIT_INTERVAL_MS = 100;

    private JourneyStreams() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 7) {
            System.err.println("usage: JourneyStreams BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC APPLICATION_ID "
                    + "at_least_once|exactly_once_v2 STATE_DIR REPORT_FILE [PROPERTY=VALUE ...]");
            System.exit(2);
        }
        String bootstrap = args[0], input = args[1], output = args[2], applicationId = args[3];
        Properties config = config(bootstrap, applicationId, args[4], args[5]);
        for (int i = 7; i < args.length; i++) {
            String[] property = args[i].split("=", 2);
            if (property.length != 2) {
                System.err.println("not PROPERTY=VALUE: " + args[i]);
                System.exit(2);
            }
            config.put(property[0], property[1]);
        }
        Report report = new Report();
        KafkaStreams streams = new KafkaStreams(topology(input, output, report), config,
                new TimedClients(output, report.latency));
        run(streams, report, Path.of(args[6]));
    }

    static Properties config(String bootstrap, String applicationId, String guarantee, String stateDir) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, THREADS);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, COMMIT_INTERVAL_MS);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        return p;
    }

    /** touchpoints -> process(store) -> stage changes. */
    static Topology topology(String input, String output, Report report) {
        StreamsBuilder builder = new StreamsBuilder();
        // Persistent (RocksDB), changelogged (the default), cached: like
        // journeyd, a customer changed several times between two commits
        // reaches the changelog once.
        builder.addStateStore(Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(JourneyProcessor.STORE), Serdes.String(), CustomerState.serde())
                .withCachingEnabled());
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.ByteArray()))
                .process(() -> new JourneyProcessor(report), JourneyProcessor.STORE)
                .to(output, Produced.with(Serdes.String(), Serdes.ByteArray()));
        return builder.build();
    }

    /** Runs until SIGTERM (exit after a clean close and the report) or a failed stream thread (exit 1). */
    private static void run(KafkaStreams streams, Report report, Path reportFile) throws InterruptedException {
        CountDownLatch stopped = new CountDownLatch(1);
        Thread closer = new Thread(() -> {
            streams.close(Duration.ofSeconds(30));
            try {
                report.write(reportFile);
            } catch (Exception e) {
                e.printStackTrace();
            }
        }, "journey-streams-close");
        streams.setUncaughtExceptionHandler(error -> {
            error.printStackTrace();
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> {
            System.out.println("State " + before + " -> " + now + ".");
            if (now == KafkaStreams.State.ERROR) {
                stopped.countDown();
            }
        });
        Runtime.getRuntime().addShutdownHook(closer);
        streams.start();
        stopped.await();
        // Only a failure gets here; SIGTERM ends the process through the hook.
        System.err.println("Kafka Streams failed; exiting.");
        Runtime.getRuntime().removeShutdownHook(closer);
        streams.close(Duration.ofSeconds(10));
        System.exit(1);
    }
}
