//! RFC 3339 UTC timestamps (contract §2), e.g. `2026-01-15T10:30:00.000Z`.
//! Only formatting is needed (nothing compares clocks, §4.5); a calendar
//! crate would be a dependency for twenty lines.

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_millis(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// Now, formatted.
pub fn now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    rfc3339_millis(ms)
}

/// Days since 1970-01-01 to (year, month, day), after H. Hinnant's
/// `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_768_473_000_000),
            "2026-01-15T10:30:00.000Z"
        );
        assert_eq!(rfc3339_millis(951_825_600_123), "2000-02-29T12:00:00.123Z");
        assert_eq!(rfc3339_millis(951_782_400_007), "2000-02-29T00:00:00.007Z");
        assert_eq!(now().len(), 24);
    }

    /// Every day from 1970 to 2400 (leap years, the non-leap 2100, 2200 and
    /// 2300, the leap 2000 and 2400, every month), checked against a naive
    /// calendar that counts days one by one.
    #[test]
    fn every_day_to_2400_matches_a_naive_calendar() {
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let mut day = 0u64;
        for y in 1970..=2400u64 {
            for m in 1..=12u64 {
                let len = match m {
                    2 if leap(y) => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                for d in 1..=len {
                    let ms = day * 86_400_000 + 45_296_789;
                    assert_eq!(
                        rfc3339_millis(ms),
                        format!("{y:04}-{m:02}-{d:02}T12:34:56.789Z")
                    );
                    day += 1;
                }
            }
        }
    }
}
