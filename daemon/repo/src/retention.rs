//! `forget` policy evaluation with restic semantics (pure; times are passed in).
//!
//! Snapshots are walked newest first. `last` keeps the N newest; each time rule
//! (hourly/daily/weekly/monthly/yearly) keeps the newest snapshot of each of the N most
//! recent periods that contain a snapshot; weeks are ISO weeks. If a time rule finds fewer
//! periods than requested, the oldest snapshot is kept as well ("oldest <rule>", as restic
//! documents for `forget`). `within` keeps everything newer than (newest snapshot -
//! duration), measured from the newest snapshot as restic does, so an outage never
//! expires the last good backups. `tags` keeps snapshots carrying any listed tag.
//! An empty policy keeps everything. Calendar periods use UTC plus `utc_offset_secs`.

use crate::ids::Id;

/// How many periods a rule keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepN {
    /// At most this many.
    Count(u32),
    /// Every period.
    Unlimited,
}

/// A retention policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Keep the N newest.
    pub last: Option<KeepN>,
    /// Per hour.
    pub hourly: Option<KeepN>,
    /// Per day.
    pub daily: Option<KeepN>,
    /// Per ISO week.
    pub weekly: Option<KeepN>,
    /// Per month.
    pub monthly: Option<KeepN>,
    /// Per year.
    pub yearly: Option<KeepN>,
    /// Keep snapshots newer than newest - this many seconds.
    pub within_secs: Option<u64>,
    /// Keep snapshots with any of these tags.
    pub tags: Vec<String>,
    /// Local time offset for calendar periods.
    pub utc_offset_secs: i32,
}

impl Policy {
    /// True if no rule is set (then nothing is removed).
    pub fn is_empty(&self) -> bool {
        self.rules().iter().all(|(_, n)| n.is_none())
            && self.within_secs.is_none()
            && self.tags.is_empty()
    }

    fn rules(&self) -> [(Rule, Option<KeepN>); 6] {
        [
            (Rule::Last, self.last),
            (Rule::Hourly, self.hourly),
            (Rule::Daily, self.daily),
            (Rule::Weekly, self.weekly),
            (Rule::Monthly, self.monthly),
            (Rule::Yearly, self.yearly),
        ]
    }
}

/// A count rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// keep-last
    Last,
    /// keep-hourly
    Hourly,
    /// keep-daily
    Daily,
    /// keep-weekly
    Weekly,
    /// keep-monthly
    Monthly,
    /// keep-yearly
    Yearly,
}

/// Why a snapshot is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Selected by a count rule.
    Rule(Rule),
    /// Oldest snapshot kept because `Rule` found too few periods.
    Oldest(Rule),
    /// Inside the `within` window.
    Within,
    /// Carries this tag.
    Tag(String),
    /// The policy is empty.
    EmptyPolicy,
}

impl Rule {
    /// The rule's name as the option is spelled (`last`, `daily`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Rule::Last => "last",
            Rule::Hourly => "hourly",
            Rule::Daily => "daily",
            Rule::Weekly => "weekly",
            Rule::Monthly => "monthly",
            Rule::Yearly => "yearly",
        }
    }
}

impl std::fmt::Display for Reason {
    /// In words, as `forget` prints them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Rule(Rule::Last) => f.write_str("one of the newest (--keep-last)"),
            Reason::Rule(r) => write!(
                f,
                "newest of its {} period (--keep-{})",
                period(*r),
                r.name()
            ),
            Reason::Oldest(r) => write!(
                f,
                "oldest snapshot, kept because --keep-{} found fewer periods than asked",
                r.name()
            ),
            Reason::Within => f.write_str("inside the --keep-within window"),
            Reason::Tag(t) => write!(f, "tagged {t} (--keep-tag)"),
            Reason::EmptyPolicy => f.write_str("no rule given: everything is kept"),
        }
    }
}

fn period(r: Rule) -> &'static str {
    match r {
        Rule::Last => "list",
        Rule::Hourly => "hour",
        Rule::Daily => "day",
        Rule::Weekly => "ISO week",
        Rule::Monthly => "month",
        Rule::Yearly => "year",
    }
}

/// Input: one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Snapshot id.
    pub id: Id,
    /// Unix seconds.
    pub time: i64,
    /// Nanoseconds within the second: orders snapshots taken in the same second.
    pub nanos: u32,
    /// Tags.
    pub tags: Vec<String>,
}

/// Output: decision for one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Snapshot id.
    pub id: Id,
    /// Unix seconds.
    pub time: i64,
    /// Keep or remove.
    pub keep: bool,
    /// Reasons to keep (empty if removed).
    pub reasons: Vec<Reason>,
}

/// (year, month 1..=12, day 1..=31) from days since 1970-01-01 (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
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

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// ISO 8601 (year, week) of a day number.
pub fn iso_week(days: i64) -> (i64, u32) {
    let wd = (days + 3).rem_euclid(7) + 1; // Monday = 1
    let thursday = days - wd + 4;
    let (y, _, _) = civil_from_days(thursday);
    let week = (thursday - days_from_civil(y, 1, 1)) / 7 + 1;
    (y, week as u32)
}

fn bucket(rule: Rule, local: i64, idx: usize) -> i64 {
    let days = local.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (m, d) = (i64::from(m), i64::from(d));
    match rule {
        Rule::Last => idx as i64,
        Rule::Hourly => ((y * 100 + m) * 100 + d) * 100 + local.rem_euclid(86_400) / 3600,
        Rule::Daily => (y * 100 + m) * 100 + d,
        Rule::Weekly => {
            let (iy, w) = iso_week(days);
            iy * 100 + i64::from(w)
        }
        Rule::Monthly => y * 100 + m,
        Rule::Yearly => y,
    }
}

/// Apply `policy`; returns decisions newest first.
pub fn apply(snapshots: &[SnapshotInfo], policy: &Policy) -> Vec<Decision> {
    let mut list: Vec<&SnapshotInfo> = snapshots.iter().collect();
    list.sort_by(|a, b| {
        b.time
            .cmp(&a.time)
            .then(b.nanos.cmp(&a.nanos))
            .then(b.id.cmp(&a.id))
    });
    let mut out: Vec<Decision> = list
        .iter()
        .map(|s| Decision {
            id: s.id,
            time: s.time,
            keep: false,
            reasons: Vec::new(),
        })
        .collect();
    if policy.is_empty() {
        for d in &mut out {
            d.keep = true;
            d.reasons.push(Reason::EmptyPolicy);
        }
        return out;
    }
    let newest = list.first().map(|s| s.time).unwrap_or(0);
    for (rule, n) in policy.rules() {
        let Some(n) = n else { continue };
        let mut left = match n {
            KeepN::Count(c) => Some(c),
            KeepN::Unlimited => None,
        };
        let mut last: Option<i64> = None;
        for (i, s) in list.iter().enumerate() {
            if left == Some(0) {
                break;
            }
            let b = bucket(
                rule,
                s.time.saturating_add(i64::from(policy.utc_offset_secs)),
                i,
            );
            if last != Some(b) {
                last = Some(b);
                out[i].reasons.push(Reason::Rule(rule));
                left = left.map(|c| c - 1);
            }
        }
        if rule != Rule::Last && matches!(left, Some(c) if c > 0) {
            if let Some(d) = out.last_mut() {
                if !d.reasons.contains(&Reason::Rule(rule)) {
                    d.reasons.push(Reason::Oldest(rule));
                }
            }
        }
    }
    for (i, s) in list.iter().enumerate() {
        if let Some(w) = policy.within_secs {
            let w = i64::try_from(w).unwrap_or(i64::MAX);
            if s.time > newest.saturating_sub(w) {
                out[i].reasons.push(Reason::Within);
            }
        }
        for t in &policy.tags {
            if s.tags.contains(t) {
                out[i].reasons.push(Reason::Tag(t.clone()));
            }
        }
    }
    for d in &mut out {
        d.keep = !d.reasons.is_empty();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any times (including extremes) and any policy: no panic, one decision per
        /// snapshot, newest first, kept <=> has a reason, keep-last keeps min(N, len).
        #[test]
        fn apply_is_total(
            times in prop::collection::vec(any::<i64>(), 0..40),
            n in prop::array::uniform6(proptest::option::of(0u32..6)),
            within in proptest::option::of(any::<u64>()),
            off in any::<i32>(),
        ) {
            let s = snaps(&times);
            let c = |x: Option<u32>| x.map(KeepN::Count);
            let p = Policy { last: c(n[0]), hourly: c(n[1]), daily: c(n[2]), weekly: c(n[3]), monthly: c(n[4]), yearly: c(n[5]), within_secs: within, tags: vec![], utc_offset_secs: off };
            let d = apply(&s, &p);
            prop_assert_eq!(d.len(), s.len());
            prop_assert!(d.windows(2).all(|w| w[0].time >= w[1].time));
            prop_assert!(d.iter().all(|x| x.keep != x.reasons.is_empty()));
            if let Some(k) = n[0] {
                let last = d.iter().filter(|x| x.reasons.contains(&Reason::Rule(Rule::Last))).count();
                prop_assert_eq!(last, (k as usize).min(s.len()));
            }
        }
    }

    const H: i64 = 3600;
    const D: i64 = 86_400;
    /// 2026-01-01T00:00:00Z (a Thursday).
    const T0: i64 = 1_767_225_600;

    fn snaps(times: &[i64]) -> Vec<SnapshotInfo> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| SnapshotInfo {
                id: Id([i as u8; 32]),
                time: *t,
                nanos: 0,
                tags: vec![],
            })
            .collect()
    }

    #[test]
    fn within_one_second_the_later_snapshot_is_the_newest() {
        // The later snapshot has the smaller id: only the nanoseconds order them.
        let s = vec![
            SnapshotInfo {
                id: Id([9; 32]),
                time: T0,
                nanos: 100,
                tags: vec![],
            },
            SnapshotInfo {
                id: Id([1; 32]),
                time: T0,
                nanos: 900,
                tags: vec![],
            },
        ];
        let p = Policy {
            last: Some(KeepN::Count(1)),
            ..Policy::default()
        };
        let d = apply(&s, &p);
        let keep: Vec<Id> = d.iter().filter(|d| d.keep).map(|d| d.id).collect();
        assert_eq!(keep, vec![Id([1; 32])]);
    }

    fn kept(d: &[Decision]) -> Vec<i64> {
        d.iter().filter(|d| d.keep).map(|d| d.time).collect()
    }

    #[test]
    fn calendar_helpers() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(T0 / D), (2026, 1, 1));
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // ISO weeks: 2021-01-03 belongs to 2020-W53; 2026-01-01 is 2026-W01; 2024-12-30 is 2025-W01.
        assert_eq!(iso_week(days_from_civil(2021, 1, 3)), (2020, 53));
        assert_eq!(iso_week(days_from_civil(2026, 1, 1)), (2026, 1));
        assert_eq!(iso_week(days_from_civil(2024, 12, 30)), (2025, 1));
        for z in -800_000..800_000i64 {
            if z % 997 == 0 {
                let (y, m, d) = civil_from_days(z);
                assert_eq!(days_from_civil(y, m, d), z);
            }
        }
    }

    #[test]
    fn empty_policy_keeps_all() {
        let d = apply(&snaps(&[T0, T0 + 1]), &Policy::default());
        assert!(d
            .iter()
            .all(|d| d.keep && d.reasons == vec![Reason::EmptyPolicy]));
    }

    #[test]
    fn keep_last() {
        let p = Policy {
            last: Some(KeepN::Count(2)),
            ..Default::default()
        };
        let d = apply(&snaps(&[T0, T0 + 10, T0 + 20, T0 + 30]), &p);
        assert_eq!(kept(&d), vec![T0 + 30, T0 + 20]);
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].reasons, vec![Reason::Rule(Rule::Last)]);
    }

    #[test]
    fn keep_daily_takes_newest_per_day_and_oldest_extra() {
        // Three days with two snapshots each; keep-daily 5 finds only 3 days.
        let times = [
            T0 + H,
            T0 + 5 * H,
            T0 + D + H,
            T0 + D + 5 * H,
            T0 + 2 * D + H,
            T0 + 2 * D + 5 * H,
        ];
        let p = Policy {
            daily: Some(KeepN::Count(5)),
            ..Default::default()
        };
        let d = apply(&snaps(&times), &p);
        assert_eq!(
            kept(&d),
            vec![T0 + 2 * D + 5 * H, T0 + D + 5 * H, T0 + 5 * H, T0 + H]
        );
        assert_eq!(d.last().unwrap().reasons, vec![Reason::Oldest(Rule::Daily)]);
        let p = Policy {
            daily: Some(KeepN::Count(2)),
            ..Default::default()
        };
        assert_eq!(
            kept(&apply(&snaps(&times), &p)),
            vec![T0 + 2 * D + 5 * H, T0 + D + 5 * H]
        );
    }

    #[test]
    fn weekly_monthly_yearly_and_unlimited() {
        // One snapshot per day for 400 days.
        let times: Vec<i64> = (0..400).map(|i| T0 + i * D + 12 * H).collect();
        let p = Policy {
            weekly: Some(KeepN::Count(4)),
            monthly: Some(KeepN::Count(3)),
            yearly: Some(KeepN::Unlimited),
            ..Default::default()
        };
        let d = apply(&snaps(&times), &p);
        let k = kept(&d);
        // Day 399 = 2027-02-04 (Thursday). Weeks keep 399, then the Sundays 395, 388, 381.
        let day = |i: i64| T0 + i * D + 12 * H;
        assert_eq!(civil_from_days((T0 + 399 * D) / D), (2027, 2, 4));
        assert!(
            k.contains(&day(399))
                && k.contains(&day(395))
                && k.contains(&day(388))
                && k.contains(&day(381))
        );
        // Months: Feb 2027 (399), Jan 2027 (day 395 = Jan 31), Dec 2026 (day 364 = Dec 31).
        assert!(k.contains(&day(395)) && k.contains(&day(364)));
        // Yearly unlimited: 2027 (399) and 2026 (364), both already kept; no "oldest" rule.
        assert_eq!(k, vec![day(399), day(395), day(388), day(381), day(364)]);
        assert!(d
            .iter()
            .all(|d| !d.reasons.iter().any(|r| matches!(r, Reason::Oldest(_)))));
    }

    #[test]
    fn within_tags_and_offset() {
        let mut s = snaps(&[T0, T0 + D, T0 + 2 * D, T0 + 3 * D]);
        s[0].tags = vec!["audit".into()];
        let p = Policy {
            within_secs: Some(2 * D as u64),
            tags: vec!["audit".into()],
            ..Default::default()
        };
        let d = apply(&s, &p);
        assert_eq!(kept(&d), vec![T0 + 3 * D, T0 + 2 * D, T0]);
        assert_eq!(d[3].reasons, vec![Reason::Tag("audit".into())]);
        // 23:30 UTC and 00:30 UTC the next day are the same day at UTC-2.
        let s = snaps(&[T0 + D - H / 2, T0 + D + H / 2]);
        let p = Policy {
            daily: Some(KeepN::Count(10)),
            utc_offset_secs: -2 * 3600,
            ..Default::default()
        };
        assert_eq!(kept(&apply(&s, &p)), vec![T0 + D + H / 2, T0 + D - H / 2]);
        assert_eq!(apply(&s, &p)[1].reasons, vec![Reason::Oldest(Rule::Daily)]);
        let p = Policy {
            daily: Some(KeepN::Count(10)),
            ..Default::default()
        };
        assert!(apply(&s, &p)
            .iter()
            .all(|d| d.reasons.contains(&Reason::Rule(Rule::Daily))));
    }
}
