//! Fault injection for tests: `DOCKLING_FAULT=<point>` makes the engine SIGKILL itself when it
//! reaches the step of that name, so a test can stop a command at an exact point (after
//! `rmi` renamed a layer away, say) instead of racing a `kill -9` against a timer.
//!
//! Only debug builds read the variable (`cfg!(debug_assertions)`): a release binary ignores
//! it, so no environment can make a production engine kill itself.

/// Stop here, as `kill -9` would, when `DOCKLING_FAULT` names `name` (debug builds only).
/// SIGKILL (not `abort`, not `exit`) so nothing runs after it: no destructor, no unwinding,
/// no flush, exactly what the failure the tests reproduce left behind.
pub fn point(name: &str) {
    if !cfg!(debug_assertions) {
        return;
    }
    if std::env::var_os("DOCKLING_FAULT").is_some_and(|v| v == name) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
