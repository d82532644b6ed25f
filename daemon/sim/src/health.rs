//! Drive health in the model: SMART READ DATA / THRESHOLDS / RETURN STATUS
//! (SATA), the SMART / Health log page 02h (NVMe), LOG SENSE pages and READ
//! DEFECT DATA(10) (SAS). All answers are built with the encoders of
//! `lethe_cmds::smart`, from one [`SimHealth`] a test can change.

use crate::{AtaResponse, NvmeResponse, ScsiResponse, SimDrive, State};
use lethe_cmds::ata::{AtaCommand, AtaRegisters};
use lethe_cmds::nvme::sc;
use lethe_cmds::scsi::{ScsiCdb, Sense, SenseFormat, SenseKey};
use lethe_cmds::smart::{ata as sata, nvme as snvme, scsi as sscsi};

/// What the modelled drive reports about its health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimHealth {
    /// SMART feature set enabled (SATA: READ DATA aborts when off).
    pub smart_enabled: bool,
    /// Power-on hours.
    pub power_on_hours: u32,
    /// Power cycles.
    pub power_cycles: u32,
    /// Reallocated sectors / grown defects.
    pub reallocated: u16,
    /// Pending sectors (SATA).
    pub pending: u32,
    /// Uncorrectable / media errors.
    pub uncorrectable: u32,
    /// Endurance used, percent (flash).
    pub percentage_used: u8,
    /// Temperature in °C.
    pub temperature_c: u8,
    /// The drive predicts its own failure.
    pub failing: bool,
}

impl Default for SimHealth {
    fn default() -> Self {
        SimHealth {
            smart_enabled: true,
            power_on_hours: 1234,
            power_cycles: 56,
            reallocated: 0,
            pending: 0,
            uncorrectable: 0,
            percentage_used: 3,
            temperature_c: 35,
            failing: false,
        }
    }
}

impl SimDrive {
    /// Set what the drive reports about its health.
    pub fn set_health(&self, h: SimHealth) {
        self.lock().health = h;
    }
}

fn attributes(h: &SimHealth, rotational: bool) -> Vec<sata::Attribute> {
    let a = |id, flags, current, raw: u64, threshold| sata::Attribute {
        id,
        flags,
        current,
        worst: current,
        raw,
        threshold,
    };
    // Reallocated sectors fall toward the threshold as the spare area fills.
    let realloc_value = if h.failing { 5 } else { 100 };
    let mut v = vec![
        a(5, 0x0033, realloc_value, u64::from(h.reallocated), 10),
        a(9, 0x0032, 99, u64::from(h.power_on_hours), 0),
        a(12, 0x0032, 99, u64::from(h.power_cycles), 0),
        a(194, 0x0022, 65, u64::from(h.temperature_c), 0),
        a(197, 0x0012, 100, u64::from(h.pending), 0),
        a(198, 0x0010, 100, u64::from(h.uncorrectable), 0),
    ];
    if !rotational {
        v.push(a(233, 0x0032, 100 - h.percentage_used.min(99), 0, 0));
    }
    v
}

/// SATA: SMART (B0h).
pub(crate) fn ata(d: &SimDrive, s: &State, cmd: &AtaCommand) -> AtaResponse {
    let h = &s.health;
    let ok = |data| AtaResponse {
        regs: AtaRegisters::ok(),
        data,
    };
    if !h.smart_enabled || cmd.lba & 0xFF_FF00 != sata::SIGNATURE_LBA {
        return AtaResponse {
            regs: AtaRegisters::aborted(),
            data: Vec::new(),
        };
    }
    let attrs = attributes(h, d.config().rotational);
    match cmd.feature {
        sata::READ_DATA => ok(sata::encode_data(&attrs)),
        sata::READ_THRESHOLDS => ok(sata::encode_thresholds(&attrs)),
        sata::RETURN_STATUS => AtaResponse {
            regs: AtaRegisters {
                lba: if h.failing {
                    sata::THRESHOLD_EXCEEDED_LBA
                } else {
                    sata::SIGNATURE_LBA
                },
                ..AtaRegisters::ok()
            },
            data: Vec::new(),
        },
        _ => AtaResponse {
            regs: AtaRegisters::aborted(),
            data: Vec::new(),
        },
    }
}

/// NVMe: Get Log Page 02h.
pub(crate) fn nvme_log(s: &State, len: u32) -> NvmeResponse {
    let h = &s.health;
    let log = snvme::SmartLog {
        critical_warning: if h.failing { 0x04 } else { 0 },
        temperature_k: u16::from(h.temperature_c) + 273,
        available_spare: if h.failing { 5 } else { 100 },
        spare_threshold: 10,
        percentage_used: h.percentage_used,
        data_units_written: 1000,
        power_cycles: u64::from(h.power_cycles),
        power_on_hours: u64::from(h.power_on_hours),
        unsafe_shutdowns: 0,
        media_errors: u64::from(h.uncorrectable),
    };
    let mut data = log.encode();
    data.resize(len.min(4096) as usize, 0);
    NvmeResponse {
        completion: lethe_cmds::nvme::NvmeCompletion {
            status: sc::SUCCESS,
            result: 0,
        },
        data,
    }
}

/// SAS: LOG SENSE and READ DEFECT DATA(10). `None`: not a health command.
pub(crate) fn scsi(d: &SimDrive, s: &State, cdb: &ScsiCdb) -> Option<ScsiResponse> {
    let h = &s.health;
    let alloc = cdb.data.len() as usize;
    let page = |p: u8, params: Vec<(u16, Vec<u8>)>| sscsi::LogPage { page: p, params }.encode();
    let mut pages = vec![0x00, 0x03, 0x0D, 0x0E, 0x15, 0x2F];
    if !d.config().rotational {
        pages.push(0x11);
    }
    let data = match cdb.opcode() {
        sscsi::LOG_SENSE => match cdb.cdb[2] & 0x3F {
            0x00 => sscsi::encode_supported(&pages),
            0x03 => page(
                0x03,
                vec![(6, u64::from(h.uncorrectable).to_be_bytes().to_vec())],
            ),
            0x0D => page(0x0D, vec![(0, vec![0, h.temperature_c])]),
            0x0E => page(0x0E, vec![(4, h.power_cycles.to_be_bytes().to_vec())]),
            0x11 if pages.contains(&0x11) => {
                page(0x11, vec![(1, vec![0, 0, 0, h.percentage_used])])
            }
            0x15 => {
                let mut v = (h.power_on_hours.saturating_mul(60)).to_be_bytes().to_vec();
                v.extend_from_slice(&[0; 8]);
                page(0x15, vec![(0, v)])
            }
            0x2F => {
                let asc = if h.failing { 0x5D } else { 0 };
                page(0x2F, vec![(0, vec![asc, 0, h.temperature_c])])
            }
            _ => {
                return Some(ScsiResponse::check(Sense::new(
                    SenseFormat::Fixed,
                    SenseKey::IllegalRequest,
                    0x24,
                    0x00,
                )))
            }
        },
        sscsi::READ_DEFECT_DATA_10 => sscsi::encode_defect_header(h.reallocated),
        _ => return None,
    };
    let mut data = data;
    data.truncate(alloc);
    Some(ScsiResponse::good(data))
}
