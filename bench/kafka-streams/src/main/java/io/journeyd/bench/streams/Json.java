package io.journeyd.bench.streams;

import java.io.IOException;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.ObjectWriter;

/** Touchpoints from JSON, stage changes to JSON, with one shared Jackson reader and writer. */
final class Json {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final ObjectReader TOUCHPOINT = MAPPER.readerFor(Touchpoint.class);
    private static final ObjectWriter STAGE_CHANGED = MAPPER.writerFor(StageChanged.class);

    private Json() {
    }

    /** The touchpoint, or null when the bytes are not one (journeyd would dead-letter them). */
    static Touchpoint touchpoint(byte[] bytes) {
        if (bytes == null) {
            return null;
        }
        try {
            Touchpoint t = TOUCHPOINT.readValue(bytes);
            return t.customerId() == null || t.eventId() == null || t.action() == null ? null : t;
        } catch (IOException e) {
            return null;
        }
    }

    static byte[] bytes(StageChanged change) {
        try {
            return STAGE_CHANGED.writeValueAsBytes(change);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a stage change did not encode", e);
        }
    }
}
