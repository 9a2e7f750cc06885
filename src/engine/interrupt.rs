//! Ctrl-C as the executor sees it: once, start nothing new and cut short the health wait
//! in flight so it is rolled back; the second time the CLI exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A flag set once, with a way to wait for it.
#[derive(Debug, Default)]
pub struct Interrupt {
    flag: AtomicBool,
    notify: Notify,
}

impl Interrupt {
    pub fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once the flag is set (at once if it is already).
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}
