package io.journeyd.bench.streams;

import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;

/**
 * A stage change, published as JSON with the fields of journeyd's
 * {@code StageChanged} (schemas/stage_changed.avsc). The trigger fields are
 * null when the lapse timer caused the change; {@code from_stage} is null
 * when the customer enters the journey.
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
record StageChanged(
        String customerId,
        long sequence,
        String fromStage,
        String toStage,
        String direction,
        String triggerEventId,
        String triggerAction,
        String triggerChannel,
        long eventTime,
        long detectedAt,
        long timeInPreviousStageMs,
        long touchpointCount) {
}
