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
 * percentiles (poll to acknowledgement of the stage change, see
 * {@link TimedClients}).
 */
final class Report {
    private static final double NANOS_PER_MS = 1e6;

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
                        + "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}}%n",
                touchpoints.sum(), invalid.sum(), stageChanges.sum(), latency.getTotalCount(),
                percentile(50), percentile(90), percentile(99), latency.getMaxValue() / NANOS_PER_MS);
        Files.writeString(path, json, StandardCharsets.UTF_8);
    }

    private double percentile(double p) {
        return latency.getValueAtPercentile(p) / NANOS_PER_MS;
    }
}
