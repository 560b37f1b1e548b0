package io.journeyd.bench.streams;

import java.util.function.Consumer;

/**
 * What one touchpoint or the lapse timer does to one customer: journeyd's
 * stage machine (src/engine/journey.rs) for the default model, without
 * churn risk, funnel windows and de-duplication, which this benchmark
 * contender leaves out.
 *
 * <p>A new customer enters the entry stage, or the higher stage their first
 * touchpoint signals; a lapsed one returns to the stage their touchpoint
 * signals (the entry stage if none); a lapse action lapses from any stage;
 * otherwise the highest signalled stage is entered when it is above the
 * current one (advance or skip). A touchpoint that merely signals a lower
 * stage changes nothing: the default model has no regress rules.
 */
final class StageMachine {
    private final JourneyModel model = new JourneyModel();

    /** A fresh customer, before their first touchpoint. */
    CustomerState newCustomer() {
        return new CustomerState(model.windowSlots());
    }

    /** Applies a touchpoint; every stage change it causes goes to {@code out}, in order. */
    void apply(String customerId, CustomerState c, Touchpoint t, long detectedAt, Consumer<StageChanged> out) {
        c.touchpoints++;
        c.lastSeen = Math.max(c.lastSeen, t.occurredAt());
        Stage signalled = model.signalled(c, t);
        boolean lapse = model.isLapse(t.action());
        Stage to = null;
        if (c.stage == null) {
            Stage entry = Stage.ENTRY.above(signalled) ? Stage.ENTRY : signalled;
            out.accept(transition(customerId, c, entry, t.occurredAt(), t, detectedAt));
            to = lapse ? Stage.LAPSED : null;
        } else if (c.stage == Stage.LAPSED) {
            to = lapse ? null : (signalled == null ? Stage.ENTRY : signalled);
        } else if (lapse) {
            to = Stage.LAPSED;
        } else if (signalled != null && signalled.above(c.stage)) {
            to = signalled;
        }
        if (to != null) {
            out.accept(transition(customerId, c, to, t.occurredAt(), t, detectedAt));
        }
    }

    /** The lapse timer at stream time {@code now}: the customer lapses at their due time if it has passed. */
    StageChanged lapse(String customerId, CustomerState c, long now, long detectedAt) {
        long due = c.lapseDue();
        return due <= now ? transition(customerId, c, Stage.LAPSED, due, null, detectedAt) : null;
    }

    private static StageChanged transition(
            String customerId, CustomerState c, Stage to, long at, Touchpoint trigger, long detectedAt) {
        Stage from = c.stage;
        long inPrevious = from == null ? 0 : Math.max(at - c.stageSince, 0);
        c.stage = to;
        c.stageSince = at;
        c.sequence++;
        return new StageChanged(
                customerId,
                c.sequence,
                from == null ? null : from.wireName,
                to.wireName,
                direction(from, to),
                trigger == null ? null : trigger.eventId(),
                trigger == null ? null : trigger.action(),
                trigger == null ? null : trigger.channel(),
                at,
                detectedAt,
                inPrevious,
                c.touchpoints);
    }

    /** advance, skip, regress, lapse or return; entering the journey counts from just below the entry stage. */
    private static String direction(Stage from, Stage to) {
        if (to == Stage.LAPSED) {
            return "lapse";
        }
        if (from == Stage.LAPSED) {
            return "return";
        }
        int fromPosition = from == null ? Stage.ENTRY.ordinal() - 1 : from.ordinal();
        int step = to.ordinal() - fromPosition;
        return step == 1 ? "advance" : step > 1 ? "skip" : "regress";
    }
}
