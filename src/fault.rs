//! Fault injection for the crash and panic tests: with `NETSEC_FAULT=<point>` in the
//! environment, the process dies by SIGKILL (or a handler panics) when it reaches that
//! point, as an operator's `kill -9` or a bug would. Without the variable nothing happens;
//! the check is one environment lookup per point, on paths that run once per command or
//! request.

/// The point named by `NETSEC_FAULT`, if any.
fn armed(point: &str) -> bool {
    std::env::var("NETSEC_FAULT").is_ok_and(|v| v == point)
}

/// Die here (SIGKILL: no destructor, no flush, nothing cleaned up) if `point` is armed.
pub fn kill_point(point: &str) {
    if armed(point) {
        eprintln!("NETSEC_FAULT: killed at {point}");
        // SAFETY: getpid and kill have no preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Panic here if `point` is armed.
pub fn panic_point(point: &str) {
    if armed(point) {
        panic!("NETSEC_FAULT: panic injected at {point}");
    }
}
