//! Wall-clock helpers: RocketMQ timestamps are milliseconds since the epoch.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn millis_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Milliseconds since the epoch, now.
pub fn now_millis() -> i64 {
    millis_of(SystemTime::now())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for epoch milliseconds (UTC).
pub fn format_utc_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// The first millisecond of the UTC month holding `ms`, and of the next one.
pub fn month_bounds_utc(ms: i64) -> (i64, i64) {
    let (y, m, _) = civil_from_days(ms.div_euclid(86_400_000));
    let start = days_from_civil(y, m, 1) * 86_400_000;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (start, days_from_civil(ny, nm, 1) * 86_400_000)
}

/// (year, month, day) to days since 1970-01-01 (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
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
    fn formats_known_instants() {
        assert_eq!(format_utc_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_utc_millis(1_795_323_045_006), "2026-11-22T04:50:45.006Z");
    }

    #[test]
    fn month_bounds() {
        let (s, n) = month_bounds_utc(1_795_323_045_006);
        assert_eq!(format_utc_millis(s), "2026-11-01T00:00:00.000Z");
        assert_eq!(format_utc_millis(n), "2026-12-01T00:00:00.000Z");
        let (s, n) = month_bounds_utc(951_782_400_123);
        assert_eq!(
            (format_utc_millis(s), format_utc_millis(n)),
            ("2000-02-01T00:00:00.000Z".into(), "2000-03-01T00:00:00.000Z".into())
        );
        let (_, n) = month_bounds_utc(1_797_292_800_000);
        assert_eq!(format_utc_millis(n), "2027-01-01T00:00:00.000Z");
    }
}
