package io.journeyd.bench.streams;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * journeyd's default journey model (journeyd.example.toml, [journey]) as
 * lookup tables: for each action, the entry signals it can fire; the lapse
 * actions; the inactivity after which a customer lapses.
 *
 * <p>Windowed signals ("3 product views within 7 days", "a 2nd purchase
 * within 180 days") keep, per customer, the latest {@code count} matching
 * event times in ascending order, in event time over the customer's own
 * history, as journeyd does: a touchpoint older than every kept time cannot
 * complete a newer window than those already seen.
 */
final class JourneyModel {
    static final long DAY_MS = 86_400_000L;
    /** {@code time.lapse_after}: no touchpoint for this long (event time) lapses a customer. */
    static final long LAPSE_AFTER_MS = 90 * DAY_MS;

    private static final Set<String> LAPSE_ACTIONS = Set.of("subscription_cancelled", "account_closed");

    /**
     * An entry signal: its action enters {@code stage} when the value is at
     * least {@code minValue} (if set) and, for a windowed one, when
     * {@code count} matching events fall within {@code withinMs}; its times
     * are kept from {@code slot} on in {@link CustomerState#windows}.
     */
    private record Signal(Stage stage, Double minValue, int count, long withinMs, int slot) {
        boolean windowed() {
            return count > 1;
        }
    }

    private final Map<String, List<Signal>> byAction = new HashMap<>();
    private int slots;

    /** The default model. */
    JourneyModel() {
        on(Stage.AWARENESS, "ad_click", "ad_impression", "social_engagement", "search_click");
        on(Stage.CONSIDERATION, "pricing_view", "review_read", "comparison_view", "demo_request", "add_to_cart");
        windowed(Stage.CONSIDERATION, "product_view", 3, 7 * DAY_MS);
        on(Stage.PURCHASE, "purchase");
        windowed(Stage.RETENTION, "purchase", 2, 180 * DAY_MS);
        on(Stage.RETENTION, "subscription_renewed");
        on(Stage.ADVOCACY, "referral_sent");
        atLeast(Stage.ADVOCACY, "review_posted", 4.0);
        atLeast(Stage.ADVOCACY, "nps_response", 9.0);
    }

    /** How many event times a customer keeps for the windowed signals. */
    int windowSlots() {
        return slots;
    }

    boolean isLapse(String action) {
        return LAPSE_ACTIONS.contains(action);
    }

    /**
     * The highest stage this touchpoint signals, or null; counts it toward
     * the customer's windowed signals on the way.
     */
    Stage signalled(CustomerState customer, Touchpoint touchpoint) {
        Stage best = null;
        for (Signal signal : byAction.getOrDefault(touchpoint.action(), List.of())) {
            if (signal.minValue() != null
                    && (touchpoint.value() == null || touchpoint.value() < signal.minValue())) {
                continue;
            }
            boolean fired = !signal.windowed()
                    || countInWindow(customer.windows, signal, touchpoint.occurredAt());
            if (fired && signal.stage().above(best)) {
                best = signal.stage();
            }
        }
        return best;
    }

    /** Adds {@code at} to the signal's kept times; whether they now fall within its window. */
    private static boolean countInWindow(long[] times, Signal signal, long at) {
        int from = signal.slot(), to = from + signal.count();
        if (at < times[from]) {
            return false;
        }
        times[from] = at;
        Arrays.sort(times, from, to);
        long first = times[from], last = times[to - 1];
        return first != Long.MIN_VALUE && last - first <= signal.withinMs();
    }

    private void on(Stage stage, String... actions) {
        for (String action : actions) {
            add(action, new Signal(stage, null, 1, 0, -1));
        }
    }

    private void atLeast(Stage stage, String action, double minValue) {
        add(action, new Signal(stage, minValue, 1, 0, -1));
    }

    private void windowed(Stage stage, String action, int count, long withinMs) {
        add(action, new Signal(stage, null, count, withinMs, slots));
        slots += count;
    }

    private void add(String action, Signal signal) {
        byAction.computeIfAbsent(action, a -> new ArrayList<>(2)).add(signal);
    }
}
