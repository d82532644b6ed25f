use super::*;
use lethe_config::MatchRule;
use lethe_core::pattern::Pattern;
use lethe_core::plan::VerifyMode;
use proptest::prelude::*;

fn bay(name: &str, policy: Policy, level: Level, led: u8) -> Bay {
    Bay {
        name: lethe_alert::Label::new(name).unwrap(),
        rules: vec![MatchRule::parse("loop:/tmp/x-*.img").unwrap()],
        led: Some(led),
        policy,
        wipe: lethe_config::WipeDefaults {
            level,
            method: lethe_config::Method::Auto,
            pattern: Pattern::Random,
            passes: 1,
            verify: VerifyMode::Full,
            destination: None,
            operator: None,
            location: None,
            media_source: None,
        },
    }
}

fn id(serial: &str, size: u64) -> DeviceIdentity {
    DeviceIdentity {
        path: format!("/dev/{serial}"),
        stable_id: None,
        transport: "sata".into(),
        manufacturer: None,
        model: Some("M".into()),
        serial: Some(serial.into()),
        wwn: None,
        firmware: None,
        size_bytes: size,
        logical_sector: 512,
        physical_sector: 512,
        rotational: Some(true),
        removable: Some(false),
        media_type: "magnetic".into(),
        backing: None,
    }
}

fn arrival(name: &str, transport: &str, assessed: Result<DeviceIdentity, String>) -> Arrival {
    Arrival {
        name: name.into(),
        view: DriveView {
            path: format!("/dev/{name}"),
            transport: transport.into(),
            model: Some("M".into()),
            serial: Some(name.to_uppercase()),
            size_bytes: 1 << 20,
        },
        assessed,
    }
}

fn book() -> BayBook {
    BayBook::new(&[
        bay("auto-1", Policy::Auto, Level::Clear, 1),
        bay("ask-2", Policy::Ask, Level::Clear, 2),
        bay("usb", Policy::Auto, Level::Purge, 3),
    ])
}

#[test]
fn an_auto_bay_starts_a_protected_drive_never() {
    let mut b = book();
    assert_eq!(
        b.arrived(0, arrival("sdb", "sata", Ok(id("S1", 1 << 20))), &[], false),
        [Action::Start { name: "sdb".into() }]
    );
    let a = b.arrived(
        0,
        arrival("sdc", "sata", Err("sdc is mounted at /mnt".into())),
        &[],
        false,
    );
    assert_eq!(
        a,
        [Action::Refused {
            name: "sdc".into(),
            why: "sdc is mounted at /mnt".into()
        }]
    );
    assert_eq!(b.slot("sdc").unwrap().state, BayState::Refused);
    // A repeated event of a present drive starts nothing.
    assert!(b
        .arrived(0, arrival("sdb", "sata", Ok(id("S1", 1 << 20))), &[], false)
        .is_empty());
    b.job_submitted("sdb", "wipe-1");
    assert_eq!(b.slot("sdb").unwrap().state, BayState::Running);
    assert!(b.job_finished("wipe-1", &Outcome::Passed, &[]).is_empty());
    assert_eq!(b.slot("sdb").unwrap().state, BayState::Passed);
}

#[test]
fn an_interrupted_job_of_the_same_drive_resumes_and_a_finished_one_is_not_redone_at_startup() {
    let mut b = book();
    let past = [
        PastJob {
            id: "wipe-2".into(),
            state: JobState::Passed,
        },
        PastJob {
            id: "wipe-1".into(),
            state: JobState::Interrupted,
        },
    ];
    assert_eq!(
        b.arrived(0, arrival("sdb", "sata", Ok(id("S1", 1))), &past, true),
        [Action::Resume {
            name: "sdb".into(),
            job: "wipe-1".into()
        }]
    );
    let mut b = book();
    assert!(b
        .arrived(0, arrival("sdb", "sata", Ok(id("S1", 1))), &past[..1], true)
        .is_empty());
    let s = b.slot("sdb").unwrap();
    assert_eq!(
        (s.state, s.job.as_deref()),
        (BayState::Passed, Some("wipe-2"))
    );
    // Put back by hand (a hot-plug event): the bay runs its job again.
    b.removed("sdb");
    assert_eq!(
        b.arrived(
            0,
            arrival("sdb", "sata", Ok(id("S1", 1))),
            &past[..1],
            false
        ),
        [Action::Start { name: "sdb".into() }]
    );
}

#[test]
fn an_ask_bay_waits_for_the_right_answer() {
    let mut b = book();
    assert_eq!(
        b.arrived(1, arrival("sdd", "sata", Ok(id("S4", 4096))), &[], false),
        [Action::Led {
            led: 2,
            pattern: LedPattern::Attention
        }]
    );
    b.arrived(1, arrival("sde", "sata", Ok(id("S5", 4096))), &[], false);
    assert_eq!(b.waiting_for("ask-2", "S5").unwrap().name, "sde");
    assert_eq!(b.waiting_for("ask-2", "S4").unwrap().name, "sdd");
    // The size matches both: ambiguous.
    assert_eq!(
        b.waiting_for("ask-2", "4096").unwrap_err().code,
        ErrorCode::Conflict
    );
    assert_eq!(
        b.waiting_for("ask-2", "S9").unwrap_err().code,
        ErrorCode::Refused
    );
    assert_eq!(
        b.waiting_for("auto-1", "S4").unwrap_err().code,
        ErrorCode::Conflict
    );
    assert_eq!(
        b.waiting_for("nope", "S4").unwrap_err().code,
        ErrorCode::NotFound
    );
    b.job_submitted("sdd", "wipe-4");
    assert_eq!(
        b.waiting_for("ask-2", "S4").unwrap_err().code,
        ErrorCode::Refused
    );
}

#[test]
fn a_drive_pulled_mid_job_keeps_its_slot_until_the_job_fails() {
    let mut b = book();
    b.arrived(0, arrival("sdb", "sata", Ok(id("S1", 1))), &[], false);
    b.job_submitted("sdb", "wipe-1");
    assert!(b.removed("sdb").is_empty());
    assert!(b.slot("sdb").is_none(), "not present any more");
    b.job_finished("wipe-1", &Outcome::Failed, &["write error".into()]);
    let s = b.slot_of_job("wipe-1").unwrap();
    assert_eq!(s.state, BayState::Failed);
    assert!(
        s.message.as_deref().unwrap().contains("removed"),
        "{:?}",
        s.message
    );
    // A new drive in the bay replaces the record.
    b.arrived(0, arrival("sdb", "sata", Ok(id("S2", 1))), &[], false);
    assert!(b.slot_of_job("wipe-1").is_none());
    assert_eq!(b.views().iter().filter(|v| v.name == "auto-1").count(), 1);
}

#[test]
fn a_usb_drive_that_cannot_reach_purge_gets_the_hint() {
    let mut b = book();
    b.arrived(2, arrival("sdf", "usb", Ok(id("U1", 1))), &[], false);
    b.job_submitted("sdf", "wipe-9");
    let a = b.job_finished(
        "wipe-9",
        &Outcome::Refused(Refusal::Method(
            "Purge cannot be reached on this device: destroy it".into(),
        )),
        &[],
    );
    assert_eq!(
        a,
        [Action::Led {
            led: 3,
            pattern: LedPattern::Attention
        }]
    );
    let s = b.slot("sdf").unwrap();
    assert!(
        s.message.as_deref().unwrap().starts_with(USB_PURGE_HINT),
        "{:?}",
        s.message
    );
    assert!(s.message.as_deref().unwrap().contains("destroy"));
}

#[test]
fn views_show_every_bay() {
    let mut b = book();
    b.arrived(0, arrival("sdb", "sata", Ok(id("S1", 1))), &[], false);
    b.arrived(0, arrival("sdc", "sata", Ok(id("S2", 1))), &[], false);
    let v = b.views();
    assert_eq!(
        v.iter()
            .map(|v| (v.name.as_str(), v.state))
            .collect::<Vec<_>>(),
        [
            ("auto-1", BayState::Waiting),
            ("auto-1", BayState::Waiting),
            ("ask-2", BayState::Empty),
            ("usb", BayState::Empty)
        ]
    );
    assert_eq!(b.removed("sdb"), []);
    assert_eq!(
        b.removed("sdc"),
        [Action::Led {
            led: 1,
            pattern: LedPattern::Idle
        }]
    );
}

#[derive(Debug, Clone)]
enum Ev {
    Arrive {
        bay: usize,
        drive: usize,
        protected: bool,
        startup: bool,
    },
    Remove {
        drive: usize,
    },
    Finish {
        job: usize,
        passed: bool,
    },
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        (0..3usize, 0..4usize, any::<bool>(), any::<bool>()).prop_map(
            |(bay, drive, protected, startup)| Ev::Arrive {
                bay,
                drive,
                protected,
                startup
            }
        ),
        (0..4usize).prop_map(|drive| Ev::Remove { drive }),
        (0..8usize, any::<bool>()).prop_map(|(job, passed)| Ev::Finish { job, passed }),
    ]
}

proptest! {
    /// Whatever happens: a protected drive never gets a job, a present
    /// drive never has two jobs at once, and every job started is for a
    /// present drive. (A drive pulled mid-job and put back may get a new
    /// job while the old one fails; the library's exclusive open keeps the
    /// two apart.)
    #[test]
    fn no_protected_drive_and_no_drive_twice(events in proptest::collection::vec(ev(), 0..40)) {
        let mut b = book();
        let mut jobs: Vec<(String, String)> = Vec::new(); // (job, drive) running
        let mut departed = std::collections::HashSet::new(); // jobs whose drive was pulled
        let mut protected = std::collections::HashSet::new();
        let mut n = 0;
        for e in events {
            match e {
                Ev::Arrive { bay, drive, protected: p, startup } => {
                    let name = format!("sd{drive}");
                    let was_present = b.slot(&name).is_some();
                    let assessed = if p { Err("mounted".to_string()) } else { Ok(id(&name, 1)) };
                    let actions = b.arrived(bay, arrival(&name, "sata", assessed), &[], startup);
                    if !was_present {
                        if p { protected.insert(name.clone()); } else { protected.remove(&name); }
                    }
                    for a in actions {
                        match a {
                            Action::Start { name } | Action::Resume { name, .. } => {
                                prop_assert!(!protected.contains(&name), "protected {name} started");
                                prop_assert!(!jobs.iter().any(|(j, d)| *d == name && !departed.contains(j)), "{name} twice");
                                prop_assert!(b.slot(&name).is_some());
                                n += 1;
                                let job = format!("wipe-{n}");
                                b.job_submitted(&name, &job);
                                jobs.push((job, name));
                            }
                            Action::Refused { name, .. } => prop_assert!(protected.contains(&name)),
                            Action::Led { .. } => {}
                        }
                    }
                }
                Ev::Remove { drive } => {
                    let name = format!("sd{drive}");
                    for (j, d) in &jobs {
                        if *d == name {
                            departed.insert(j.clone());
                        }
                    }
                    b.removed(&name);
                }
                Ev::Finish { job, passed } => {
                    if let Some(i) = (job < jobs.len()).then_some(job) {
                        let (j, _) = jobs.remove(i);
                        let o = if passed { Outcome::Passed } else { Outcome::Failed };
                        b.job_finished(&j, &o, &[]);
                        prop_assert!(b.slot_of_job(&j).is_none_or(|s| s.state != BayState::Running));
                    }
                }
            }
            // Every running slot has a job in flight.
            for v in b.views() {
                if v.state == BayState::Running {
                    prop_assert!(v.job.as_ref().is_some_and(|j| jobs.iter().any(|(x, _)| x == j)));
                }
            }
        }
    }
}
