//! Hidden areas (HPA, Accessible Max Address, DCO): removal in the order the
//! drive demands, and a truthful account of whether the proof reached them.
//!
//! SET MAX ADDRESS EXT is aborted unless READ NATIVE MAX ADDRESS EXT is the
//! command right before it, so the native max is read again immediately
//! before the SET, as hdparm's `do_set_max_sectors` does, even though the
//! probe read it already. Drives with Accessible Max Address Configuration
//! get GET NATIVE MAX ADDRESS EXT / SET ACCESSIBLE MAX ADDRESS EXT (78h)
//! instead. IDENTIFY must then report the native capacity.

use crate::profile::{ata_identify, read_native_max, DriveProfile, HiddenArea};
use lethe_cmds::ata::{self, AtaRegisters, HiddenAreaFeature};
use lethe_cmds::io::{DriveIo, DriveIoError};
use serde::{Deserialize, Serialize};

/// Hidden-area handling, for the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiddenReport {
    /// What was found before the job.
    pub found: HiddenArea,
    /// True when the hidden area was removed (HPA: volatile; AMA: non-volatile).
    pub hpa_removed: bool,
    /// True when the proof reached the formerly hidden sectors: the canaries
    /// were written and read back there. False whenever sectors stayed
    /// hidden, or an overwrite that cannot reach them follows.
    #[serde(default)]
    pub covered: bool,
    /// Note for the certificate.
    pub note: String,
}

impl HiddenReport {
    /// The read-back passed: it covered the hidden sectors if they were removed
    /// and sampled through the native view.
    pub fn proven(&mut self, native_view: bool) {
        if self.found.hpa() && self.hpa_removed && native_view {
            self.covered = true;
            self.note.push_str(
                "; the read-back sampled the whole native capacity, the formerly hidden sectors \
                 through the ATA pass-through",
            );
        }
    }

    /// A verified overwrite of the block device follows: it reaches only the
    /// sectors the block device shows.
    pub fn overwrite_follows(&mut self, visible_sectors: u64) {
        self.covered = false;
        if self.found.hpa() {
            self.note.push_str(&format!(
                "; the verified overwrite that follows reaches only the {visible_sectors} \
                 sectors the block device shows: the {} formerly hidden sectors are NOT \
                 overwritten",
                self.found.hidden_sectors()
            ));
        }
    }
}

fn describe(h: &HiddenArea) -> String {
    let by = match h.feature {
        HiddenAreaFeature::Hpa => "HPA",
        HiddenAreaFeature::Ama => "Accessible Max Address",
    };
    format!(
        "{} visible sectors, {} native ({by} hides {}){}",
        h.visible_sectors,
        h.native_sectors,
        h.hidden_sectors(),
        h.dco_sectors.map_or(String::new(), |d| format!(
            ", factory {d} (DCO hides {})",
            d.saturating_sub(h.native_sectors)
        ))
    )
}

/// The hidden area when the job ends in an overwrite (or destruction) without
/// any drive-native command: nothing reaches the hidden sectors.
pub fn unreached(p: &DriveProfile, reasons: &mut Vec<String>) -> Option<HiddenReport> {
    let h = p.hidden.filter(|h| h.hpa() || h.dco())?;
    let mut note = describe(&h);
    if h.hpa() {
        note.push_str(&format!(
            "; an overwrite reaches only the {} sectors the block device shows: the {} hidden \
             sectors are NOT overwritten",
            h.visible_sectors,
            h.hidden_sectors()
        ));
    }
    if h.dco() {
        note.push_str("; DCO left in place (DCO RESTORE is not sent)");
    }
    reasons.push(format!("hidden area: {note}"));
    Some(HiddenReport {
        found: h,
        hpa_removed: false,
        covered: false,
        note,
    })
}

fn logged(
    log: &mut Vec<String>,
    name: &str,
    r: Result<AtaRegisters, DriveIoError>,
) -> Result<AtaRegisters, String> {
    log.push(match &r {
        Ok(x) => format!(
            "ATA {name}: status {:#04x} error {:#04x} lba {:#x}",
            x.status, x.error, x.lba
        ),
        Err(e) => format!("ATA {name}: {e}"),
    });
    match r {
        Ok(x) if !x.failed() => Ok(x),
        Ok(x) => Err(format!(
            "{name} rejected (status {:#04x} error {:#04x})",
            x.status, x.error
        )),
        Err(e) => Err(format!("{name} failed: {e}")),
    }
}

/// Remove the hidden area; returns the note on success.
fn remove(io: &dyn DriveIo, h: &HiddenArea, log: &mut Vec<String>) -> Result<String, String> {
    let (read_name, set_name) = match h.feature {
        HiddenAreaFeature::Hpa => ("READ NATIVE MAX ADDRESS EXT", "SET MAX ADDRESS EXT"),
        HiddenAreaFeature::Ama => (
            "GET NATIVE MAX ADDRESS EXT",
            "SET ACCESSIBLE MAX ADDRESS EXT",
        ),
    };
    // Read the native max again, immediately before the SET: nothing may come
    // between the two commands.
    let r = logged(log, read_name, read_native_max(io, h.feature))?;
    let native = ata::native_max_lba(&r) + 1;
    let set = match h.feature {
        HiddenAreaFeature::Hpa => ata::set_max_ext(native - 1, false),
        HiddenAreaFeature::Ama => ata::set_accessible_max_address_ext(native - 1),
    }
    .map_err(|e| e.to_string())?;
    logged(log, set_name, io.ata(&set, &mut []))?;
    let id = ata_identify(io).map_err(|e| format!("IDENTIFY after {set_name}: {e}"))?;
    if id.user_sectors() != native {
        return Err(format!(
            "{set_name} was accepted but IDENTIFY still reports {} sectors, not {native}",
            id.user_sectors()
        ));
    }
    Ok(match h.feature {
        HiddenAreaFeature::Hpa => format!(
            "HPA removed: {set_name} right after {read_name} set the max address to the native \
             {native} sectors (volatile: the owner's HPA returns at the next power cycle)"
        ),
        HiddenAreaFeature::Ama => format!(
            "Accessible Max Address restored to the native {native} sectors with {set_name} \
             right after {read_name} (non-volatile: the reduced capacity does not come back)"
        ),
    })
}

/// Report the hidden area, and remove it when `remove_it` (the operator's
/// `--remove-hpa`). `log` receives every command's answer.
pub fn hidden_step(
    io: &dyn DriveIo,
    h: HiddenArea,
    remove_it: bool,
    log: &mut Vec<String>,
) -> HiddenReport {
    let mut note = describe(&h);
    let mut removed = false;
    if h.hpa() && remove_it {
        match remove(io, &h, log) {
            Ok(n) => {
                removed = true;
                note.push_str(&format!("; {n}"));
            }
            Err(why) => note.push_str(&format!(
                "; {why}: the hidden sectors stay outside the read-back"
            )),
        }
    } else if h.hpa() {
        note.push_str(
            "; not removed (use --remove-hpa): the read-back cannot sample hidden sectors",
        );
    }
    if h.dco() {
        note.push_str("; DCO left in place (DCO RESTORE is not sent)");
    }
    HiddenReport {
        found: h,
        hpa_removed: removed,
        covered: false,
        note,
    }
}
