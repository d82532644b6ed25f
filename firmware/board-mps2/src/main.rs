//! Lethe controller firmware for the Arm MPS2 AN386 (Cortex-M4F) under QEMU `-M mps2-an386`.
//!
//! Thin wiring only; all behaviour lives in `lethe-fw-logic`. Register map and pin levels: `hw.rs`.
//!
//! What de-energises the relay, outside the main loop:
//! * before `main`: `__pre_init` writes GPIO0 DATAOUT = 0; on silicon the pin is an input until
//!   `Relay::new` (the board's pull-down holds the driver off);
//! * the pulse limit: dual timer 1, one-shot, started just before the relay goes high; its
//!   interrupt (highest priority) drops the relay and holds it low;
//! * the watchdog: kicked only after a healthy poll (at most every 100 ms); its first expiry
//!   raises the NMI, which drops the relay and records the cause; its second resets the board;
//! * panic, HardFault and any unexpected interrupt: relay low first, cause recorded, reset.
//!
//! The main loop reads a free-running counter for time, takes received bytes from the UART
//! interrupt's queue (at most `RX_BUDGET` per pass), transmits with a bounded wait, and sleeps in
//! WFI between the 5 ms SysTick wake-ups.
#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

mod hw;

use core::panic::PanicInfo;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use hw::{FpgaLed, Input, Relay, Uart};
use lethe_fw_logic::firmware::{Firmware, InputPins};
use lethe_fw_logic::reset::Recorded;
use lethe_fw_logic::{Board, BuildKind, Config, SimFault, SimRequest};

/// SysTick wake-up period (the loop's poll period).
const TICK_MS: u32 = 5;
/// Hardware watchdog period: NMI after this long without a kick, reset after twice this long.
const WATCHDOG_MS: u32 = 1_000;
/// Kicks are spaced at least this far apart (each is three register writes).
const KICK_EVERY_MS: u32 = 100;

struct Mps2Board {
    last_kick: u32,
    pending: Option<SimFault>,
}

impl Board for Mps2Board {
    fn build(&self) -> BuildKind {
        if cfg!(feature = "sim-inputs") {
            BuildKind::Simulation
        } else {
            BuildKind::Production
        }
    }
    fn start_pulse_limit(&mut self, ms: u32) {
        hw::pulse_limit_start(ms);
    }
    fn stop_pulse_limit(&mut self) {
        hw::pulse_limit_stop();
    }
    fn pulse_limit_tripped(&mut self) -> bool {
        hw::pulse_limit_tripped()
    }
    fn kick_watchdog(&mut self) {
        let t = hw::ticks();
        if self.last_kick.wrapping_sub(t) >= KICK_EVERY_MS * hw::TICKS_PER_MS {
            hw::watchdog_kick();
            self.last_kick = t;
        }
    }
    fn entropy(&mut self) -> u32 {
        hw::ticks() ^ cortex_m::peripheral::SYST::get_current().rotate_left(16)
    }
    fn simulate(&mut self, req: SimRequest) {
        if !cfg!(feature = "sim-inputs") {
            return;
        }
        match req {
            SimRequest::Inputs {
                interlock_open,
                estop,
                contact,
                reset_pressed,
            } => hw::sim_inputs(!interlock_open, !estop, contact, reset_pressed),
            SimRequest::Fault(f) => self.pending = Some(f),
        }
    }
}

/// Carry out an injected fault (simulation builds; after its Ack went out).
fn inject(f: SimFault) -> ! {
    match f {
        SimFault::Hang => loop {
            core::hint::spin_loop();
        },
        SimFault::HangMasked => {
            cortex_m::interrupt::disable();
            loop {
                core::hint::spin_loop();
            }
        }
        SimFault::Panic => panic!("simulated panic"),
        SimFault::HardFault => cortex_m::asm::udf(),
    }
}

#[entry]
fn main() -> ! {
    let relay = Relay::new();
    let (reset_cause, boots) = hw::boot_record();
    hw::watchdog_start(WATCHDOG_MS);
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        // Unreachable (entry runs once); the watchdog resets the board with the relay low.
        loop {
            cortex_m::asm::wfi();
        }
    };
    hw::clock_start();
    let mut clock = hw::Clock::new();
    let mut uart = Uart::init();
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(hw::PCLK_HZ / 1000 * TICK_MS - 1);
    cp.SYST.clear_current();
    cp.SYST.enable_interrupt();
    cp.SYST.enable_counter();

    let inputs = InputPins {
        door: Input::Door,
        estop: Input::EStop,
        contact: Input::Contact,
        reset: Input::Reset,
    };
    let board = Mps2Board {
        last_kick: hw::ticks(),
        pending: None,
    };
    let seed = boots.rotate_left(16) ^ hw::ticks();
    let mut fw = Firmware::new(
        Config::default(),
        relay,
        inputs,
        [FpgaLed::new(0), FpgaLed::new(1)],
        board,
        reset_cause,
        seed,
    );
    hw::enable_interrupts(&mut cp.NVIC);

    loop {
        let now = clock.now_ms();
        fw.service(&mut uart, now);
        if let Some(f) = fw.board_mut().pending.take() {
            inject(f);
        }
        hw::idle();
    }
}

#[exception]
fn SysTick() {
    // Only wakes the main loop.
}

#[exception]
unsafe fn NonMaskableInt() {
    // The watchdog's first expiry: the main loop stopped kicking it.
    hw::relay_off_now();
    hw::record_cause(Recorded::Watchdog);
    // Wait for the watchdog's second expiry to reset the board (a hardware reset, whatever the
    // core does meanwhile).
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    hw::relay_off_now();
    hw::record_cause(Recorded::HardFault);
    cortex_m::peripheral::SCB::sys_reset()
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    hw::on_irq(irqn);
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    hw::relay_off_now();
    hw::record_cause(Recorded::Panic);
    cortex_m::peripheral::SCB::sys_reset()
}
