//! Bays: which drive sits in which bay, what the bay's policy does with
//! it, and what the daemon must do next. Pure and deterministic: the worker
//! feeds it arrivals (already assessed by the job library), removals and
//! job ends, and carries out the [`Action`]s it returns.
//!
//! A bay is a configured match rule, so one bay may hold several drives
//! (`transport:usb`, or `loop:GLOB` in tests); each drive in a bay is a
//! [`Slot`], keyed by its kernel name while it is present. Rules:
//!
//! - a drive the job library refuses (protected: system disk, mounted,
//!   swap, RAID/LVM member, in use, another path to one of those) is never
//!   offered: its slot is `refused`, and no job starts;
//! - `ask`: the drive waits (LED attention) for an operator's `start_bay`
//!   with the drive's serial number or size, checked again by the library;
//! - `auto`: a drive whose interrupted job is recorded (same identity)
//!   resumes it; otherwise a new job starts. When the daemon starts, a
//!   drive whose last job already ended is shown, not wiped again;
//! - a slot runs at most one job; a second arrival of a present drive is
//!   ignored;
//! - a drive pulled during its job keeps its slot until the job ends (the
//!   job fails on its own, with a failure report), and shows why.

use lethe_config::{Bay, Level, Policy};
use lethe_controller::LedPattern;
use lethe_jobs::{DeviceIdentity, Outcome, Refusal};
use lethe_wire::{
    BayLevel, BayPolicy, BayState, BayView, DriveView, ErrorCode, JobState, WireError,
};

/// A drive that arrived, as the worker found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// Kernel name (`sdb`, `loop3`).
    pub name: String,
    /// What the operator sees.
    pub view: DriveView,
    /// The job library's assessment: the identity it would open, or why
    /// the drive may not be touched.
    pub assessed: Result<DeviceIdentity, String>,
}

/// A wipe job of the same drive (same identity) from the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastJob {
    pub id: String,
    pub state: JobState,
}

/// What the worker must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start bay `bay`'s job on drive `name`.
    Start { name: String },
    /// Resume `job` on drive `name`.
    Resume { name: String, job: String },
    /// Set an LED.
    Led { led: u8, pattern: LedPattern },
    /// Record that drive `name` was refused (audit log).
    Refused { name: String, why: String },
}

/// A drive in a bay.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// Index of its bay.
    pub bay: usize,
    /// Kernel name.
    pub name: String,
    pub view: DriveView,
    /// The identity the library assessed (none when refused).
    pub identity: Option<DeviceIdentity>,
    /// Still attached.
    pub present: bool,
    pub state: BayState,
    /// The current or last job.
    pub job: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone)]
struct BayInfo {
    name: String,
    led: Option<u8>,
    policy: Policy,
    level: Level,
}

/// Every bay and every drive in one.
#[derive(Debug, Clone)]
pub struct BayBook {
    bays: Vec<BayInfo>,
    slots: Vec<Slot>,
}

/// The hint for a drive behind a USB bridge that cannot reach Purge.
pub const USB_PURGE_HINT: &str = "move it to a direct SATA/NVMe port for Purge";

impl BayBook {
    /// The bays of a configuration, all empty.
    pub fn new(bays: &[Bay]) -> Self {
        BayBook {
            bays: bays
                .iter()
                .map(|b| BayInfo {
                    name: b.name.as_str().to_string(),
                    led: b.led,
                    policy: b.policy,
                    level: b.wipe.level,
                })
                .collect(),
            slots: Vec::new(),
        }
    }

    /// The slot of drive `name`.
    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.name == name && s.present)
    }

    /// The slot whose current or last job is `job`.
    pub fn slot_of_job(&self, job: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.job.as_deref() == Some(job))
    }

    /// Index of bay `name`.
    pub fn bay_index(&self, name: &str) -> Option<usize> {
        self.bays.iter().position(|b| b.name == name)
    }

    /// The LED of bay `i`.
    pub fn led(&self, i: usize) -> Option<u8> {
        self.bays.get(i).and_then(|b| b.led)
    }

    /// The name of bay `i`.
    pub fn bay_name(&self, i: usize) -> &str {
        &self.bays[i].name
    }

    fn led_action(&self, bay: usize, pattern: LedPattern) -> Vec<Action> {
        self.bays[bay]
            .led
            .map(|led| Action::Led { led, pattern })
            .into_iter()
            .collect()
    }

    /// Drive `a` arrived in bay `bay`. `past`: the wipe jobs of the same
    /// drive, newest first. `startup`: found when the daemon started, not
    /// by a hot-plug event.
    pub fn arrived(
        &mut self,
        bay: usize,
        a: Arrival,
        past: &[PastJob],
        startup: bool,
    ) -> Vec<Action> {
        if self.slot(&a.name).is_some() {
            // Already known and present (a repeated event): nothing new.
            return Vec::new();
        }
        // Records of drives gone from this bay (and an old record under this
        // kernel name) make way, unless their job still runs.
        self.slots.retain(|s| {
            s.state == BayState::Running
                || (s.present && s.name != a.name)
                || s.bay != bay && s.name != a.name
        });
        let mut slot = Slot {
            bay,
            name: a.name.clone(),
            view: a.view,
            identity: None,
            present: true,
            state: BayState::Waiting,
            job: None,
            message: None,
        };
        let identity = match a.assessed {
            Err(why) => {
                slot.state = BayState::Refused;
                slot.message = Some(format!("not offered: {why}"));
                self.slots.push(slot);
                return vec![Action::Refused { name: a.name, why }];
            }
            Ok(id) => id,
        };
        slot.identity = Some(identity);
        let mut actions = Vec::new();
        match self.bays[bay].policy {
            Policy::Ask => {
                slot.message = Some("waiting for an operator to confirm the drive".into());
                actions.extend(self.led_action(bay, LedPattern::Attention));
            }
            Policy::Auto => {
                if let Some(j) = past.iter().find(|j| j.state == JobState::Interrupted) {
                    slot.job = Some(j.id.clone());
                    actions.push(Action::Resume {
                        name: a.name.clone(),
                        job: j.id.clone(),
                    });
                } else if let (true, Some(last)) = (startup, past.first()) {
                    slot.state = match last.state {
                        JobState::Passed => BayState::Passed,
                        JobState::ClearOnly => BayState::ClearOnly,
                        JobState::Unverified => BayState::Unverified,
                        JobState::Failed => BayState::Failed,
                        JobState::Incomplete | JobState::NotStarted => BayState::Stopped,
                        JobState::Interrupted | JobState::Running => BayState::Interrupted,
                    };
                    slot.job = Some(last.id.clone());
                    slot.message = Some(
                        "its last job ended before the daemon started; take the drive out and \
                         put it back to run the bay's job again"
                            .into(),
                    );
                } else {
                    actions.push(Action::Start {
                        name: a.name.clone(),
                    });
                }
            }
        }
        self.slots.push(slot);
        actions
    }

    /// A job was submitted for drive `name`.
    pub fn job_submitted(&mut self, name: &str, job: &str) {
        if let Some(s) = self.slots.iter_mut().find(|s| s.name == name && s.present) {
            s.state = BayState::Running;
            s.job = Some(job.to_string());
            s.message = None;
        }
    }

    /// Drive `name` was removed.
    pub fn removed(&mut self, name: &str) -> Vec<Action> {
        let Some(i) = self.slots.iter().position(|s| s.name == name && s.present) else {
            return Vec::new();
        };
        let bay = self.slots[i].bay;
        if self.slots[i].state == BayState::Running {
            self.slots[i].present = false;
            self.slots[i].message = Some("the drive was removed while its job ran".into());
            return Vec::new();
        }
        self.slots.remove(i);
        if self.slots.iter().any(|s| s.bay == bay && s.present) {
            Vec::new()
        } else {
            self.led_action(bay, LedPattern::Idle)
        }
    }

    /// Job `job` ended with `outcome` (`problems`: why it is not a pass).
    pub fn job_finished(
        &mut self,
        job: &str,
        outcome: &Outcome,
        problems: &[String],
    ) -> Vec<Action> {
        let Some(s) = self
            .slots
            .iter_mut()
            .find(|s| s.job.as_deref() == Some(job))
        else {
            return Vec::new();
        };
        let bay = &self.bays[s.bay];
        let usb_purge = bay.level == Level::Purge && s.view.transport == "usb";
        let removed = !s.present;
        let (state, message) = match outcome {
            Outcome::Passed => (BayState::Passed, None),
            Outcome::PassedAtLowerLevel { requested, reached } => (
                BayState::ClearOnly,
                Some(if usb_purge {
                    format!("{USB_PURGE_HINT}: verified at {} only", reached.as_str())
                } else {
                    format!(
                        "verified at {}, not at the {} requested",
                        reached.as_str(),
                        requested.as_str()
                    )
                }),
            ),
            Outcome::Failed => (
                BayState::Failed,
                Some(if removed {
                    "the drive was removed while its job ran: a failure report was issued".into()
                } else {
                    problems
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "the job failed".into())
                }),
            ),
            Outcome::Unverified => (
                BayState::Unverified,
                Some(
                    "every pass was written but nothing was read back: unverified, no certificate"
                        .into(),
                ),
            ),
            Outcome::NotStarted { reason } => (
                BayState::Stopped,
                Some(format!("not started, nothing was written: {reason}")),
            ),
            Outcome::Stopped => (BayState::Stopped, Some("stopped; resumable".into())),
            Outcome::Interrupted { reason } => (BayState::Interrupted, Some(reason.clone())),
            Outcome::Refused(why) => (
                BayState::Refused,
                Some(match why {
                    Refusal::Method(m) if usb_purge => format!("{USB_PURGE_HINT}: {m}"),
                    other => other.to_string(),
                }),
            ),
        };
        s.state = state;
        s.message = message;
        let pattern = match state {
            // The library sets success, failure and attention itself; a
            // refusal it leaves idle, which an operator would miss.
            BayState::Refused => Some(LedPattern::Attention),
            _ => None,
        };
        let (b, present) = (s.bay, s.present);
        match pattern {
            Some(p) if present => self.led_action(b, p),
            _ => Vec::new(),
        }
    }

    /// The one drive waiting in `ask` bay `bay` that `answer` (its serial
    /// number or exact size) confirms.
    pub fn waiting_for(&self, bay: &str, answer: &str) -> Result<&Slot, WireError> {
        let i = self
            .bay_index(bay)
            .ok_or_else(|| WireError::new(ErrorCode::NotFound, format!("there is no bay {bay}")))?;
        if self.bays[i].policy != Policy::Ask {
            return Err(WireError::new(
                ErrorCode::Conflict,
                format!("bay {bay} starts its jobs by itself (policy auto)"),
            ));
        }
        let waiting: Vec<&Slot> = self
            .slots
            .iter()
            .filter(|s| s.bay == i && s.present && s.state == BayState::Waiting)
            .collect();
        if waiting.is_empty() {
            return Err(WireError::new(
                ErrorCode::Conflict,
                format!("no drive is waiting in bay {bay}"),
            ));
        }
        let matching: Vec<&&Slot> = waiting
            .iter()
            .filter(|s| {
                s.identity
                    .as_ref()
                    .is_some_and(|id| lethe_jobs::confirm::accepts(id, answer))
            })
            .collect();
        match matching.as_slice() {
            [one] => Ok(one),
            [] => Err(WireError::new(
                ErrorCode::Refused,
                format!(
                    "{answer:?} is neither the serial number nor the size of a drive waiting in \
                     bay {bay}; nothing was written"
                ),
            )),
            _ => Err(WireError::new(
                ErrorCode::Conflict,
                format!(
                    "several drives in bay {bay} match {answer:?}: answer with the serial number"
                ),
            )),
        }
    }

    /// What `lethe status` shows: every bay, one line per drive in it (or
    /// one empty line).
    pub fn views(&self) -> Vec<BayView> {
        let mut out = Vec::new();
        for (i, b) in self.bays.iter().enumerate() {
            let base = BayView {
                name: b.name.clone(),
                led: b.led,
                policy: match b.policy {
                    Policy::Ask => BayPolicy::Ask,
                    Policy::Auto => BayPolicy::Auto,
                },
                level: match b.level {
                    Level::Clear => BayLevel::Clear,
                    Level::Purge => BayLevel::Purge,
                },
                state: BayState::Empty,
                drive: None,
                job: None,
                message: None,
            };
            let mut any = false;
            for s in self.slots.iter().filter(|s| s.bay == i) {
                any = true;
                out.push(BayView {
                    state: s.state,
                    drive: Some(s.view.clone()),
                    job: s.job.clone(),
                    message: s.message.clone(),
                    ..base.clone()
                });
            }
            if !any {
                out.push(base);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
