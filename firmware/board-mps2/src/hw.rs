//! MPS2 AN386 register access. Every `unsafe` in the firmware is in `rd`/`wr` below.
use core::convert::Infallible;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use embedded_hal::digital::{ErrorType as PinErrorType, InputPin, OutputPin};

const UART0: usize = 0x4000_4000;
const GPIO0: usize = 0x4001_0000;
const FPGAIO_LED: usize = 0x4002_8000;

/// Only these MMIO words are ever accessed.
#[derive(Clone, Copy)]
#[repr(usize)]
enum Reg {
    UartData = UART0,
    UartState = UART0 + 0x4,
    UartCtrl = UART0 + 0x8,
    UartIntClear = UART0 + 0xC,
    UartBaudDiv = UART0 + 0x10,
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

#[derive(Clone, Copy)]
struct Irq(u16);
// SAFETY: 0 is a valid external interrupt number on this board (UART0 RX).
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}
const UART0_RX_IRQ: Irq = Irq(0);

/// CMSDK APB UART0.
pub struct Uart;

impl Uart {
    /// 115200 8N1 (QEMU ignores the UART until BAUDDIV >= 16), TX+RX+RX interrupt enabled.
    pub fn init() -> Self {
        wr(Reg::UartBaudDiv, 25_000_000 / 115_200);
        wr(Reg::UartCtrl, 0b1011);
        // Dummy read: makes QEMU poll its chardev now (else the first byte can wait ~1 s).
        let _ = rd(Reg::UartData);
        // SAFETY: PRIMASK is set by the caller, so unmasking only lets the IRQ pend and wake WFI;
        // no handler runs and no critical section is broken.
        unsafe { NVIC::unmask(UART0_RX_IRQ) };
        Uart
    }

    /// A received byte is waiting.
    pub fn rx_full(&self) -> bool {
        rd(Reg::UartState) & 0b10 != 0
    }

    /// Clear the RX interrupt in the UART and the NVIC.
    pub fn clear_rx_pending(&mut self) {
        wr(Reg::UartIntClear, 0b10);
        NVIC::unpend(UART0_RX_IRQ);
    }
}

impl embedded_io::ErrorType for Uart {
    type Error = Infallible;
}

impl embedded_io::ReadReady for Uart {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(self.rx_full())
    }
}

impl embedded_io::Read for Uart {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let Some(first) = buf.first_mut() else {
            return Ok(0);
        };
        while !self.rx_full() {
            cortex_m::asm::wfi();
            self.clear_rx_pending();
        }
        *first = rd(Reg::UartData) as u8;
        Ok(1)
    }
}

impl embedded_io::Write for Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &b in buf {
            while rd(Reg::UartState) & 1 != 0 {}
            wr(Reg::UartData, u32::from(b));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Shadow of GPIO0 DATAOUT (QEMU reads the unimplemented block as 0).
static GPIO_SHADOW: AtomicU32 = AtomicU32::new(0);

/// One GPIO0 output bit.
pub struct GpioOut(u32);

impl GpioOut {
    /// Enable bit `bit` as an output, driven low.
    pub fn new(bit: u32) -> Self {
        let mut p = GpioOut(1 << bit);
        let _ = p.set_low();
        wr(Reg::GpioOutEnSet, p.0);
        p
    }
}

impl PinErrorType for GpioOut {
    type Error = Infallible;
}

impl OutputPin for GpioOut {
    fn set_low(&mut self) -> Result<(), Infallible> {
        let v = GPIO_SHADOW.load(Ordering::Relaxed) & !self.0;
        GPIO_SHADOW.store(v, Ordering::Relaxed);
        wr(Reg::GpioDataOut, v);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        let v = GPIO_SHADOW.load(Ordering::Relaxed) | self.0;
        GPIO_SHADOW.store(v, Ordering::Relaxed);
        wr(Reg::GpioDataOut, v);
        Ok(())
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

static DOOR_CLOSED: AtomicBool = AtomicBool::new(true);
static ESTOP_OK: AtomicBool = AtomicBool::new(true);

/// Set the simulated inputs (only reachable in a `sim-inputs` build).
pub fn set_sim_inputs(door_closed: bool, estop_ok: bool) {
    DOOR_CLOSED.store(door_closed, Ordering::Relaxed);
    ESTOP_OK.store(estop_ok, Ordering::Relaxed);
}

/// Door interlock input (high = closed).
pub struct Door;
/// E-stop loop input (high = intact, not pressed).
pub struct EStop;

impl PinErrorType for Door {
    type Error = Infallible;
}
impl InputPin for Door {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(DOOR_CLOSED.load(Ordering::Relaxed))
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!DOOR_CLOSED.load(Ordering::Relaxed))
    }
}
impl PinErrorType for EStop {
    type Error = Infallible;
}
impl InputPin for EStop {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(ESTOP_OK.load(Ordering::Relaxed))
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!ESTOP_OK.load(Ordering::Relaxed))
    }
}
