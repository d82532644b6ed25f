//! MPS2 AN386 register access and the interrupt-side safety functions. Every `unsafe` in the
//! firmware is in this file.
//!
//! Memory map used (QEMU `mps2-an386`, `info mtree`):
//! * `0x4000_0000` CMSDK APB timer 0: free-running 25 MHz down-counter, the clock.
//! * `0x4000_2000` CMSDK APB dual timer, timer 1 (IRQ 10): the one-shot hardware pulse limit.
//! * `0x4000_4000` CMSDK APB UART0 (RX IRQ 0): the host link.
//! * `0x4000_8000` CMSDK APB watchdog: first expiry → NMI, second → system reset.
//! * `0x4001_0000` CMSDK AHB GPIO0: bit 0 output = relay; inputs bit 1 door (high = closed),
//!   bit 2 e-stop loop (high = intact), bit 3 feedback contact (high = coil off: the force-guided
//!   NC auxiliary contact is closed), bit 4 local reset (high = pressed). QEMU does not model this
//!   block (reads return 0, writes are visible with `-trace memory_region_ops_write`).
//! * `0x4002_8000` FPGAIO LED register: bay LEDs 0 and 1.
use core::convert::Infallible;
use core::mem::MaybeUninit;
use core::ptr::{addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use embedded_hal::digital::{ErrorType as PinErrorType, InputPin, OutputPin, StatefulOutputPin};
use lethe_fw_logic::reset::{self, Recorded, Words};
use lethe_fw_logic::ring::ByteRing;
use lethe_fw_logic::SimContact;

/// Timer and UART clock.
pub const PCLK_HZ: u32 = 25_000_000;
/// Counter ticks per millisecond.
pub const TICKS_PER_MS: u32 = PCLK_HZ / 1_000;

const TIMER0: usize = 0x4000_0000;
const DUALTIMER: usize = 0x4000_2000;
const UART0: usize = 0x4000_4000;
const WATCHDOG: usize = 0x4000_8000;
const GPIO0: usize = 0x4001_0000;
const FPGAIO_LED: usize = 0x4002_8000;

/// Only these MMIO words are ever accessed.
#[derive(Clone, Copy)]
#[repr(usize)]
enum Reg {
    Timer0Ctrl = TIMER0,
    Timer0Value = TIMER0 + 0x4,
    Timer0Reload = TIMER0 + 0x8,
    Timer1Load = DUALTIMER,
    Timer1Control = DUALTIMER + 0x8,
    Timer1IntClr = DUALTIMER + 0xC,
    UartData = UART0,
    UartState = UART0 + 0x4,
    UartCtrl = UART0 + 0x8,
    UartIntClear = UART0 + 0xC,
    UartBaudDiv = UART0 + 0x10,
    WdogLoad = WATCHDOG,
    WdogControl = WATCHDOG + 0x8,
    WdogIntClr = WATCHDOG + 0xC,
    WdogLock = WATCHDOG + 0xC00,
    GpioData = GPIO0,
    GpioDataOut = GPIO0 + 0x4,
    GpioOutEnSet = GPIO0 + 0x10,
    FpgaLed = FPGAIO_LED,
}

fn rd(r: Reg) -> u32 {
    // SAFETY: `r` is one of the fixed, 4-byte-aligned MMIO registers of the MPS2 AN386 memory map
    // listed in `Reg`; reading them has no memory-safety effect on Rust data.
    unsafe { read_volatile(r as usize as *const u32) }
}

fn wr(r: Reg, v: u32) {
    // SAFETY: as in `rd`: a fixed, aligned device register, not memory Rust owns.
    unsafe { write_volatile(r as usize as *mut u32, v) }
}

// The relay output is cleared before RAM initialisation, as the very first thing after any reset.
// On silicon GPIO0 resets to DATAOUT = 0 with the pin an input (so the board's pull-down holds
// the relay driver off until `Relay::new` enables the output); this write makes the low level
// explicit (and visible in QEMU's trace) even before `main`. It touches no RAM and no stack.
core::arch::global_asm!(
    ".section .text.__pre_init,\"ax\",%progbits",
    ".global __pre_init",
    ".type __pre_init,%function",
    ".thumb_func",
    "__pre_init:",
    "ldr r0, =0x40010004",
    "movs r1, #0",
    "str r1, [r0]",
    "bx lr",
    ".ltorg",
);

// ---------------------------------------------------------------------------------------------
// Relay, pulse limit, reset record: also used from interrupt, NMI, fault and panic context.

/// Shadow of GPIO0 DATAOUT (only bit 0, the relay, is an output).
static RELAY_SHADOW: AtomicBool = AtomicBool::new(false);
/// The pulse-limit window: the relay may go high only while it is open.
static PULSE_OPEN: AtomicBool = AtomicBool::new(false);
/// The pulse-limit interrupt dropped the relay.
static PULSE_TRIPPED: AtomicBool = AtomicBool::new(false);

/// Drop the relay now. Callable from any context.
pub fn relay_off_now() {
    wr(Reg::GpioDataOut, 0);
    RELAY_SHADOW.store(false, Ordering::SeqCst);
}

/// Relay high, unless the pulse-limit window is closed. The check and the write happen with
/// interrupts masked, so the pulse-limit interrupt cannot fall between them (an NMI can, and never
/// returns).
fn relay_on_if_open() {
    cortex_m::interrupt::free(|_| {
        if PULSE_OPEN.load(Ordering::SeqCst) {
            RELAY_SHADOW.store(true, Ordering::SeqCst);
            wr(Reg::GpioDataOut, 1);
        }
    });
}

/// Start the one-shot pulse limit (dual timer 1, 32-bit, prescale 1, interrupt enabled).
pub fn pulse_limit_start(ms: u32) {
    wr(Reg::Timer1Control, 0);
    wr(Reg::Timer1IntClr, 1);
    wr(Reg::Timer1Load, ms.saturating_mul(TICKS_PER_MS));
    PULSE_TRIPPED.store(false, Ordering::SeqCst);
    PULSE_OPEN.store(true, Ordering::SeqCst);
    wr(Reg::Timer1Control, 0x80 | 0x20 | 0x02 | 0x01);
}

/// Stop the pulse limit and close the window.
pub fn pulse_limit_stop() {
    PULSE_OPEN.store(false, Ordering::SeqCst);
    wr(Reg::Timer1Control, 0);
    wr(Reg::Timer1IntClr, 1);
    NVIC::unpend(DUALTIMER_IRQ);
}

/// Read and clear "the pulse-limit interrupt dropped the relay".
pub fn pulse_limit_tripped() -> bool {
    PULSE_TRIPPED.swap(false, Ordering::SeqCst)
}

/// The pulse-limit interrupt: relay low first, then bookkeeping.
fn on_pulse_limit() {
    let was_on = RELAY_SHADOW.load(Ordering::SeqCst);
    PULSE_OPEN.store(false, Ordering::SeqCst);
    relay_off_now();
    if was_on {
        PULSE_TRIPPED.store(true, Ordering::SeqCst);
    }
    wr(Reg::Timer1IntClr, 1);
    wr(Reg::Timer1Control, 0);
}

#[link_section = ".uninit.LETHE_RESET"]
static mut RESET_RECORD: MaybeUninit<Words> = MaybeUninit::uninit();

fn record_words() -> *mut u32 {
    // Only the address of the static is taken; no reference is created.
    addr_of_mut!(RESET_RECORD) as *mut u32
}

fn read_record() -> Words {
    let p = record_words();
    // SAFETY: `RESET_RECORD` is four aligned words of RAM in `.uninit`, which the startup code
    // neither loads nor zeroes, so it keeps whatever the last run (or power-on noise) left. It is
    // read with volatile word accesses like device memory, and `reset::boot` rejects any pattern
    // whose check word does not match. Single core: the handlers that write it never return.
    unsafe { [0, 1, 2, 3].map(|i| read_volatile(p.add(i))) }
}

fn write_record(w: Words) {
    let p = record_words();
    for (i, v) in w.into_iter().enumerate() {
        // SAFETY: as in `read_record`: the four words of the static, volatile word writes.
        unsafe { write_volatile(p.add(i), v) };
    }
}

/// At boot: the reset cause and boot count; the record is rewritten as "running".
pub fn boot_record() -> (lethe_fw_logic::ResetCause, u32) {
    let (cause, boots, running) = reset::boot(read_record());
    write_record(running);
    (cause, boots)
}

/// Record why the controller is about to reset (the first cause recorded stays).
pub fn record_cause(cause: Recorded) {
    write_record(reset::record(read_record(), cause));
}

// ---------------------------------------------------------------------------------------------
// Interrupts.

#[derive(Clone, Copy)]
struct Irq(u16);
// SAFETY: 0 (UART0 RX) and 10 (dual timer) are valid external interrupt numbers on this board.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}
const UART0_RX_IRQ: Irq = Irq(0);
const DUALTIMER_IRQ: Irq = Irq(10);

/// Bytes received by the UART interrupt, consumed by the main loop.
static RX: ByteRing<256> = ByteRing::new();

/// External interrupts (no device crate: cortex-m-rt routes them all to `DefaultHandler`).
pub fn on_irq(irqn: i16) {
    match irqn {
        10 => on_pulse_limit(),
        0 => {
            // Clear first, then drain: a byte landing after the last check raises the interrupt
            // again instead of sitting unseen (QEMU delivers no more input until it is read).
            wr(Reg::UartIntClear, 0b10);
            while uart_rx_full() {
                RX.push(rd(Reg::UartData) as u8);
            }
        }
        _ => {
            // Nothing else is enabled: an unexpected interrupt is a fault.
            relay_off_now();
            record_cause(Recorded::HardFault);
            cortex_m::peripheral::SCB::sys_reset();
        }
    }
}

/// Unmask the interrupts the firmware uses, the pulse limit above the UART, then enable
/// interrupts.
pub fn enable_interrupts(nvic: &mut NVIC) {
    // SAFETY: priorities are set before the interrupts are unmasked and before PRIMASK is cleared,
    // so no handler runs while they change; no critical section relies on priority masking.
    unsafe {
        nvic.set_priority(DUALTIMER_IRQ, 0x00);
        nvic.set_priority(UART0_RX_IRQ, 0x80);
        NVIC::unmask(DUALTIMER_IRQ);
        NVIC::unmask(UART0_RX_IRQ);
        cortex_m::interrupt::enable();
    }
}

/// Sleep until an interrupt, unless received bytes are already waiting. The check and the WFI run
/// with interrupts masked (WFI still wakes on a pending interrupt), so a byte arriving between them
/// cannot be slept through.
pub fn idle() {
    cortex_m::interrupt::free(|_| {
        if uart_rx_full() {
            // A byte without its interrupt: have the handler take it (belt and braces).
            NVIC::pend(UART0_RX_IRQ);
        } else if RX.is_empty() {
            cortex_m::asm::wfi();
        }
    });
}

fn uart_rx_full() -> bool {
    rd(Reg::UartState) & 0b10 != 0
}

// ---------------------------------------------------------------------------------------------
// Clock and watchdog.

/// Start timer 0 as a free-running counter (reload 0xFFFF_FFFF: one wrap every ~172 s).
pub fn clock_start() {
    wr(Reg::Timer0Ctrl, 0);
    wr(Reg::Timer0Reload, u32::MAX);
    wr(Reg::Timer0Ctrl, 1);
}

/// Timer 0's counter (counts down).
pub fn ticks() -> u32 {
    rd(Reg::Timer0Value)
}

/// Milliseconds since boot from the free-running counter; never loses time however long a loop
/// pass takes, as long as it is read once per wrap (the watchdog guarantees that).
pub struct Clock {
    last: u32,
    total: u64,
}

impl Clock {
    /// Start counting from now.
    pub fn new() -> Self {
        Self {
            last: ticks(),
            total: 0,
        }
    }

    /// Milliseconds since [`Clock::new`] (wraps after ~49 days).
    pub fn now_ms(&mut self) -> u32 {
        let t = ticks();
        self.total += u64::from(self.last.wrapping_sub(t));
        self.last = t;
        (self.total / u64::from(TICKS_PER_MS)) as u32
    }
}

const WDOG_UNLOCK: u32 = 0x1ACC_E551;

/// Start the watchdog: NMI after `ms`, system reset after another `ms` without a kick.
pub fn watchdog_start(ms: u32) {
    wr(Reg::WdogLock, WDOG_UNLOCK);
    wr(Reg::WdogLoad, ms.saturating_mul(TICKS_PER_MS));
    wr(Reg::WdogControl, 0b11);
    wr(Reg::WdogLock, 0);
}

/// Restart the watchdog's count.
pub fn watchdog_kick() {
    wr(Reg::WdogLock, WDOG_UNLOCK);
    wr(Reg::WdogIntClr, 1);
    wr(Reg::WdogLock, 0);
}

// ---------------------------------------------------------------------------------------------
// UART0.

/// Longest a transmit waits for the UART before giving the reply up (~23 byte times at 115200).
const TX_TIMEOUT_TICKS: u32 = 2 * TICKS_PER_MS;

/// CMSDK APB UART0: receive through the interrupt ring, transmit with a bounded wait.
pub struct Uart {
    /// A transmit timed out and the UART has not drained since.
    tx_stuck: bool,
}

impl Uart {
    /// 115200 8N1 (QEMU ignores the UART until BAUDDIV >= 16), TX, RX and RX interrupt enabled.
    pub fn init() -> Self {
        wr(Reg::UartBaudDiv, PCLK_HZ / 115_200);
        wr(Reg::UartCtrl, 0b1011);
        // Dummy read: makes QEMU poll its chardev now (else the first byte can wait ~1 s).
        let _ = rd(Reg::UartData);
        Uart { tx_stuck: false }
    }

    fn tx_full() -> bool {
        rd(Reg::UartState) & 1 != 0
    }

    /// Wait for room in the transmit register, at most `TX_TIMEOUT_TICKS`.
    fn tx_room(&mut self) -> bool {
        if !Self::tx_full() {
            return true;
        }
        if self.tx_stuck {
            return false;
        }
        let start = ticks();
        while Self::tx_full() {
            if start.wrapping_sub(ticks()) > TX_TIMEOUT_TICKS {
                self.tx_stuck = true;
                return false;
            }
        }
        true
    }
}

/// The host stopped draining the link: the reply was dropped (the host retransmits).
#[derive(Debug, Clone, Copy)]
pub struct TxTimeout;

impl core::fmt::Display for TxTimeout {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("UART transmit timed out")
    }
}
impl core::error::Error for TxTimeout {}
impl embedded_io::Error for TxTimeout {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::TimedOut
    }
}

impl embedded_io::ErrorType for Uart {
    type Error = TxTimeout;
}

impl embedded_io::ReadReady for Uart {
    fn read_ready(&mut self) -> Result<bool, TxTimeout> {
        Ok(!RX.is_empty())
    }
}

impl embedded_io::Read for Uart {
    /// Never blocks: returns 0 bytes when nothing is queued (callers check `read_ready`).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TxTimeout> {
        let mut n = 0;
        for slot in buf.iter_mut() {
            match RX.pop() {
                Some(b) => {
                    *slot = b;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(n)
    }
}

impl embedded_io::Write for Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, TxTimeout> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.tx_stuck {
            if Self::tx_full() {
                return Err(TxTimeout);
            }
            // Drained again: a 0x00 first ends whatever partial frame is on the line.
            self.tx_stuck = false;
            wr(Reg::UartData, 0);
        }
        for (i, &b) in buf.iter().enumerate() {
            if !self.tx_room() {
                return if i == 0 { Err(TxTimeout) } else { Ok(i) };
            }
            wr(Reg::UartData, u32::from(b));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), TxTimeout> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Pins.

/// The relay output, GPIO0 bit 0.
pub struct Relay;

impl Relay {
    /// Drive the relay low, then enable the pin as an output.
    pub fn new() -> Self {
        relay_off_now();
        wr(Reg::GpioOutEnSet, 1);
        Relay
    }
}

impl PinErrorType for Relay {
    type Error = Infallible;
}

impl OutputPin for Relay {
    fn set_low(&mut self) -> Result<(), Infallible> {
        relay_off_now();
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        relay_on_if_open();
        Ok(())
    }
}

impl StatefulOutputPin for Relay {
    /// The pin's level. Production builds read the pad (GPIO0 DATA bit 0), so a driver stuck
    /// high shows; QEMU does not model GPIO0, so simulation builds read the shadow of what was
    /// written (the read-back is then tested on the host, with fake pins).
    fn is_set_high(&mut self) -> Result<bool, Infallible> {
        if cfg!(feature = "sim-inputs") {
            Ok(RELAY_SHADOW.load(Ordering::SeqCst))
        } else {
            Ok(rd(Reg::GpioData) & 1 != 0)
        }
    }
    fn is_set_low(&mut self) -> Result<bool, Infallible> {
        self.is_set_high().map(|h| !h)
    }
}

/// One FPGAIO user LED (QEMU models these and traces `led_change_intensity`).
pub struct FpgaLed(u32);

impl FpgaLed {
    /// LED `n` (0 or 1).
    pub fn new(n: u32) -> Self {
        FpgaLed(1 << n)
    }
}

impl PinErrorType for FpgaLed {
    type Error = Infallible;
}

impl OutputPin for FpgaLed {
    fn set_low(&mut self) -> Result<(), Infallible> {
        wr(Reg::FpgaLed, rd(Reg::FpgaLed) & !self.0);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        wr(Reg::FpgaLed, rd(Reg::FpgaLed) | self.0);
        Ok(())
    }
}

/// Simulated inputs (a `sim-inputs` build only; QEMU cannot drive input pins).
static SIM_DOOR_CLOSED: AtomicBool = AtomicBool::new(true);
static SIM_ESTOP_OK: AtomicBool = AtomicBool::new(true);
static SIM_RESET: AtomicBool = AtomicBool::new(false);
static SIM_CONTACT: AtomicU8 = AtomicU8::new(0);

/// Set the simulated inputs.
pub fn sim_inputs(door_closed: bool, estop_ok: bool, contact: SimContact, reset: bool) {
    SIM_DOOR_CLOSED.store(door_closed, Ordering::SeqCst);
    SIM_ESTOP_OK.store(estop_ok, Ordering::SeqCst);
    SIM_RESET.store(reset, Ordering::SeqCst);
    SIM_CONTACT.store(
        match contact {
            SimContact::Follows => 0,
            SimContact::StuckEnergized => 1,
            SimContact::StuckOff => 2,
        },
        Ordering::SeqCst,
    );
}

/// A GPIO0 input bit.
#[derive(Clone, Copy)]
pub enum Input {
    /// Bit 1, high = door closed.
    Door = 1,
    /// Bit 2, high = e-stop loop intact.
    EStop = 2,
    /// Bit 3, high = coil off (NC auxiliary contact closed).
    Contact = 3,
    /// Bit 4, high = local reset pressed.
    Reset = 4,
}

impl PinErrorType for Input {
    type Error = Infallible;
}

impl InputPin for Input {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        if !cfg!(feature = "sim-inputs") {
            return Ok(rd(Reg::GpioData) >> (*self as u32) & 1 != 0);
        }
        Ok(match self {
            Input::Door => SIM_DOOR_CLOSED.load(Ordering::SeqCst),
            Input::EStop => SIM_ESTOP_OK.load(Ordering::SeqCst),
            Input::Reset => SIM_RESET.load(Ordering::SeqCst),
            Input::Contact => {
                let energized = match SIM_CONTACT.load(Ordering::SeqCst) {
                    0 => RELAY_SHADOW.load(Ordering::SeqCst),
                    1 => true,
                    _ => false,
                };
                !energized
            }
        })
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|h| !h)
    }
}
