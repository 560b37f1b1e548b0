package io.journeyd.bench.streams;

import java.nio.ByteBuffer;
import java.util.Arrays;

import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * One customer's journey state, the value of the persistent store (and so
 * of its changelog): everything the stage machine continues from.
 *
 * <p>Stored as a small versioned binary record, as journeyd's changelog
 * value is: version, stage ordinal (-1: none yet), the time the stage was
 * entered, the latest touchpoint time, touchpoint count, stage-change
 * sequence, then the windowed signals' event times.
 */
final class CustomerState {
    private static final byte VERSION = 1;
    private static final byte NO_STAGE = -1;

    /** The current stage; null before the first touchpoint. */
    Stage stage;
    /** Event time at which {@link #stage} was entered. */
    long stageSince;
    /** The latest event time of any of the customer's touchpoints. */
    long lastSeen = Long.MIN_VALUE;
    /** Touchpoints processed so far. */
    long touchpoints;
    /** The {@code sequence} of the latest stage change: 1, 2, 3, ... */
    long sequence;
    /** The windowed signals' latest event times, ascending per signal; MIN_VALUE: unused. */
    final long[] windows;

    CustomerState(int windowSlots) {
        windows = new long[windowSlots];
        Arrays.fill(windows, Long.MIN_VALUE);
    }

    /** When the customer lapses by inactivity; MAX_VALUE when not in an active stage. */
    long lapseDue() {
        boolean active = stage != null && stage != Stage.LAPSED;
        return active ? lastSeen + JourneyModel.LAPSE_AFTER_MS : Long.MAX_VALUE;
    }

    static Serde<CustomerState> serde() {
        return Serdes.serdeFrom(new Writer(), new Reader());
    }

    private static final class Writer implements Serializer<CustomerState> {
        @Override
        public byte[] serialize(String topic, CustomerState c) {
            if (c == null) {
                return null;
            }
            ByteBuffer out = ByteBuffer.allocate(2 + 4 * Long.BYTES + 1 + c.windows.length * Long.BYTES);
            out.put(VERSION).put(c.stage == null ? NO_STAGE : (byte) c.stage.ordinal());
            out.putLong(c.stageSince).putLong(c.lastSeen).putLong(c.touchpoints).putLong(c.sequence);
            out.put((byte) c.windows.length);
            for (long t : c.windows) {
                out.putLong(t);
            }
            return out.array();
        }
    }

    private static final class Reader implements Deserializer<CustomerState> {
        @Override
        public CustomerState deserialize(String topic, byte[] bytes) {
            if (bytes == null) {
                return null;
            }
            ByteBuffer in = ByteBuffer.wrap(bytes);
            if (in.get() != VERSION) {
                throw new SerializationException("unknown customer state version " + bytes[0]);
            }
            byte stage = in.get();
            long stageSince = in.getLong(), lastSeen = in.getLong();
            long touchpoints = in.getLong(), sequence = in.getLong();
            CustomerState c = new CustomerState(in.get());
            c.stage = stage == NO_STAGE ? null : Stage.ofOrdinal(stage);
            c.stageSince = stageSince;
            c.lastSeen = lastSeen;
            c.touchpoints = touchpoints;
            c.sequence = sequence;
            for (int i = 0; i < c.windows.length; i++) {
                c.windows[i] = in.getLong();
            }
            return c;
        }
    }
}
