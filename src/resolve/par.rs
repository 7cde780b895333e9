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
use std::sync::OnceLock;
use std::thread;

/// Maps `f` over `items` on up to one thread per core, in input order.
///
/// Thread `t` of `n` takes items `t`, `t + n`, `t + 2n`, ...: callers list
/// work by kind (all the expensive unwraps, then all the item checks), and
/// striding gives each thread its share of every kind.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    min_per_thread: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads_for(items.len(), min_per_thread);
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    let stride = |t: usize| {
        items
            .iter()
            .skip(t)
            .step_by(threads)
            .map(f)
            .collect::<Vec<R>>()
    };
    let parts: Vec<Vec<R>> = thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|t| s.spawn(move || stride(t))).collect();
        let mut parts = vec![stride(0)];
        for h in handles {
            // A panic in a worker is a bug in the verification code; re-raise
            // it on this thread rather than lose results silently.
            match h.join() {
                Ok(part) => parts.push(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        parts
    });
    let mut parts: Vec<_> = parts.into_iter().map(Vec::into_iter).collect();
    (0..items.len())
        .filter_map(|i| parts[i % threads].next())
        .collect()
}

/// How many threads `len` units of work deserve.
fn threads_for(len: usize, min_per_thread: usize) -> usize {
    let fair = len / min_per_thread.max(1);
    if fair <= 1 {
        return 1;
    }
    cores().min(fair)
}

/// The usable cores, looked up once per process: `available_parallelism`
/// reads cgroup files on every call, and a resolution asks twice (and a
/// supervisor on every poll).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| thread::available_parallelism().map_or(1, NonZeroUsize::get))
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
    fn uneven_strides_keep_order() {
        for len in 0..20u32 {
            let items: Vec<u32> = (0..len).collect();
            assert_eq!(map(&items, 1, |x| x + 1), (1..=len).collect::<Vec<_>>());
        }
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
