//! `exec` for real, tested the tini way: what the exec'd program reports
//! about itself is the assertion.
//!
//! `exec` replaces the process, so each case re-runs this test binary with
//! `EXEC_PLAN_TEST_HELPER=<mode>`, which makes the `helper` test below spoil
//! the process state (ignored and blocked signals, leaked descriptors), build
//! an `ExecPlan` and exec it. The parent test reads the program's output.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::{Command, Output};

use nix::libc;
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use r4_exec::contract::Secret;
use r4_exec::deliver::env::{build_env, EnvOptions};
use r4_exec::deliver::exec::{exec, resolve_program, ExecPlan};
use r4_exec::deliver::memfd::{memfd_path, sealed_memfd};
use r4_exec::startup::sources::gather;

const HELPER_VAR: &str = "EXEC_PLAN_TEST_HELPER";
/// The `helper` test below, by its name in the test binary.
const HELPER_TEST: &str = "exec_plan::helper";
const TARGET_VAR: &str = "EXEC_PLAN_TEST_TARGET";
const SECRET_VALUE: &str = "correct horse battery staple";
/// Printed by the helper just before exec: the program's output follows.
const MARKER: &str = "--- exec ---";

/// What the exec'd program wrote: stdout after [`MARKER`].
fn program_stdout(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.split_once(&format!("{MARKER}\n")) {
        Some((_, after)) => after.to_owned(),
        None => panic!("no marker in helper output: {out:?}"),
    }
}

/// Runs this binary's `helper` test in `mode` and returns its output.
fn run_helper(mode: &str, target: Option<&OsStr>) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([HELPER_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(HELPER_VAR, mode)
        .env("R4_API_KEY", "agent-api-key");
    if let Some(t) = target {
        cmd.env(TARGET_VAR, t);
    }
    cmd.output().expect("run helper")
}

/// The line of `/proc/self/status` starting with `field:`.
fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in output:\n{status}"))
        .trim()
}

#[test]
fn child_starts_with_default_signals_and_empty_mask() {
    let out = run_helper("status", None);
    assert!(out.status.success(), "{out:?}");
    let stdout = program_stdout(&out);
    assert_eq!(status_field(&stdout, "SigBlk"), "0000000000000000");
    assert_eq!(status_field(&stdout, "SigIgn"), "0000000000000000");
    assert_eq!(status_field(&stdout, "SigCgt"), "0000000000000000");
}

#[test]
fn child_inherits_only_stdio_and_the_kept_memfd() {
    let out = run_helper("fds", None);
    assert!(out.status.success(), "{out:?}");
    let stdout = program_stdout(&out);
    let mut fds: Vec<(RawFd, String)> = stdout
        .lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let fd = left.split_whitespace().last()?.parse().ok()?;
            Some((fd, target.to_owned()))
        })
        // ls's own handle on the directory it lists.
        .filter(|(_, target)| !(target.starts_with("/proc/") && target.ends_with("/fd")))
        .collect();
    fds.sort();
    let numbers: Vec<RawFd> = fds.iter().map(|(fd, _)| *fd).collect();
    assert_eq!(numbers.len(), 4, "want 0, 1, 2 and the memfd:\n{stdout}");
    assert_eq!(numbers[..3], [0, 1, 2], "{stdout}");
    assert!(fds[3].1.contains("memfd:r4-test"), "{stdout}");
}

#[test]
fn child_reads_the_memfd_by_path_and_gets_the_environment() {
    let out = run_helper("read", None);
    assert!(out.status.success(), "{out:?}");
    let stdout = program_stdout(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [SECRET_VALUE, "DB_PASSWORD=hunter2", "R4_API_KEY=unset"],
        "{stdout}"
    );
}

#[test]
fn missing_program_exits_127() {
    let out = run_helper("exec-path", Some(OsStr::new("/nonexistent/program")));
    assert_eq!(out.status.code(), Some(127), "{out:?}");
}

#[test]
fn non_executable_program_exits_126() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = run_helper("exec-path", Some(manifest.as_os_str()));
    assert_eq!(out.status.code(), Some(126), "{out:?}");
}

#[test]
fn missing_interpreter_exits_127_with_its_own_message() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("script");
    std::fs::write(&script, "#!/nonexistent/interpreter\n").expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = run_helper("exec-path", Some(script.as_os_str()));
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interpreter"), "{stderr}");
}

/// The helper side: does nothing unless [`HELPER_VAR`] is set.
#[test]
fn helper() {
    let Some(mode) = std::env::var_os(HELPER_VAR) else {
        return;
    };
    spoil_process_state();
    let plan = match mode.to_str() {
        Some("status") => plan(&["cat", "/proc/self/status"], &[], Vec::new()),
        Some("fds") => {
            let memfd = secret_memfd();
            plan(&["ls", "-l", "/proc/self/fd/"], &[], vec![memfd])
        }
        Some("read") => {
            let memfd = secret_memfd();
            let path = memfd_path(memfd.as_raw_fd());
            let script = format!(
                "cat {path}; echo; echo DB_PASSWORD=$DB_PASSWORD; echo R4_API_KEY=${{R4_API_KEY-unset}}"
            );
            let secrets = [("DB_PASSWORD".to_owned(), Secret::new(b"hunter2".to_vec()))];
            plan(&["sh", "-c", &script], &secrets, vec![memfd])
        }
        Some("exec-path") => {
            let target = std::env::var_os(TARGET_VAR).expect("target");
            let envp =
                build_env(std::env::vars_os(), &[], &[], &EnvOptions::default()).expect("env");
            ExecPlan::new(PathBuf::from(&target), &[target], envp, Vec::new(), None).expect("plan")
        }
        other => panic!("unknown helper mode {other:?}"),
    };
    println!("{MARKER}");
    std::io::Write::flush(&mut std::io::stdout()).expect("flush");
    let err = exec(plan);
    eprintln!("r4-exec: {err}");
    std::process::exit(err.exit_code().into());
}

/// What a careless parent leaves behind: ignored signals (on top of the
/// `SIGPIPE` Rust ignores; a real-time one, and 32, which glibc's own
/// `sigaction` refuses to touch), blocked signals, and descriptors without
/// close-on-exec, a socket among them.
fn spoil_process_state() {
    // SAFETY: SIG_IGN runs no code in signal context.
    unsafe { signal(Signal::SIGUSR1, SigHandler::SigIgn) }.expect("ignore SIGUSR1");
    ignore_raw(libc::SIGRTMIN() + 4);
    ignore_raw(32);
    let mut blocked = SigSet::empty();
    blocked.add(Signal::SIGUSR2);
    blocked.add(Signal::SIGTERM);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None).expect("block");
    let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    let leaked_socket = nix::unistd::dup(a.as_raw_fd()).expect("dup socket");
    let leaked_stdout = nix::unistd::dup(1).expect("dup stdout");
    assert!(leaked_socket > 2 && leaked_stdout > 2);
    std::mem::forget((a, _b));
}

/// Sets `sig` to `SIG_IGN` with `rt_sigaction(2)` itself, past the C
/// library's reserved-signal check.
fn ignore_raw(sig: libc::c_int) {
    // The kernel's struct sigaction starts with the handler on x86_64 and
    // aarch64 (and on every architecture this test runs on): handler, flags,
    // restorer, 64-bit mask.
    let act: [usize; 4] = [libc::SIG_IGN, 0, 0, 0];
    // SAFETY: SIG_IGN runs no code; `act` is as large as the kernel's struct
    // on these architectures and outlives the call; no old action requested.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            act.as_ptr(),
            std::ptr::null_mut::<usize>(),
            8usize,
        )
    };
    assert_eq!(rc, 0, "rt_sigaction({sig}, SIG_IGN)");
}

fn secret_memfd() -> std::os::fd::OwnedFd {
    sealed_memfd("r4-test", &Secret::new(SECRET_VALUE.as_bytes().to_vec())).expect("memfd")
}

/// A plan for `argv`, resolved through the default `PATH`, with the
/// inherited environment and `secrets`.
fn plan(
    argv: &[&str],
    secrets: &[(String, Secret)],
    keep_fds: Vec<std::os::fd::OwnedFd>,
) -> ExecPlan {
    let program = resolve_program(OsStr::new(argv[0]), None).expect("resolve");
    // The inherited environment as a run passes it on: through the one
    // filter of r4-exec's own variables (`startup::sources`).
    let sources = gather(None, &[], std::env::vars_os().collect(), false).expect("sources");
    let envp = build_env(sources.inherited, secrets, &[], &EnvOptions::default()).expect("env");
    let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
    ExecPlan::new(program, &argv, envp, keep_fds, None).expect("plan")
}
