package io.journeyd.bench.streams;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;

import org.HdrHistogram.ConcurrentHistogram;
import org.HdrHistogram.Histogram;

/**
 * What the benchmark reads of a run: a "First record." line on standard
 * output when the first touchpoint is processed (its clock starts there),
 * and on shutdown a JSON file with the counts and the processing latency
 * (poll to acknowledgement of the stage change, see {@link TimedClients}):
 * exact percentiles, and cumulative counts at the bucket bounds of
 * journeyd's {@code journeyd_processing_latency_seconds} histogram, so
 * that the benchmark can read both latencies the same way.
 */
final class Report {
    private static final double NANOS_PER_MS = 1e6;
    /** journeyd's processing latency buckets in seconds (src/telemetry/metrics.rs). */
    private static final double[] BUCKETS = {
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    };

    /** Processing latency in nanoseconds; recorded from the producers' I/O threads. */
    final Histogram latency = new ConcurrentHistogram(3);
    private final LongAdder touchpoints = new LongAdder();
    private final LongAdder invalid = new LongAdder();
    private final LongAdder stageChanges = new LongAdder();
    private final AtomicBoolean started = new AtomicBoolean();

    void touchpoint() {
        touchpoints.increment();
        if (!started.get() && started.compareAndSet(false, true)) {
            System.out.println("First record.");
            System.out.flush();
        }
    }

    void invalid() {
        invalid.increment();
    }

    void stageChange() {
        stageChanges.increment();
    }

    void write(Path path) throws IOException {
        String json = String.format(Locale.ROOT,
                "{\"touchpoints\":%d,\"invalid\":%d,\"stage_changes\":%d,\"latency_samples\":%d,"
                        + "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
                        + "\"latency_buckets\":%s}%n",
                touchpoints.sum(), invalid.sum(), stageChanges.sum(), latency.getTotalCount(),
                percentile(50), percentile(90), percentile(99), latency.getMaxValue() / NANOS_PER_MS, buckets());
        Files.writeString(path, json, StandardCharsets.UTF_8);
    }

    /** [[le_seconds, cumulative count], ...], ending with +Inf as "inf". */
    private String buckets() {
        StringBuilder out = new StringBuilder("[");
        for (double le : BUCKETS) {
            long count = latency.getCountBetweenValues(0, (long) (le * 1e9));
            out.append(String.format(Locale.ROOT, "[%s,%d],", le, count));
        }
        return out.append(String.format(Locale.ROOT, "[\"inf\",%d]]", latency.getTotalCount())).toString();
    }

    private double percentile(double p) {
        return latency.getValueAtPercentile(p) / NANOS_PER_MS;
    }
}
