//! Figures of repeated runs, one copy for every benchmark: min, median and
//! max ([`spread`]), medians, the ingest rows' time cells, and how an ingest
//! run's end relates to its feeder's last UPDATE (whether a row was paced
//! by the feeder rather than by the DUT). Pure functions of the runs'
//! figures; no IO.

use std::time::Duration;

use crate::ingest_run::Run;
use crate::report::secs;

/// The median of `runs` by `key` (the upper one of an even count).
pub fn median_by<K: PartialOrd + Copy>(runs: &[Run], key: impl Fn(&Run) -> K) -> Run {
    let mut v: Vec<&Run> = runs.iter().collect();
    v.sort_by(|a, b| {
        key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    v.get(v.len() / 2).map(|r| (*r).clone()).unwrap_or_default()
}

/// Min, median and max of `v` (NaN for none; the upper median of an even
/// count).
pub fn spread(mut v: Vec<f64>) -> [f64; 3] {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    match (v.first(), v.last()) {
        (Some(&lo), Some(&hi)) => [lo, v[v.len() / 2], hi],
        _ => [f64::NAN; 3],
    }
}

/// A time cell: the median, then the runs' min–max when there are several
/// (the noise the median hides).
pub fn time_cell(v: &[f64]) -> String {
    let [lo, med, hi] = spread(v.to_vec());
    if med.is_nan() {
        return String::new();
    }
    let one = secs(Duration::from_secs_f64(med));
    if v.len() < 2 {
        one
    } else if hi < 1.0 {
        format!("{one} ({:.0}–{:.0})", lo * 1e3, hi * 1e3)
    } else {
        format!("{one} ({lo:.2}–{hi:.2})")
    }
}

/// A run's end after the feeder's last UPDATE left, in seconds (0 when
/// the DUT's end was placed before it: the end lies inside a poll's
/// interval, the floor is a packet's timestamp).
pub fn tail(time: Duration, feeder_done: Duration) -> f64 {
    time.saturating_sub(feeder_done).as_secs_f64()
}

/// Whether a DUT whose median end came `after` s after the feeder's last
/// UPDATE, of a median time of `time` s, was held to the feeder's pace: it
/// ended within a tenth of its time, or within 20 ms (two of the control
/// plane's polls), of the feeder being done, and never closed its receive
/// window (`zero_windows`, median). A DUT that closed it held the feeder
/// back: the feeder's end is then the DUT's pace, not the feeder's.
pub fn feeder_paced(after: f64, time: f64, zero_windows: f64) -> bool {
    after.is_finite()
        && time.is_finite()
        && zero_windows == 0.0
        && (after <= 0.1 * time || after <= 0.02)
}

pub fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_feeder_paced_only_when_both_ends_follow_a_feeder_they_never_held_back() {
        // Session 19's live 100k unique row: tortie 570 ms, 0 ms after.
        assert!(feeder_paced(0.0, 0.570, 0.0));
        assert!(feeder_paced(0.05, 0.6, 0.0), "within a tenth");
        assert!(feeder_paced(0.015, 0.05, 0.0), "within two polls");
        // Session 20's IPv4 packed burst row: BIRD ends 9 ms after a feeder
        // it held back (7 zero windows) — BIRD's pace, not the feeder's.
        assert!(!feeder_paced(0.009, 0.041, 7.0));
        // A burst row: the feeder is done in 20 ms, the DUT takes 400 more.
        assert!(!feeder_paced(0.4, 0.42, 0.0));
        assert!(!feeder_paced(f64::NAN, 0.5, 0.0), "no capture, no claim");
        assert!(!feeder_paced(0.0, 0.5, f64::NAN), "no capture, no claim");
        assert_eq!(
            tail(Duration::from_millis(570), Duration::from_millis(563)),
            0.007
        );
        assert_eq!(
            tail(Duration::from_millis(560), Duration::from_millis(563)),
            0.0
        );
    }
}
