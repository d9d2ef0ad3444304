//! A small persistent thread pool for the kernels (std threads, atomics and a condvar; no rayon).
//!
//! A pool of `n` threads is the calling thread plus `n - 1` workers that live as long as the pool.
//! [`ThreadPool::run`] calls a job, a `Fn(index, count)`, once for every `index < count`, on up to
//! `count` threads, and returns when all calls are done. Each job splits its own work from
//! `(index, count)` (part `index` of `count`), so it is correct for whatever `count` it gets.
//!
//! - Parts are handed out dynamically: the caller takes parts too, and if a worker has not turned
//!   up by the time no part is left (on a busy machine it may not be scheduled for milliseconds)
//!   the job is closed and the caller returns without waiting for it.
//! - With one thread (or a pool that is already running a job, such as a kernel called from inside
//!   another job, or two sessions sharing the pool) the job runs on the caller alone with
//!   `count == 1`: no deadlock and no waiting for the pool.
//! - Idle workers block on a condvar at once; they never spin. (They used to spin for
//!   [`SPIN_TIME`] after every job so that back-to-back jobs started quickly; on a machine with
//!   as many threads as cores that spinning took the core the caller needed for the work
//!   between jobs, and runs with 2 threads were several times slower than with 1.) Publishing a
//!   job wakes the sleepers, which costs the caller one futex wake per job, so callers should
//!   only split work that takes well over the few tens of microseconds a wake-up takes; a job
//!   whose parts run out before a worker turns up runs on the caller alone, and the late
//!   worker finds it closed and goes back to sleep.
//! - The caller, once no part is left, spins for at most [`SPIN_TIME`] waiting for the workers
//!   still inside the job (they are running a part, so this is short), then sleeps.
//! - The number of threads is a run-time setting ([`ThreadPool::set_num_threads`],
//!   [`set_num_threads`] for the process-wide pool that [`ThreadPool::global`] returns).
//! - A panic in a worker is caught and re-raised on the caller once every participant has
//!   finished.

use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a caller waiting for the workers still running parts of its job spins before it
/// sleeps. (Idle workers do not spin.)
pub const SPIN_TIME: Duration = Duration::from_micros(100);

/// The job type: `(part index, part count)`.
type Job<'a> = dyn Fn(usize, usize) + Sync + 'a;

/// Low 16 bits of the control word: the part count of the current job; the rest: the job's
/// generation number.
const COUNT_BITS: u32 = 16;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// The gate word: `generation << 32 | OPEN | workers inside the job`.
const OPEN: u64 = 1 << 31;
const INSIDE_MASK: u64 = OPEN - 1;

/// The most threads a pool may have (the part count must fit in 16 bits of the control word).
pub const MAX_THREADS: usize = 1024;

struct Shared {
    /// `generation << COUNT_BITS | count`: tells the workers that a job was published.
    word: AtomicU64,
    /// Admission to the current job: a worker enters by incrementing the low bits while the
    /// generation matches and `OPEN` is set; the caller clears `OPEN` once every part has been
    /// taken, then waits only for the workers inside.
    gate: AtomicU64,
    /// The next part to take.
    next: AtomicUsize,
    /// The current job, lifetime erased. Written only by the thread that holds
    /// `ThreadPool::control` while no worker is inside a job, and read by a worker only while it
    /// is inside the job's gate, during which the caller does not return.
    job: UnsafeCell<*const Job<'static>>,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    /// Number of workers asleep on `wake`; changed and read only under this mutex.
    sleepers: Mutex<usize>,
    wake: Condvar,
    done_lock: Mutex<()>,
    done: Condvar,
}

// SAFETY: every field but `job` is Sync by itself; `job` is accessed only under the protocol
// described on the field (a single writer while no reader exists; readers are admitted through
// `gate`, whose Acquire/Release operations order them after the write and before the next one).
unsafe impl Sync for Shared {}
// SAFETY: the raw pointer in `job` is only a borrowed reference whose referent outlives every use
// (see `ThreadPool::run`); moving `Shared` between threads moves nothing thread-bound.
unsafe impl Send for Shared {}

struct Control {
    workers: Vec<JoinHandle<()>>,
    generation: u64,
}

/// A persistent pool of worker threads; see the [module documentation](self).
pub struct ThreadPool {
    shared: Arc<Shared>,
    /// Held while a job runs and while workers are added; `try_lock` in `run`.
    control: Mutex<Control>,
    /// The number of threads a job may use (1 = the caller alone).
    active: AtomicUsize,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("num_threads", &self.num_threads())
            .finish()
    }
}

impl ThreadPool {
    /// A pool with `num_threads` threads in all, the caller included (so `num_threads - 1`
    /// workers are started; `0` is treated as `1`).
    pub fn new(num_threads: usize) -> Self {
        let pool = ThreadPool {
            shared: Arc::new(Shared {
                word: AtomicU64::new(0),
                gate: AtomicU64::new(0),
                next: AtomicUsize::new(0),
                job: UnsafeCell::new(std::ptr::null::<fn(usize, usize)>() as *const Job<'static>),
                panicked: AtomicBool::new(false),
                shutdown: AtomicBool::new(false),
                sleepers: Mutex::new(0),
                wake: Condvar::new(),
                done_lock: Mutex::new(()),
                done: Condvar::new(),
            }),
            control: Mutex::new(Control {
                workers: Vec::new(),
                generation: 0,
            }),
            active: AtomicUsize::new(1),
        };
        pool.set_num_threads(num_threads);
        pool
    }

    /// The process-wide pool. Its size is the `MLC_NUM_THREADS` environment variable if set,
    /// else the number of CPUs available to the process; change it with [`set_num_threads`].
    pub fn global() -> &'static ThreadPool {
        static GLOBAL: OnceLock<ThreadPool> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let n = std::env::var("MLC_NUM_THREADS")
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            ThreadPool::new(n)
        })
    }

    /// The number of threads a job may use, the caller included.
    pub fn num_threads(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Sets the number of threads (the caller included; `0` is treated as `1`, and at most
    /// [`MAX_THREADS`]). Workers are started as needed and never stopped before the pool is
    /// dropped: lowering the count leaves the extra workers asleep. Waits for a running job.
    pub fn set_num_threads(&self, num_threads: usize) {
        let n = num_threads.clamp(1, MAX_THREADS);
        let mut control = self.control.lock().unwrap_or_else(|e| e.into_inner());
        while control.workers.len() < n - 1 {
            let index = control.workers.len() + 1;
            let shared = Arc::clone(&self.shared);
            let seen = control.generation;
            let handle = std::thread::Builder::new()
                .name(format!("mlc-worker-{index}"))
                .spawn(move || worker_loop(&shared, index, seen))
                .expect("failed to start a thread pool worker");
            control.workers.push(handle);
        }
        self.active.store(n, Ordering::Relaxed);
    }

    /// Calls `job(index, count)` for every `index < count`, where
    /// `count = min(parts, self.num_threads())` (at least 1), on up to `count` threads (the caller
    /// included), and returns when all calls are done. If the pool is busy (a nested call, or
    /// another thread's job) the job runs on the caller alone with `count == 1`.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of the job on any thread once the job is finished.
    pub fn run(&self, parts: usize, job: &(dyn Fn(usize, usize) + Sync)) {
        let n = parts.min(self.num_threads()).max(1);
        if n == 1 {
            job(0, 1);
            return;
        }
        let mut control = match self.control.try_lock() {
            Ok(control) => control,
            // A job panicked on the caller earlier: the pool itself is still consistent.
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                job(0, 1);
                return;
            }
        };
        let n = n.min(control.workers.len() + 1);
        let shared = &*self.shared;
        shared.panicked.store(false, Ordering::Relaxed);
        shared.next.store(0, Ordering::Relaxed);
        // SAFETY: we hold `control`, so no other caller publishes a job, and no worker is inside
        // the previous job's gate (its `run` waited for that), so nobody reads `job` now. Erasing
        // the lifetime is sound because this function does not return (or unwind, see
        // `CloseGuard`) before every worker that entered the gate has left it.
        unsafe {
            *shared.job.get() = std::mem::transmute::<*const Job<'_>, *const Job<'static>>(job as *const Job<'_>);
        }
        control.generation += 1;
        let generation = control.generation;
        shared
            .gate
            .store(((generation & 0xffff_ffff) << 32) | OPEN, Ordering::Release);
        let word = (generation << COUNT_BITS) | n as u64;
        let sleepers = {
            let guard = shared.sleepers.lock().unwrap_or_else(|e| e.into_inner());
            shared.word.store(word, Ordering::Release);
            *guard
        };
        if sleepers > 0 {
            shared.wake.notify_all();
        }
        // Closes the gate and waits for the workers inside, even if a part panics here.
        struct CloseGuard<'a>(&'a Shared);
        impl Drop for CloseGuard<'_> {
            fn drop(&mut self) {
                close_and_wait(self.0);
            }
        }
        let guard = CloseGuard(shared);
        take_parts(shared, job, n);
        drop(guard);
        drop(control);
        if shared.panicked.swap(false, Ordering::AcqRel) {
            panic!("a thread pool job panicked on a worker thread");
        }
    }
}

/// Runs parts of the current job until none is left.
fn take_parts(shared: &Shared, job: &Job<'_>, count: usize) {
    loop {
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= count {
            return;
        }
        job(index, count);
    }
}

fn close_and_wait(shared: &Shared) {
    let before = shared.gate.fetch_and(!OPEN, Ordering::AcqRel);
    if before & INSIDE_MASK == 0 {
        return;
    }
    let start = Instant::now();
    let mut spins = 0u32;
    while shared.gate.load(Ordering::Acquire) & INSIDE_MASK != 0 {
        std::hint::spin_loop();
        spins += 1;
        if spins.is_multiple_of(64) && start.elapsed() > SPIN_TIME {
            let mut guard = shared.done_lock.lock().unwrap_or_else(|e| e.into_inner());
            while shared.gate.load(Ordering::Acquire) & INSIDE_MASK != 0 {
                guard = shared.done.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            return;
        }
    }
}

/// Enters the gate of job `generation` if it is still open.
fn enter(shared: &Shared, generation: u64) -> bool {
    let mut gate = shared.gate.load(Ordering::Acquire);
    loop {
        if gate >> 32 != generation & 0xffff_ffff || gate & OPEN == 0 {
            return false;
        }
        match shared
            .gate
            .compare_exchange_weak(gate, gate + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return true,
            Err(now) => gate = now,
        }
    }
}

fn worker_loop(shared: &Shared, index: usize, mut seen: u64) {
    loop {
        let mut word = shared.word.load(Ordering::Acquire);
        if word >> COUNT_BITS == seen {
            // Idle: sleep until the next job is published. `run` stores the word under
            // `sleepers` and then notifies, so checking it under the lock loses no wake-up.
            let mut sleepers = shared.sleepers.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                word = shared.word.load(Ordering::Acquire);
                if word >> COUNT_BITS != seen || shared.shutdown.load(Ordering::Relaxed) {
                    break;
                }
                *sleepers += 1;
                sleepers = shared.wake.wait(sleepers).unwrap_or_else(|e| e.into_inner());
                *sleepers -= 1;
            }
        }
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        seen = word >> COUNT_BITS;
        let count = (word & COUNT_MASK) as usize;
        if index < count && enter(shared, seen) {
            // SAFETY: we are inside the gate of this generation, which the caller opened after
            // writing `job` (Release on `gate`, Acquire in `enter`); it does not return, nor
            // write `job`, before we leave the gate below.
            let job = unsafe { &**shared.job.get() };
            if catch_unwind(AssertUnwindSafe(|| take_parts(shared, job, count))).is_err() {
                shared.panicked.store(true, Ordering::Release);
            }
            let before = shared.gate.fetch_sub(1, Ordering::AcqRel);
            if before & INSIDE_MASK == 1 && before & OPEN == 0 {
                let _guard = shared.done_lock.lock().unwrap_or_else(|e| e.into_inner());
                shared.done.notify_all();
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        {
            let _guard = self.shared.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        }
        self.shared.wake.notify_all();
        let control = self.control.get_mut().unwrap_or_else(|e| e.into_inner());
        for handle in control.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Sets the number of threads of the process-wide pool ([`ThreadPool::global`]).
pub fn set_num_threads(num_threads: usize) {
    ThreadPool::global().set_num_threads(num_threads);
}

/// The number of threads of the process-wide pool.
pub fn num_threads() -> usize {
    ThreadPool::global().num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_index_runs_once() {
        let pool = ThreadPool::new(3);
        for _ in 0..200 {
            let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
            let seen_count = AtomicUsize::new(0);
            pool.run(8, &|i, n| {
                hits[i].fetch_add(1, Ordering::Relaxed);
                seen_count.store(n, Ordering::Relaxed);
            });
            let n = seen_count.load(Ordering::Relaxed);
            assert_eq!(n, 3);
            for h in &hits[..n] {
                assert_eq!(h.load(Ordering::Relaxed), 1);
            }
        }
    }

    #[test]
    fn resize_and_single_thread() {
        let pool = ThreadPool::new(1);
        let count = AtomicUsize::new(0);
        pool.run(4, &|_, n| {
            assert_eq!(n, 1);
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 1);
        pool.set_num_threads(4);
        assert_eq!(pool.num_threads(), 4);
        count.store(0, Ordering::Relaxed);
        pool.run(4, &|_, _| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 4);
        pool.set_num_threads(2);
        count.store(0, Ordering::Relaxed);
        pool.run(4, &|_, n| {
            assert_eq!(n, 2);
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn nested_runs_fall_back_to_the_caller() {
        let pool = ThreadPool::new(2);
        let total = AtomicUsize::new(0);
        pool.run(2, &|_, _| {
            pool.run(2, &|_, n| {
                assert_eq!(n, 1);
                total.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(total.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn sleeping_workers_wake_up() {
        let pool = ThreadPool::new(2);
        let total = AtomicUsize::new(0);
        for _ in 0..3 {
            std::thread::sleep(SPIN_TIME * 3);
            pool.run(2, &|_, _| {
                total.fetch_add(1, Ordering::Relaxed);
            });
        }
        assert_eq!(total.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn concurrent_callers_share_a_pool() {
        let pool = ThreadPool::new(2);
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        pool.run(2, &|i, n| {
                            assert!(i < n);
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert!(total.load(Ordering::Relaxed) >= 400);
    }

    #[test]
    fn worker_panic_is_reraised() {
        let pool = ThreadPool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(2, &|i, _| {
                if i == 1 {
                    panic!("boom");
                }
            })
        }));
        assert!(r.is_err());
        // The pool still works afterwards.
        let total = AtomicUsize::new(0);
        pool.run(2, &|_, _| {
            total.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(total.load(Ordering::Relaxed), 2);
    }
}
