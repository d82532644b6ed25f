//! Lethe controller firmware for the Arm MPS2 AN386 (Cortex-M4F) under QEMU `-M mps2-an386`.
//!
//! Thin wiring only; all behaviour lives in `lethe-fw-logic`:
//! * link: CMSDK APB UART0 @ 0x4000_4000 (QEMU `serial0`);
//! * relay: CMSDK AHB GPIO0 bit 0 @ 0x4001_0000. QEMU 7.2 does not model this block (reads
//!   return 0, writes appear in `-d unimp`), so we keep a shadow of DATAOUT and report it;
//! * bay LEDs 0 and 1: the FPGAIO LED register @ 0x4002_8000 (QEMU's `led_change_intensity` trace);
//! * door interlock / e-stop: QEMU cannot drive an input pin, so they are simulated inputs,
//!   settable over the link only in a `sim-inputs` build; otherwise they read "closed / not pressed";
//! * clock: SysTick at 5 ms. The core sleeps in WFI with PRIMASK set: UART0 RX (IRQ 0) and
//!   SysTick pend and wake it, no handler runs, and nothing busy-polls.
#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

mod hw;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SCB;
use cortex_m_rt::entry;
use hw::{Door, EStop, FpgaLed, GpioOut, Uart};
use lethe_fw_logic::firmware::Firmware;
use lethe_fw_logic::{Board, Config};
use panic_halt as _;

/// SysTick period.
const TICK_MS: u32 = 5;
/// QEMU's MPS2 core clock.
const CORE_HZ: u32 = 25_000_000;

struct Mps2Board;

impl Board for Mps2Board {
    fn sim_inputs(&mut self, interlock_open: bool, estop: bool) -> bool {
        if cfg!(feature = "sim-inputs") {
            hw::set_sim_inputs(!interlock_open, !estop);
            true
        } else {
            false
        }
    }
}

#[entry]
fn main() -> ! {
    // Relay off before anything else (GPIO is also off after reset on real silicon).
    let relay = GpioOut::new(0);
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        // Unreachable (entry runs once); halt with the relay off.
        loop {
            cortex_m::asm::wfi();
        }
    };
    cortex_m::interrupt::disable();
    let mut uart = Uart::init();
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(CORE_HZ / 1000 * TICK_MS - 1);
    cp.SYST.clear_current();
    cp.SYST.enable_interrupt();
    cp.SYST.enable_counter();

    let seed = 0x5EED_0000 ^ cortex_m::peripheral::SYST::get_current();
    let mut fw = Firmware::new(
        Config::default(),
        relay,
        [FpgaLed::new(0), FpgaLed::new(1)],
        Door,
        EStop,
        Mps2Board,
        seed,
    );

    let mut ticks: u32 = 0;
    let mut wrapped = false;
    loop {
        // COUNTFLAG clears on read, so a wrap seen before sleeping is carried in `wrapped`.
        if wrapped || cp.SYST.has_wrapped() {
            ticks = ticks.wrapping_add(1);
        }
        fw.service(&mut uart, ticks.wrapping_mul(TICK_MS));
        // Clear the wake sources, then sleep unless a byte slipped in meanwhile. A byte or tick
        // arriving after the check pends its interrupt again, so WFI returns at once.
        uart.clear_rx_pending();
        SCB::clear_pendst();
        wrapped = cp.SYST.has_wrapped();
        if !wrapped && !uart.rx_full() {
            cortex_m::asm::wfi();
        }
    }
}
