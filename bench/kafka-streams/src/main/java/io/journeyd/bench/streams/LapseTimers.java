package io.journeyd.bench.streams;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.TreeSet;

/**
 * The lapse deadlines of one task's customers, ordered by time: the timer
 * index that lets the punctuator find who is due without scanning the
 * store. A deadline is a function of the customer's state
 * ({@link CustomerState#lapseDue}), so the index is rebuilt from the store
 * when the task starts, never persisted (journeyd derives its timers the
 * same way on restore).
 */
final class LapseTimers {
    private record Timer(long due, String customerId) {
    }

    private final TreeSet<Timer> byDue = new TreeSet<>(
            Comparator.comparingLong(Timer::due).thenComparing(Timer::customerId));

    /** The customer's deadline moved from {@code from} to {@code to}; MAX_VALUE is none. */
    void move(String customerId, long from, long to) {
        if (from == to) {
            return;
        }
        if (from != Long.MAX_VALUE) {
            byDue.remove(new Timer(from, customerId));
        }
        if (to != Long.MAX_VALUE) {
            byDue.add(new Timer(to, customerId));
        }
    }

    /** Removes and returns the customers whose deadline is at or before {@code now}. */
    List<String> popDue(long now) {
        List<String> due = new ArrayList<>();
        while (!byDue.isEmpty() && byDue.first().due() <= now) {
            due.add(byDue.pollFirst().customerId());
        }
        return due;
    }
}
