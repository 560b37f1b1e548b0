package io.journeyd.bench.streams;

/**
 * The stages of journeyd's default journey model; a higher ordinal is further
 * along the journey, and {@link #LAPSED} (0) is the stage of customers who
 * left it.
 */
enum Stage {
    LAPSED("lapsed"),
    AWARENESS("awareness"),
    CONSIDERATION("consideration"),
    PURCHASE("purchase"),
    RETENTION("retention"),
    ADVOCACY("advocacy");

    /** Where a new customer starts, and where a returning one goes when their touchpoint signals no stage. */
    static final Stage ENTRY = AWARENESS;

    private static final Stage[] BY_ORDINAL = values();

    /** The name on the wire, as in {@code "to_stage":"awareness"}. */
    final String wireName;

    Stage(String wireName) {
        this.wireName = wireName;
    }

    static Stage ofOrdinal(int ordinal) {
        return BY_ORDINAL[ordinal];
    }

    /** Whether this stage is further along than {@code other}; every stage is above none (null). */
    boolean above(Stage other) {
        return other == null || ordinal() > other.ordinal();
    }
}
