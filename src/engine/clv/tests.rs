//! Values from the papers and from `lifetimes` 0.11.3 (scipy 1.17) with the
//! papers' rounded CDNOW parameters.

use super::*;

const BGNBD: PurchaseModel = PurchaseModel {
    kind: ChurnModelKind::Bgnbd,
    params: ChurnParams {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    },
};

const MBGNBD: PurchaseModel = PurchaseModel {
    kind: ChurnModelKind::Mbgnbd,
    params: ChurnParams {
        r: 0.525,
        alpha: 6.183,
        a: 0.891,
        b: 1.614,
    },
};

const SPEND: SpendParams = SpendParams {
    p: 6.25,
    q: 3.74,
    v: 15.44,
};

fn summary(x: f64, t_x: f64, t: f64) -> Summary {
    Summary { x, t_x, t }
}

fn assert_close(got: f64, want: f64, rel: f64, what: &str) {
    let err = ((got - want) / want).abs();
    assert!(
        err < rel,
        "{what}: {got} vs {want} (relative error {err:e})"
    );
}

/// (x, t_x, T, t, BG/NBD, MBG/NBD) from
/// `conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)`.
const EXPECTED: &[(f64, f64, f64, f64, f64, f64)] = &[
    (
        2.0,
        30.43,
        38.86,
        39.0,
        1.226028174767135,
        1.2629606232673432,
    ),
    (
        0.0,
        0.0,
        38.86,
        39.0,
        0.19509805201125396,
        0.15401274667514553,
    ),
    (
        1.0,
        1.71,
        38.86,
        52.0,
        0.25982346486862234,
        0.2401319447342529,
    ),
    (
        40.0,
        70.0,
        72.0,
        52.0,
        21.06304409418601,
        20.203534104474688,
    ),
    (
        400.0,
        70.0,
        72.0,
        52.0,
        2.6936850013358775,
        2.903508243296013,
    ),
    (
        5.0,
        10.0,
        40.0,
        4.345,
        0.010822564172154709,
        0.011141641549558257,
    ),
];

#[test]
fn expected_purchases_agree_with_lifetimes() {
    for &(x, t_x, t, horizon, bg, mbg) in EXPECTED {
        let s = summary(x, t_x, t);
        let what = format!("x {x} t_x {t_x} T {t} t {horizon}");
        // For x = 400 lifetimes is 1.2e-12 off mpmath's 2.6936850013327062
        // (30 digits); this is 3e-14 off.
        assert_close(BGNBD.expected_purchases(&s, horizon), bg, 2e-12, &what);
        assert_close(MBGNBD.expected_purchases(&s, horizon), mbg, 2e-12, &what);
    }
}

#[test]
fn new_customers_of_frequent_buyers_agree_with_mpmath() {
    // T = 0 and alpha much smaller than the horizon: z = t / (alpha + t)
    // near 1. Values from the closed form in mpmath at 40 digits.
    let new = summary(0.0, 0.0, 0.0);
    let mut bg = BGNBD;
    bg.params.alpha = 0.01;
    assert_close(
        bg.expected_purchases(&new, 52.0),
        19.477774055287262,
        1e-9,
        "bgnbd",
    );
    let mut mbg = MBGNBD;
    mbg.params.alpha = 0.01;
    assert_close(
        mbg.expected_purchases(&new, 52.0),
        14.387690100291883,
        1e-9,
        "mbgnbd",
    );
    mbg.params.alpha = 0.001;
    let s = summary(3.0, 0.5, 1.0);
    assert_close(
        mbg.expected_purchases(&s, 260.0),
        11.597521732877134,
        1e-9,
        "mbgnbd x 3",
    );
    // r = a: c - a - b is an integer and only the long series serves.
    let degenerate = PurchaseModel {
        kind: ChurnModelKind::Bgnbd,
        params: ChurnParams {
            r: 0.3,
            alpha: 0.05,
            a: 0.3,
            b: 2.0,
        },
    };
    let e = degenerate.expected_purchases(&new, 52.0);
    assert_close(e, 70.762_898_316_692_66, 1e-9, "r = a");
}

#[test]
fn the_papers_worked_example() {
    // Fader, Hardie & Lee (2005), section 5: 1.226 purchases in 39 weeks.
    let e = BGNBD.expected_purchases(&summary(2.0, 30.43, 38.86), 39.0);
    assert!((e - 1.226).abs() < 5e-4, "{e}");
}

#[test]
fn expected_order_value_agrees_with_lifetimes() {
    assert_close(
        expected_order_value(&SPEND, 2.0, 22.35),
        24.663713910761157,
        1e-14,
        "x 2",
    );
    assert_close(
        expected_order_value(&SPEND, 0.0, 0.0),
        35.21897810218978,
        1e-14,
        "x 0",
    );
    assert_close(
        expected_order_value(&SPEND, 10.0, 50.0),
        49.37921520539547,
        1e-14,
        "x 10",
    );
}

#[test]
fn lifetime_value_agrees_with_lifetimes() {
    // gg.customer_lifetime_value(model, ..., time=12, discount_rate=0.01, freq="W")
    let h = Horizon::new(12.0 * 4.345, 4.345, 0.01).unwrap();
    let customers = [
        (
            summary(2.0, 30.43, 38.86),
            22.35,
            36.28921112559952,
            37.20189521892329,
        ),
        (
            summary(1.0, 1.71, 38.86),
            11.77,
            4.637294659747194,
            4.287811307970164,
        ),
        (
            summary(0.0, 0.0, 38.86),
            0.0,
            8.369004358920185,
            6.567378098763221,
        ),
    ];
    for (s, m, bg, mbg) in customers {
        let what = format!("{s:?}");
        assert_close(
            BGNBD.lifetime_value(&SPEND, &s, m, &h).value,
            bg,
            1e-12,
            &what,
        );
        assert_close(
            MBGNBD.lifetime_value(&SPEND, &s, m, &h).value,
            mbg,
            1e-12,
            &what,
        );
    }
}

#[test]
fn lifetime_value_without_discount_is_purchases_times_order_value() {
    let h = Horizon::new(52.0, 4.345, 0.0).unwrap();
    let s = summary(3.0, 20.0, 30.0);
    let v = MBGNBD.lifetime_value(&SPEND, &s, 40.0, &h);
    assert_close(
        v.expected_purchases,
        MBGNBD.expected_purchases(&s, 52.0),
        1e-12,
        "E",
    );
    assert_close(
        v.value,
        v.expected_purchases * v.expected_order_value,
        1e-12,
        "value",
    );
    // Discounting lowers it; a partial last month is discounted by its end.
    let d = MBGNBD.lifetime_value(&SPEND, &s, 40.0, &Horizon::new(52.0, 4.345, 0.01).unwrap());
    assert!(d.value < v.value && d.value > v.value / 1.01f64.powf(52.0 / 4.345));
}

#[test]
fn horizons_count_whole_periods_exactly() {
    assert_eq!(Horizon::new(12.0 * 4.345, 4.345, 0.01).unwrap().periods, 12);
    assert_eq!(Horizon::new(52.0, 4.345, 0.01).unwrap().periods, 12);
    assert_eq!(Horizon::new(0.5, 4.345, 0.0).unwrap().periods, 1);
    assert_eq!(Horizon::new(360.0, 30.0, 0.0).unwrap().periods, 12);
    for (length, period, rate) in [
        (0.0, 1.0, 0.0),
        (-1.0, 1.0, 0.0),
        (1.0, 0.0, 0.0),
        (f64::INFINITY, 1.0, 0.0),
        (1.0, 1.0, -1.0),
        (1.0, 1.0, f64::NAN),
        (1e9, 1.0, 0.0),
    ] {
        assert_eq!(
            Horizon::new(length, period, rate),
            None,
            "{length} {period} {rate}"
        );
    }
}

#[test]
fn customers_with_many_purchases_neither_overflow_nor_cost_more() {
    for x in [1e3, 1e5, 1e7] {
        let s = summary(x, 100.0, 100.0);
        let e = MBGNBD.expected_purchases(&s, 52.0);
        // A customer this regular is surely alive, and the posteriors of
        // the purchase rate and the drop-out probability are narrow: about
        // (1 / p) (1 - exp(-lambda p t)) at their means.
        let lambda = (0.525 + x) / (6.183 + 100.0);
        let p = 0.891 / (0.891 + 1.614 + x + 1.0);
        let plug_in = (1.0 - (-lambda * p * 52.0).exp()) / p;
        assert!((e / plug_in - 1.0).abs() < 0.03, "x {x}: {e} vs {plug_in}");
    }
}

#[test]
fn expected_purchases_grow_with_the_horizon() {
    let s = summary(2.0, 30.43, 38.86);
    for m in [BGNBD, MBGNBD] {
        assert_eq!(m.expected_purchases(&s, 0.0), 0.0);
        let mut last = 0.0;
        for t in [0.1, 1.0, 10.0, 100.0, 1000.0, 5000.0] {
            let e = m.expected_purchases(&s, t);
            assert!(e > last, "{:?} t {t}: {e} after {last}", m.kind);
            last = e;
        }
    }
}

#[test]
fn invalid_input_gives_nan_not_a_panic() {
    let s = summary(2.0, 30.43, 38.86);
    assert!(BGNBD.expected_purchases(&s, f64::NAN).is_nan());
    assert!(
        BGNBD
            .expected_purchases(&summary(f64::NAN, 1.0, 2.0), 5.0)
            .is_nan()
    );
}

#[test]
fn a_equal_to_one_is_the_limit_not_nan() {
    // The closed form at a = 1 + 1e-40 and a = 1 + 1e-9, in mpmath at 80
    // digits; (model, x, t_x, T, t, at 1, at 1 + 1e-9).
    let cases = [
        (
            BGNBD,
            2.0,
            30.43,
            38.86,
            39.0,
            1.1021367860399558,
            1.1021367854937253,
        ),
        (
            BGNBD,
            0.0,
            0.0,
            38.86,
            39.0,
            0.19107701257392298,
            0.19107701255595756,
        ),
        (
            MBGNBD,
            2.0,
            30.43,
            38.86,
            39.0,
            1.1953133208487835,
            1.1953133202565981,
        ),
        (
            MBGNBD,
            0.0,
            0.0,
            0.0,
            52.0,
            1.285_638_339_442_698,
            1.2856383383100359,
        ),
    ];
    for (model, x, t_x, t, horizon, at_one, near_one) in cases {
        let s = summary(x, t_x, t);
        let what = format!("{:?} {s:?}", model.kind);
        let mut m = model;
        m.params.a = 1.0;
        assert_close(m.expected_purchases(&s, horizon), at_one, 1e-12, &what);
        m.params.a = 1.0 + 1e-9;
        assert_close(m.expected_purchases(&s, horizon), near_one, 1e-12, &what);
        // Either side of where the limit form takes over.
        for a in [
            1.0 + 0.999e-3,
            1.0 + 1.001e-3,
            1.0 - 0.999e-3,
            1.0 - 1.001e-3,
        ] {
            m.params.a = a;
            let e = m.expected_purchases(&s, horizon);
            let slope = (near_one - at_one) / 1e-9;
            assert_close(
                e,
                at_one + slope * (a - 1.0),
                1e-5,
                &format!("{what} a {a}"),
            );
        }
    }
}
