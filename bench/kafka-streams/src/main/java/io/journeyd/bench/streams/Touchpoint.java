package io.journeyd.bench.streams;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;

/**
 * An input touchpoint as journeyd reads it in JSON (schemas/touchpoint.avsc):
 * the fields the journey model uses. {@code occurred_at} is epoch
 * milliseconds, as journeyd's generator writes it; session and attributes
 * are read past.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
record Touchpoint(String eventId, String customerId, long occurredAt, String channel, String action, Double value) {
}
