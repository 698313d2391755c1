//! A long-lived monitor gives back the memory its start needed.
//!
//! A detached container's monitor is a fork of the `run -d` command: once the container
//! runs, it only relays output and waits, but it keeps what the start touched. Most of its
//! resident size is the binary's code, faulted in 64 KiB at a time (the kernel maps the pages
//! around each fault, "fault-around"), for image, spec and mount work it will not do again.
//! [`shed`], called once the relay loop is about to wait, drops those pages from its page
//! tables (`madvise(MADV_DONTNEED)`: clean file pages, read again from the page cache when
//! touched), so only what the relay then runs comes back (still 64 KiB around each fault);
//! it also returns the free heap (`malloc_trim`) and the stack below the current frame. The
//! relocated read-only data of the position-independent binary (`.data.rel.ro`) is anonymous
//! memory and stays.
//!
//! Untraced: this is the monitor's own memory, not the container's.

/// Give back what the monitor does not need to relay and wait (see the module).
pub fn shed() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let here = &smaps as *const String as usize;
    let mut regions: Vec<(usize, usize)> = Vec::new();
    let mut current: Option<(usize, usize, String, bool)> = None;
    let mut anonymous = 0u64;
    let done = |m: Option<(usize, usize, String, bool)>, anon: u64, out: &mut Vec<_>| {
        let Some((start, end, perms, file)) = m else {
            return;
        };
        // Only clean file pages (no copy-on-write page of their own, resident or swapped out:
        // a relocated page of `.data.rel.ro` that went to swap counts under `Swap:`, not
        // `Anonymous:`, and dropping it would read the unrelocated bytes back from the file):
        // dropped, they read the same again. Never data (relocated, written) nor anything
        // writable.
        if file && anon == 0 && (perms == "r-xp" || perms == "r--p") {
            out.push((start, end));
        }
    };
    let mut stack = None;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                done(current.take(), anonymous, &mut regions);
                anonymous = 0;
                let perms = words.next().unwrap_or("").to_string();
                let inode = words.nth(2).unwrap_or("0");
                let name = words.next().unwrap_or("");
                if name == "[stack]" {
                    stack = Some(a);
                }
                current = Some((a, b, perms, inode != "0"));
                continue;
            }
        }
        // Copy-on-write pages of the mapping, in memory (`Anonymous:`) or in swap (`Swap:`):
        // either makes it not a clean file mapping. Unreadable counts as some.
        if first == "Anonymous:" || first == "Swap:" {
            anonymous += words
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(1);
        }
    }
    done(current.take(), anonymous, &mut regions);
    drop(smaps);
    for (start, end) in regions {
        // SAFETY: the range is a whole mapping of clean, read-only file pages of this process
        // (checked above): MADV_DONTNEED only drops their page table entries, and the next
        // touch reads the same bytes from the file.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
    // The stack part holds for a process of one thread only: `[stack]` is the main thread's,
    // and `here` must lie in it.
    let one_thread = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.split_whitespace().eq(["Threads:", "1"]))
    });
    if let Some(low) = stack.filter(|_| one_thread) {
        // The stack below this frame, less a margin for the calls still to come from here,
        // is not in use: its pages are freed and come back zeroed if it grows again.
        let page = 4096;
        let top = here.saturating_sub(64 << 10) & !(page - 1);
        if top > low {
            // SAFETY: [low, top) lies in this thread's stack mapping, below the current frame
            // and a 64 KiB margin: no live data is there.
            unsafe { libc::madvise(low as *mut libc::c_void, top - low, libc::MADV_DONTNEED) };
        }
    }
    // SAFETY: returns free heap memory to the kernel; no allocation is touched.
    unsafe { libc::malloc_trim(0) };
}
