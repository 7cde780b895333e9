//! Wiping what r4-exec no longer needs from memory it owns.
//!
//! In supervisor mode r4-exec outlives the moment COMMAND starts, and its
//! memory can be read by root (or, were it dumpable, by its user) through
//! `/proc/PID/mem` or a core file. It keeps a value only while a feature
//! needs it (`--watch` compares, `--mask` matches) and the API key only
//! while it will make another request (`--watch`); everything else must be
//! gone from its memory, not only out of reach of its code. Two places keep
//! bytes after their owner let go of them, and this module handles both:
//!
//! - **freed heap blocks**: `malloc` does not clear what it is given back.
//!   Our own secret types zeroize on drop, but the copies other crates make
//!   (the HTTP client's header map and request buffers, `serde_json`'s
//!   strings, a `Vec` that grew and moved) are freed as they are.
//!   [`ZeroOnFree`], the binary's global allocator, zeroes every block
//!   before it is freed, so a dropped copy is a wiped copy wherever it was
//!   made. (AWS-LC allocates with `malloc` itself, past this allocator; its
//!   `OPENSSL_free` clears every block it frees.)
//! - **the environment block**: the `NAME=value` strings the kernel placed
//!   on the initial stack at `execve(2)`, which `/proc/PID/environ` shows
//!   for the whole life of the process whatever the program does with its
//!   `environ` array. [`forget_env`] overwrites the values of r4-exec's
//!   credential variables ([`CREDENTIAL_VARS`]) there and removes them from
//!   the process environment.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{compiler_fence, Ordering};

use crate::vars;

/// r4-exec's own variables that hold a credential (not a path or a URL):
/// wiped from the environment block once read, unless `--keep-r4-env`
/// passes them on to COMMAND.
pub const CREDENTIAL_VARS: &[&str] = &[vars::API_KEY];

/// Overwrites `len` bytes at `ptr` with zeros in a way the compiler may not
/// remove. A plain `memset` right before `free` is a dead store an
/// optimizer is entitled to delete; glibc's and musl's `explicit_bzero` is
/// that `memset` (vectorised, a block of 1 MB in about 30 µs) behind a
/// barrier the compiler cannot see through. Elsewhere: volatile stores, 8
/// bytes at a time where aligned, then a fence (a quarter of the speed:
/// the wipe of every freed block was 4 % of a start at 10 000 items).
///
/// # Safety
///
/// `ptr` must be valid for writes of `len` bytes.
pub unsafe fn wipe_raw(ptr: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: the caller guarantees `len` writable bytes at `ptr`.
    unsafe {
        nix::libc::explicit_bzero(ptr.cast(), len)
    }
    #[cfg(not(target_os = "linux"))]
    // SAFETY: as above.
    unsafe {
        wipe_volatile(ptr, len)
    }
}

/// [`wipe_raw`] by volatile stores, where there is no `explicit_bzero`.
///
/// # Safety
///
/// As [`wipe_raw`].
#[cfg_attr(target_os = "linux", allow(dead_code))]
unsafe fn wipe_volatile(ptr: *mut u8, len: usize) {
    let mut i = 0;
    // SAFETY: every write is at ptr + i with i + its size <= len, which the
    // caller guarantees is writable; the u64 writes are at 8-aligned
    // addresses.
    unsafe {
        while i < len && !(ptr.add(i) as usize).is_multiple_of(8) {
            ptr.add(i).write_volatile(0);
            i += 1;
        }
        while len - i >= 8 {
            ptr.add(i).cast::<u64>().write_volatile(0);
            i += 8;
        }
        while i < len {
            ptr.add(i).write_volatile(0);
            i += 1;
        }
    }
    compiler_fence(Ordering::SeqCst);
}

/// The system allocator, except that every block is zeroed before it is
/// freed: the global allocator of the `r4-exec` binary (module
/// documentation says why).
///
/// `realloc` is deliberately left to [`GlobalAlloc`]'s default (allocate,
/// copy, [`dealloc`](GlobalAlloc::dealloc) the old block): the system's
/// `realloc` may move a block and free the old one without us seeing it.
/// The cost is one copy per growth, which a `Vec`'s doubling keeps linear.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZeroOnFree;

// SAFETY: allocation is `System`'s, unchanged; `dealloc` only writes zeros
// over the block it is about to give back, which the caller owns.
unsafe impl GlobalAlloc for ZeroOnFree {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated with `layout` by this allocator, so
        // it is valid for `layout.size()` bytes, and the caller gives it up.
        unsafe {
            wipe_raw(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
    }
}

/// Sets glibc malloc's heap parameters once, at the start of `main`,
/// before anything is allocated: fewer page faults and no `mmap`/`munmap`
/// per large block. Measured in BENCHMARKS.md ("Where a start's CPU goes"):
/// about 115 fewer page faults per start (100 secrets, 10 vaults).
///
/// - `M_MMAP_THRESHOLD` 32 MiB (glibc's maximum; 128 KiB by default, then
///   moving with what was freed): the answer's body, hyper's read buffer
///   and a `Vec` that grows past 128 KiB come from the heap instead of a
///   fresh mapping each, so the pages they leave are reused by what is
///   allocated next instead of being unmapped and faulted in anew.
/// - `M_TRIM_THRESHOLD` 32 MiB (128 KiB by default): the heap's top is not
///   handed back to the kernel after the body is freed, only to be grown
///   (and faulted) again while the answer is verified.
/// - `M_TOP_PAD` 2 MiB (128 KiB by default): the heap grows in a few `brk`
///   steps. Untouched pages cost nothing: the kernel maps a page when it
///   is first written, so this changes the number of `brk` calls only.
///
/// None of this changes what [`ZeroOnFree`] does: every block is still
/// zeroed before `free`, so the pages the heap keeps hold zeros, not
/// values. A supervisor keeps the heap at its high-water mark (a few MiB)
/// instead of trimming it. Not glibc (musl): nothing to tune.
pub fn tune_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::libc::{mallopt, M_MMAP_THRESHOLD, M_TOP_PAD, M_TRIM_THRESHOLD};
        const MMAP_THRESHOLD: i32 = 32 << 20;
        const TRIM_THRESHOLD: i32 = 32 << 20;
        const TOP_PAD: i32 = 2 << 20;
        // SAFETY: mallopt only sets malloc's parameters; it is called from
        // `main` before a second thread exists. A value it refuses (it
        // returns 0) leaves glibc's default, which is only slower.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            mallopt(M_TOP_PAD, TOP_PAD);
        }
    }
}

/// What [`forget_env`] did, for `-v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forgotten {
    /// Values overwritten in the environment block.
    pub wiped: usize,
    /// Whether the block could be located (`/proc/self/stat`, Linux 3.5+);
    /// without it the variables are only removed from the environment.
    pub block_found: bool,
}

/// Removes the variables `names` from the process environment and, first,
/// overwrites their values with zeros in the environment block the kernel
/// serves as `/proc/PID/environ`.
///
/// # Safety
///
/// No other thread may read or write the environment meanwhile: this
/// writes to the block behind the C library's back, and removes variables
/// (which edition 2024 makes `unsafe` for the same reason). r4-exec calls it
/// right after reading the API key, while it has one thread.
pub unsafe fn forget_env(names: &[&str]) -> Forgotten {
    let block = env_block();
    let wiped = match block {
        // SAFETY: [start, end) is this process's environment block, on the
        // initial stack, mapped read-write for the life of the process. No
        // Rust reference points into it (std copies values out of it), and
        // the caller guarantees no other thread touches the environment.
        Some((start, end)) => unsafe {
            wipe_values(
                std::slice::from_raw_parts_mut(start as *mut u8, end - start),
                names,
            )
        },
        None => 0,
    };
    for name in names {
        // Now "NAME=" followed by zeros; remove the entry from `environ`.
        std::env::remove_var(name);
    }
    Forgotten {
        wiped,
        block_found: block.is_some(),
    }
}

/// This process's environment block, `[env_start, env_end)`: fields 50 and
/// 51 of `/proc/self/stat` (Linux 3.5+).
fn env_block() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (start, end) = env_range(&stat)?;
    (start < end).then_some((start, end))
}

/// Fields 50 and 51 of a `/proc/PID/stat` line. The command name (field 2)
/// is in parentheses and may hold spaces and parentheses itself, so fields
/// are counted after the last `)`.
fn env_range(stat: &str) -> Option<(usize, usize)> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts at field 3.
    let mut fields = rest.split_whitespace().skip(50 - 3);
    let start = fields.next()?.parse().ok()?;
    let end = fields.next()?.parse().ok()?;
    Some((start, end))
}

/// Overwrites with zeros the value of every `NAME=value` entry of `block`
/// (NUL-separated, as the kernel lays it out) whose name is in `names`;
/// returns how many it wiped. Names and every other entry are untouched.
fn wipe_values(block: &mut [u8], names: &[&str]) -> usize {
    let mut wiped = 0;
    for entry in block.split_mut(|&b| b == 0) {
        let Some(eq) = entry.iter().position(|&b| b == b'=') else {
            continue;
        };
        if names.iter().any(|n| n.as_bytes() == &entry[..eq]) {
            let value = &mut entry[eq + 1..];
            // SAFETY: `value` is a live, exclusively borrowed slice.
            unsafe { wipe_raw(value.as_mut_ptr(), value.len()) };
            wiped += 1;
        }
    }
    wiped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_wipes_zero_every_byte_at_any_alignment() {
        let wipes: [unsafe fn(*mut u8, usize); 2] = [wipe_raw, wipe_volatile];
        let mut buf = [0xAAu8; 64];
        for wipe in wipes {
            for start in 0..9 {
                for len in [0, 1, 7, 8, 9, 23, 40] {
                    buf.fill(0xAA);
                    // SAFETY: start + len <= 49 < 64.
                    unsafe { wipe(buf.as_mut_ptr().add(start), len) };
                    assert!(buf[start..start + len].iter().all(|&b| b == 0));
                    assert!(buf[..start].iter().all(|&b| b == 0xAA), "before");
                    assert!(buf[start + len..].iter().all(|&b| b == 0xAA), "after");
                }
            }
        }
    }

    #[test]
    fn the_allocator_allocates_reallocates_and_frees() {
        let a = ZeroOnFree;
        let layout = Layout::from_size_align(100, 16).expect("layout");
        // SAFETY: a non-zero layout; the block is written within its size,
        // grown with the default realloc and freed once with its layout.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null() && (p as usize).is_multiple_of(16));
            p.write_bytes(7, 100);
            let q = a.realloc(p, layout, 1000);
            assert!(!q.is_null());
            assert!(std::slice::from_raw_parts(q, 100).iter().all(|&b| b == 7));
            a.dealloc(q, Layout::from_size_align(1000, 16).expect("layout"));
            let z = a.alloc_zeroed(layout);
            assert!(std::slice::from_raw_parts(z, 100).iter().all(|&b| b == 0));
            a.dealloc(z, layout);
        }
    }

    #[test]
    fn only_the_named_values_are_wiped() {
        let mut block =
            b"PATH=/bin\0R4_API_KEY=rk_a.secret\0R4_API_KEY_X=keep\0HOME=/root\0".to_vec();
        assert_eq!(wipe_values(&mut block, &["R4_API_KEY"]), 1);
        let mut expected = b"PATH=/bin\0R4_API_KEY=".to_vec();
        expected.extend([0u8; 11]);
        expected.extend(b"\0R4_API_KEY_X=keep\0HOME=/root\0");
        assert_eq!(block, expected);
    }

    #[test]
    fn a_value_holding_equals_signs_is_wiped_whole() {
        let mut block = b"R4_API_KEY=a=b=c\0".to_vec();
        assert_eq!(wipe_values(&mut block, &["R4_API_KEY"]), 1);
        assert_eq!(block, b"R4_API_KEY=\0\0\0\0\0\0");
        let mut none = b"NOEQUALS\0\0X=1".to_vec();
        assert_eq!(wipe_values(&mut none, &["R4_API_KEY"]), 0);
        assert_eq!(none, b"NOEQUALS\0\0X=1");
    }

    #[test]
    fn the_env_range_is_fields_50_and_51_after_the_name() {
        let mut fields: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        fields[50 - 3] = "140737488347000".into();
        fields[51 - 3] = "140737488349000".into();
        let line = format!("1234 (a (weird) name) {}\n", fields.join(" "));
        assert_eq!(
            env_range(&line),
            Some((140_737_488_347_000, 140_737_488_349_000))
        );
        assert_eq!(env_range("1 (short) S 0"), None);
    }

    #[test]
    fn this_process_has_an_environment_block() {
        let (start, end) = env_block().expect("Linux 3.5+ with /proc");
        assert!(start < end);
    }
}
