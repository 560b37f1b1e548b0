package io.journeyd.bench.streams;

import java.time.Duration;

import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The one processor of the topology, one instance per task (input
 * partition). Per touchpoint: look the customer up in the persistent
 * store, run the stage machine, write the customer back (the store's
 * changelog makes the change durable) and forward each stage change as
 * JSON. A stream-time punctuator lapses customers after 90 days without a
 * touchpoint; stream time is the task's own event time, as journeyd's
 * watermark is its partition's.
 */
final class JourneyProcessor implements Processor<String, byte[], String, byte[]> {
    /** The persistent, changelogged store of customer states, keyed by customer id. */
    static final String STORE = "journeys";
    /**
     * How often (in stream time) the punctuator looks for lapsed customers.
     * A lapse is found up to an hour of stream time after it fell due (its
     * event time is still the due time): close enough for a 90-day
     * deadline, and it keeps punctuation off the per-record path.
     */
    private static final Duration TIMER_RESOLUTION = Duration.ofHours(1);

    private final StageMachine machine = new StageMachine();
    private final LapseTimers timers = new LapseTimers();
    private final Report report;
    private ProcessorContext<String, byte[]> context;
    private KeyValueStore<String, CustomerState> store;

    JourneyProcessor(Report report) {
        this.report = report;
    }

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
        this.context = context;
        store = context.getStateStore(STORE);
        // The store is restored before init: index the deadlines it holds.
        try (KeyValueIterator<String, CustomerState> all = store.all()) {
            while (all.hasNext()) {
                KeyValue<String, CustomerState> customer = all.next();
                timers.move(customer.key, Long.MAX_VALUE, customer.value.lapseDue());
            }
        }
        context.schedule(TIMER_RESOLUTION, PunctuationType.STREAM_TIME, this::lapseDue);
    }

    @Override
    public void process(Record<String, byte[]> record) {
        report.touchpoint();
        Touchpoint touchpoint = Json.touchpoint(record.value());
        if (touchpoint == null) {
            report.invalid();
            return;
        }
        String id = record.key() != null ? record.key() : touchpoint.customerId();
        CustomerState customer = store.get(id);
        if (customer == null) {
            customer = machine.newCustomer();
        }
        long dueBefore = customer.lapseDue();
        machine.apply(id, customer, touchpoint, System.currentTimeMillis(),
                change -> publish(record.withKey(id).withValue(Json.bytes(change))));
        store.put(id, customer);
        timers.move(id, dueBefore, customer.lapseDue());
    }

    /** Lapses every customer whose deadline stream time has passed. */
    private void lapseDue(long streamTime) {
        long now = System.currentTimeMillis();
        for (String id : timers.popDue(streamTime)) {
            CustomerState customer = store.get(id);
            StageChanged change = customer == null ? null : machine.lapse(id, customer, streamTime, now);
            if (change != null) {
                store.put(id, customer);
                publish(new Record<>(id, Json.bytes(change), change.eventTime()));
            }
        }
    }

    private void publish(Record<String, byte[]> change) {
        report.stageChange();
        context.forward(change);
    }
}
