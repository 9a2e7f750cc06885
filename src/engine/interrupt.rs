//! Ctrl-C as the executor sees it: once, start nothing new and cut short the health wait
//! in flight so it is rolled back; the second time, stop at once (the command ends without
//! waiting for the run, which `unroot resume` continues).

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A flag set once (and a second one for "at once"), with a way to wait for each.
#[derive(Debug, Default)]
pub struct Interrupt {
    flag: AtomicBool,
    at_once: AtomicBool,
    notify: Notify,
}

impl Interrupt {
    /// The first Ctrl-C: start nothing new, roll back what is in flight.
    pub fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether [`Interrupt::set`] was called.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The second Ctrl-C: stop at once (the flag of [`Interrupt::set`] too).
    pub fn stop_at_once(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.at_once.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Resolves once the flag is set (at once if it is already).
    pub async fn wait(&self) {
        self.wait_for(&self.flag).await;
    }

    /// Resolves once [`Interrupt::stop_at_once`] was called.
    pub async fn stopped_at_once(&self) {
        self.wait_for(&self.at_once).await;
    }

    async fn wait_for(&self, flag: &AtomicBool) {
        loop {
            let notified = self.notify.notified();
            if flag.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}
