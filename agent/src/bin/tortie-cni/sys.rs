//! The forwarder's operating-system layer without libc (x86_64 Linux, the
//! `nolibc` feature): the process entry `_start`, raw system calls, the
//! panic handler and the memory functions the compiler emits calls to.
//! Every `unsafe` of the no-libc build is here.
//!
//! Data flow: the kernel enters `_start` with `rsp` at `argc`; `_start`
//! passes that pointer to [`entry`], which walks `argv` to `envp` and hands
//! the environment (`NAME=VALUE` C strings, in envp order) to
//! `crate::forward`, then exits with its code. Only these system calls are
//! made: read, write, socket, setsockopt, connect, sendto (with
//! `MSG_NOSIGNAL`: a closed agent socket is an `EPIPE` error, not a
//! `SIGPIPE` that would kill the plugin before it prints its CNI error),
//! close, exit_group.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::Errno;

const SYS_READ: usize = 0;
const SYS_WRITE: usize = 1;
const SYS_CLOSE: usize = 3;
const SYS_SOCKET: usize = 41;
const SYS_CONNECT: usize = 42;
const SYS_SENDTO: usize = 44;
const SYS_SETSOCKOPT: usize = 54;
const SYS_EXIT_GROUP: usize = 231;

const AF_UNIX: usize = 1;
const SOCK_STREAM: usize = 1;
const SOCK_CLOEXEC: usize = 0o2000000;
const SOL_SOCKET: usize = 1;
const SO_RCVTIMEO: usize = 20;
const SO_SNDTIMEO: usize = 21;
const MSG_NOSIGNAL: usize = 0x4000;
const EINTR: i32 = 4;

core::arch::global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym entry,
);

/// Called by `_start` with the initial stack pointer: `argc`, then `argc`
/// argument pointers and a null, then the environment pointers and a null
/// (System V x86_64 ABI, "Process Initialization").
extern "C" fn entry(sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack layout (above): `sp` points at
    // argc, followed by argc + 1 argv words; envp starts right after.
    let envp = unsafe { sp.add(1 + *sp + 1) } as *const *const u8;
    let env = Env { next: envp };
    exit(crate::forward(env, buffer()))
}

/// The environment, as `NAME=VALUE` byte strings in envp order.
struct Env {
    next: *const *const u8,
}

impl Iterator for Env {
    type Item = &'static [u8];
    fn next(&mut self) -> Option<&'static [u8]> {
        // SAFETY: `next` walks the null-terminated envp array the kernel
        // built; each entry is a NUL-terminated string that lives (unchanged,
        // nothing here writes it) until the process exits.
        unsafe {
            let p = *self.next;
            if p.is_null() {
                return None;
            }
            self.next = self.next.add(1);
            // Volatile reads: LLVM would turn this loop into a call to
            // `strlen`, which nothing here provides.
            let mut n = 0;
            while p.add(n).read_volatile() != 0 {
                n += 1;
            }
            Some(core::slice::from_raw_parts(p, n))
        }
    }
}

/// The one request/response buffer (in `.bss`: the kernel maps zero pages
/// on first touch, so only what a call uses costs page faults).
static mut BUFFER: [u8; crate::BUFFER_LEN] = [0; crate::BUFFER_LEN];
static TAKEN: AtomicBool = AtomicBool::new(false);

fn buffer() -> &'static mut [u8] {
    if TAKEN.swap(true, Ordering::Relaxed) {
        exit(70);
    }
    // SAFETY: the flag above hands out this one mutable reference once.
    unsafe { &mut *core::ptr::addr_of_mut!(BUFFER) }
}

fn syscall6(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: a Linux x86_64 system call: number in rax, arguments in rdi,
    // rsi, rdx, r10, r8, r9; the kernel clobbers rcx and r11. Callers pass
    // pointers to live buffers of the lengths they give.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

/// A call's result: the kernel returns -errno in [-4095, -1].
fn check(ret: isize) -> Result<usize, Errno> {
    if (-4095..0).contains(&ret) {
        Err(Errno(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// One system call, retried on `EINTR`.
fn call(n: usize, a: [usize; 6]) -> Result<usize, Errno> {
    loop {
        match check(syscall6(n, a)) {
            Err(Errno(EINTR)) => continue,
            r => return r,
        }
    }
}

/// `read(2)` on stdin.
pub fn read_stdin(buf: &mut [u8]) -> Result<usize, Errno> {
    call(SYS_READ, [0, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0])
}

/// Writes all of `buf` to stdout.
pub fn write_stdout(mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        let n = call(SYS_WRITE, [1, buf.as_ptr() as usize, buf.len(), 0, 0, 0])?;
        buf = buf.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// `exit_group(2)`.
pub fn exit(code: i32) -> ! {
    syscall6(SYS_EXIT_GROUP, [code as usize, 0, 0, 0, 0, 0]);
    loop {
        core::hint::spin_loop();
    }
}

/// A connected unix stream socket, closed on drop.
pub struct Conn(usize);

impl Conn {
    /// `socket`, both timeouts, `connect` to `path` (the caller checked it
    /// fits `sun_path` with its NUL and holds no NUL).
    pub fn connect(path: &[u8], timeout_secs: u64) -> Result<Conn, Errno> {
        let fd = call(
            SYS_SOCKET,
            [AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, 0, 0, 0],
        )?;
        let conn = Conn(fd);
        let tv = [timeout_secs, 0u64]; // struct timeval
        for opt in [SO_RCVTIMEO, SO_SNDTIMEO] {
            call(
                SYS_SETSOCKOPT,
                [fd, SOL_SOCKET, opt, tv.as_ptr() as usize, 16, 0],
            )?;
        }
        // struct sockaddr_un: sa_family_t (u16), then sun_path[108].
        let mut addr = [0u8; 110];
        addr[0] = AF_UNIX as u8;
        if let Some(dst) = addr.get_mut(2..2 + path.len()) {
            dst.copy_from_slice(path);
        }
        let len = 2 + path.len() + 1;
        call(
            SYS_CONNECT,
            [fd, addr.as_ptr() as usize, len.min(addr.len()), 0, 0, 0],
        )?;
        Ok(conn)
    }

    /// Sends all of `buf`.
    pub fn send_all(&mut self, mut buf: &[u8]) -> Result<(), Errno> {
        while !buf.is_empty() {
            let n = call(
                SYS_SENDTO,
                [self.0, buf.as_ptr() as usize, buf.len(), MSG_NOSIGNAL, 0, 0],
            )?;
            buf = buf.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    /// One `read(2)`; 0 at end of stream.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        call(
            SYS_READ,
            [self.0, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = call(SYS_CLOSE, [self.0, 0, 0, 0, 0, 0]);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let _ = write_stdout(crate::PANIC_JSON);
    exit(1)
}

// The memory functions the compiler calls (no libc provides them here).
// Written with `rep movsb`/`rep stosb` or as plain loops over volatile
// accesses, so the compiler cannot turn them back into calls to themselves.

/// # Safety
/// `dst` and `src` valid for `n` bytes and not overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract above; `rep movsb` copies rcx bytes
    // forwards from rsi to rdi (the direction flag is clear per the ABI).
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
    dst
}

/// # Safety
/// `dst` and `src` valid for `n` bytes; they may overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: `dst` is below `src` or past its end: a forward copy
        // never overwrites a byte before reading it.
        return unsafe { memcpy(dst, src, n) };
    }
    let mut i = n;
    while i > 0 {
        i -= 1;
        // SAFETY: i < n; backwards, as `dst` overlaps the end of `src`.
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
    }
    dst
}

/// # Safety
/// `dst` valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; `rep stosb` stores al rcx times at rdi.
    unsafe {
        core::arch::asm!(
            "rep stosb",
            inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8,
            options(nostack, preserves_flags)
        );
    }
    dst
}

/// # Safety
/// `a` and `b` valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: i < n, the caller's contract.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// # Safety
/// `a` and `b` valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the same contract as memcmp's.
    unsafe { memcmp(a, b, n) }
}
