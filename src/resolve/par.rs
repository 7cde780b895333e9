//! Spreading independent verifications over the cores.
//!
//! After the sync answer arrives, r4-exec's start-up is CPU: one RSA-OAEP
//! unwrap per vault and one RSA-PSS verification per wrapped key, summary and
//! item. These are independent of one another, so they run on scoped threads
//! (one per available core, the calling thread included). Threads are only
//! started when there is enough work to pay for them (`min_per_thread`), so a
//! one-vault, one-secret run stays on one thread, as does a process limited to
//! one CPU (`available_parallelism` honours affinity masks and cgroup quotas).
//! Results come back in input order, so what is reported does not depend on
//! scheduling.

use std::num::NonZeroUsize;
use std::thread;

/// Maps `f` over `items` on up to one thread per core, in input order.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    min_per_thread: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads_for(items.len(), min_per_thread);
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    thread::scope(|s| {
        let mut chunks = items.chunks(chunk);
        let first = chunks.next().unwrap_or(&[]);
        let handles: Vec<_> = chunks
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = first.iter().map(f).collect();
        for h in handles {
            // A panic in a worker is a bug in the verification code; re-raise
            // it on this thread rather than lose results silently.
            match h.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// How many threads `len` units of work deserve.
fn threads_for(len: usize, min_per_thread: usize) -> usize {
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    cores.min(len / min_per_thread.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_input_order_and_every_item() {
        let items: Vec<u32> = (0..1000).collect();
        let out = map(&items, 1, |x| x * 2);
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn small_inputs_stay_on_the_calling_thread() {
        let me = thread::current().id();
        let out = map(&[1, 2, 3], 8, |_| thread::current().id());
        assert!(out.iter().all(|id| *id == me));
        assert!(map(&[] as &[u8], 1, |x| *x).is_empty());
    }

    #[test]
    fn never_more_threads_than_units() {
        assert_eq!(threads_for(0, 1), 1);
        assert_eq!(threads_for(1, 1), 1);
        assert!(threads_for(3, 1) <= 3);
        assert_eq!(threads_for(15, 8), 1);
    }
}
