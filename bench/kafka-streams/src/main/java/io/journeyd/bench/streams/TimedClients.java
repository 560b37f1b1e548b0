package io.journeyd.bench.streams;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Future;

import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.streams.processor.internals.DefaultKafkaClientSupplier;
import org.HdrHistogram.Histogram;

/**
 * Kafka clients that measure processing latency as journeyd does: from
 * the poll that returned a touchpoint to Kafka's acknowledgement of the
 * stage change it caused.
 *
 * <p>The main consumer stamps every record it returns from {@code poll} with
 * the time, in a header; Kafka Streams carries a record's headers to what
 * the processor forwards. The producer takes the stamp off whatever it
 * sends (so outputs and changelog stay as the application wrote them) and,
 * for a record of the output topic, records the time from the stamp to the
 * acknowledgement.
 */
final class TimedClients extends DefaultKafkaClientSupplier {
    private static final String POLLED = "bench.polled-ns";

    private final String outputTopic;
    private final Histogram latency;

    TimedClients(String outputTopic, Histogram latency) {
        this.outputTopic = outputTopic;
        this.latency = latency;
    }

    @Override
    public Consumer<byte[], byte[]> getConsumer(Map<String, Object> config) {
        return new StampingConsumer(config);
    }

    @Override
    public Producer<byte[], byte[]> getProducer(Map<String, Object> config) {
        return new TimingProducer(config);
    }

    /** Stamps each polled record with {@link System#nanoTime()}. */
    private static final class StampingConsumer extends KafkaConsumer<byte[], byte[]> {
        StampingConsumer(Map<String, Object> config) {
            super(config, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        }

        @Override
        public ConsumerRecords<byte[], byte[]> poll(Duration timeout) {
            ConsumerRecords<byte[], byte[]> records = super.poll(timeout);
            if (!records.isEmpty()) {
                byte[] now = ByteBuffer.allocate(Long.BYTES).putLong(System.nanoTime()).array();
                for (ConsumerRecord<byte[], byte[]> record : records) {
                    record.headers().add(POLLED, now);
                }
            }
            return records;
        }
    }

    /** Removes the stamp before sending; times the output topic's records. */
    private final class TimingProducer extends KafkaProducer<byte[], byte[]> {
        TimingProducer(Map<String, Object> config) {
            super(config, new ByteArraySerializer(), new ByteArraySerializer());
        }

        @Override
        public Future<RecordMetadata> send(ProducerRecord<byte[], byte[]> record, Callback callback) {
            Header stamp = record.headers().lastHeader(POLLED);
            if (stamp == null) {
                return super.send(record, callback);
            }
            RecordHeaders headers = new RecordHeaders(record.headers().toArray());
            headers.remove(POLLED);
            ProducerRecord<byte[], byte[]> clean = new ProducerRecord<>(
                    record.topic(), record.partition(), record.timestamp(), record.key(), record.value(), headers);
            if (!record.topic().equals(outputTopic)) {
                return super.send(clean, callback);
            }
            long polled = ByteBuffer.wrap(stamp.value()).getLong();
            return super.send(clean, (metadata, error) -> {
                if (error == null) {
                    latency.recordValue(System.nanoTime() - polled);
                }
                if (callback != null) {
                    callback.onCompletion(metadata, error);
                }
            });
        }
    }
}
