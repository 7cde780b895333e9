//! The holder of file secrets in supervisor mode: a small process that keeps
//! each `[files]` memfd open so that `/proc/<holder pid>/fd/<n>` opens it, for
//! COMMAND and every descendant of it, across restarts of COMMAND, and so that
//! a changed value can be swapped in whole.
//!
//! Why a separate process. A `[files]` path must be a descriptor of a
//! process that outlives the readers and that they may look into. In exec
//! mode that is COMMAND itself (it keeps r4-exec's pid and descriptors). In
//! supervisor mode COMMAND is restarted and can close what it inherited, so
//! the path must point at a process r4-exec controls; but r4-exec is
//! non-dumpable (it holds the API key and the agent key), which makes its
//! `/proc/<pid>/fd` root's: a non-root COMMAND could not open
//! `/proc/<r4-exec>/fd/N`. The holder is a fresh `execve(2)` of r4-exec's own
//! binary (`/proc/self/exe`) with an empty environment, so its memory holds
//! no secret (the values are in the memfds, which the same user may open
//! anyway) and it is dumpable like any program: its `/proc/<pid>/fd` belongs
//! to the user. Only a descriptor's *holder* can `dup2(2)` over it, so the
//! holder also performs the swap on reload.
//!
//! Protocol, over a `SOCK_SEQPACKET` socket pair (one message, one
//! operation; at most one descriptor attached with `SCM_RIGHTS`); each
//! message is 8 bytes, an operation and a signed argument:
//!
//! - `READY pid` (holder → r4-exec): started; `pid` as its `/proc` numbers it.
//! - `PUT slot` + descriptor (r4-exec → holder): keep it in a new slot
//!   (`slot = -1`) or `dup2` it over `slot`, which atomically replaces the
//!   file the path names: an `open` of the path sees the old file or the new
//!   one, never a mix, and descriptors already open keep the old content.
//! - `DONE slot` (holder → r4-exec): the slot, or `-errno`.
//!
//! The holder exits when r4-exec's end closes (r4-exec exited or was
//! killed); r4-exec notices the holder's death through `SIGCHLD`.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;
use nix::libc;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, setsid, ForkResult, Pid};

use super::env::Envp;
use super::exec::{self, ExecPlan, EXIT_SETUP_FAILED};
use super::memfd;

/// `argv[0]` of the holder: `main` serves as the holder when it sees it.
pub const ARGV0: &str = "r4-exec-fd-holder";
/// The holder's process name (`comm`, at most 15 bytes), as `ps` shows it.
const COMM: &std::ffi::CStr = c"r4-exec-holder";

const OP_READY: u32 = 1;
const OP_PUT: u32 = 2;
const OP_DONE: u32 = 3;
/// `PUT` argument: a new slot.
const NEW_SLOT: i32 = -1;
/// How long r4-exec waits for an answer before it gives up on the holder.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The holder failed. Names a step, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HolderError {
    /// A system call on r4-exec's side failed.
    #[error("the holder of file secrets: {step}: {errno}")]
    System {
        /// What r4-exec was doing.
        step: &'static str,
        /// The error.
        errno: Errno,
    },
    /// The holder exited, did not answer in time or answered nonsense.
    #[error("the holder of file secrets (pid {pid}) {what}")]
    Gone {
        /// Its pid.
        pid: i32,
        /// What went wrong.
        what: &'static str,
    },
    /// The holder refused an operation.
    #[error("the holder of file secrets refused to keep {name}: {errno}")]
    Refused {
        /// The variable.
        name: String,
        /// Its error.
        errno: Errno,
    },
}

fn system(step: &'static str) -> impl Fn(Errno) -> HolderError {
    move |errno| HolderError::System { step, errno }
}

/// r4-exec's handle on a running holder.
#[derive(Debug)]
pub struct Holder {
    sock: OwnedFd,
    child: Pid,
    /// The holder's pid as `/proc` numbers it (what paths use).
    proc_pid: u32,
    /// Slot of each variable's memfd.
    slots: Vec<(String, RawFd)>,
}

impl Holder {
    /// Starts a holder: fork, then exec r4-exec's own binary as [`ARGV0`]
    /// in a session of its own (terminal signals for COMMAND or r4-exec's
    /// group never reach it), with an empty environment and only stdio and
    /// its end of the socket; waits for its `READY`.
    /// With `user` (`--user`), the holder runs as that user, so that its
    /// `/proc/<pid>/fd` is that user's to open.
    pub fn spawn(user: Option<&super::user::RunAs>) -> Result<Holder, HolderError> {
        let (ours, theirs) = seqpacket_pair()?;
        set_answer_timeout(&ours)?;
        let argv = [OsString::from(ARGV0), theirs.as_raw_fd().to_string().into()];
        let plan = ExecPlan::new(
            PathBuf::from("/proc/self/exe"),
            &argv,
            Envp::default(),
            vec![theirs],
            None,
        )
        .map_err(|_| system("argv")(Errno::EINVAL))?
        .run_as(user.cloned());
        // SAFETY: the child only calls setsid(2) and `exec::exec`, which
        // makes system calls and ends in execve(2); on failure it _exits.
        // It never returns into the caller (the same pattern as COMMAND's
        // spawn in supervise::child).
        match unsafe { fork() } {
            Err(errno) => Err(system("fork")(errno)),
            Ok(ForkResult::Child) => {
                let _ = setsid();
                let _ = exec::exec(plan);
                // SAFETY: _exit(2) ends the forked child without running the
                // parent's atexit handlers or flushing its buffers.
                unsafe { libc::_exit(i32::from(EXIT_SETUP_FAILED)) }
            }
            Ok(ForkResult::Parent { child }) => {
                drop(plan);
                let gone = |what| HolderError::Gone {
                    pid: child.as_raw(),
                    what,
                };
                let (op, pid, _) = receive(ours.as_raw_fd())
                    .map_err(|_| gone("did not start"))?
                    .ok_or(gone("did not start"))?;
                if op != OP_READY || pid <= 0 {
                    return Err(gone("did not start"));
                }
                Ok(Holder {
                    sock: ours,
                    child,
                    proc_pid: pid as u32,
                    slots: Vec::new(),
                })
            }
        }
    }

    /// The holder's pid (r4-exec's child).
    pub fn pid(&self) -> Pid {
        self.child
    }

    /// Hands `fd`, the memfd of variable `name`, to the holder: into the
    /// slot `name` already has (atomically replacing its file), else into a
    /// new one. Returns the path that opens it.
    pub fn put(&mut self, name: &str, fd: OwnedFd) -> Result<String, HolderError> {
        let current = self.slots.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
        send(
            self.sock.as_raw_fd(),
            OP_PUT,
            current.unwrap_or(NEW_SLOT),
            Some(fd.as_raw_fd()),
        )
        .map_err(system("send a descriptor"))?;
        drop(fd);
        let gone = |what| HolderError::Gone {
            pid: self.child.as_raw(),
            what,
        };
        let answer = match receive(self.sock.as_raw_fd()) {
            Ok(Some((OP_DONE, arg, _))) => arg,
            Ok(None) => return Err(gone("exited")),
            Err(Errno::EAGAIN) => return Err(gone("did not answer")),
            _ => return Err(gone("answered out of turn")),
        };
        if answer < 0 {
            return Err(HolderError::Refused {
                name: name.to_owned(),
                errno: Errno::from_raw(-answer),
            });
        }
        if current.is_none() {
            self.slots.push((name.to_owned(), answer));
        }
        Ok(memfd::fd_path(self.proc_pid, answer))
    }

    /// The path that opens the file of variable `name`, if it has a slot.
    pub fn path(&self, name: &str) -> Option<String> {
        let (_, slot) = self.slots.iter().find(|(n, _)| n == name)?;
        Some(memfd::fd_path(self.proc_pid, *slot))
    }

    /// Whether the holder has exited (collecting it if so). `ECHILD` counts
    /// as exited: a reaper of every child may have collected it first.
    pub fn exited(&self) -> bool {
        !matches!(
            waitpid(self.child, Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR)
        )
    }
}

impl Drop for Holder {
    /// Closes r4-exec's end (the holder sees end-of-file and exits), then
    /// collects it, within a second, SIGKILL after that: no holder outlives
    /// r4-exec, and none is left a zombie.
    fn drop(&mut self) {
        // SAFETY: shutdown(2) on a descriptor this struct owns; it stays
        // open (OwnedFd closes it afterwards).
        unsafe {
            libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_RDWR);
        }
        for _ in 0..100 {
            if self.exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = nix::sys::signal::kill(self.child, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(self.child, None);
    }
}

/// Whether this process was started as a holder (`argv[0]` is [`ARGV0`]).
pub fn invoked_as_holder(argv0: Option<&std::ffi::OsStr>) -> bool {
    argv0.is_some_and(|a| a == ARGV0)
}

/// The holder's `main`: `args` are its arguments after `argv[0]` (its end
/// of the socket). Returns the exit code.
pub fn serve(args: &[OsString]) -> u8 {
    let Some(sock) = args
        .first()
        .and_then(|a| a.to_str()?.parse::<RawFd>().ok())
        .filter(|fd| is_seqpacket(*fd))
    else {
        eprintln!("{ARGV0} is started by r4-exec itself, never by hand");
        return crate::exit::USAGE;
    };
    let _ = nix::sys::prctl::set_name(COMM);
    let Ok(pid) = memfd::proc_self_pid() else {
        return crate::exit::SOFTWARE;
    };
    if send(sock, OP_READY, pid as i32, None).is_err() {
        return crate::exit::SOFTWARE;
    }
    let mut slots: Vec<OwnedFd> = Vec::new();
    loop {
        let answer = match receive(sock) {
            Ok(None) => return 0,
            Err(Errno::EINTR) => continue,
            Ok(Some((OP_PUT, slot, Some(fd)))) => place(&mut slots, slot, fd),
            Ok(Some(_)) => -(Errno::EINVAL as i32),
            Err(_) => return crate::exit::SOFTWARE,
        };
        if send(sock, OP_DONE, answer, None).is_err() {
            return crate::exit::SOFTWARE;
        }
    }
}

/// Keeps `fd` in a new slot (`slot == NEW_SLOT`) or makes `slot` (one of
/// ours) refer to its file with one `dup2(2)`: the swap is atomic for
/// anyone resolving `/proc/<holder>/fd/<slot>`. Returns the slot or `-errno`.
fn place(slots: &mut Vec<OwnedFd>, slot: i32, fd: OwnedFd) -> i32 {
    if slot == NEW_SLOT {
        let raw = fd.as_raw_fd();
        slots.push(fd);
        return raw;
    }
    if !slots.iter().any(|s| s.as_raw_fd() == slot) {
        return -(Errno::EBADF as i32);
    }
    // The OwnedFd in `slots` keeps owning the number, which now refers to
    // the new file; `fd` (the received copy) is closed on return.
    match nix::unistd::dup2(fd.as_raw_fd(), slot) {
        Ok(_) => slot,
        Err(e) => -(e as i32),
    }
}

fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), HolderError> {
    let mut fds = [0; 2];
    // SAFETY: socketpair(2) writes two descriptors into the array it is
    // given, which has room for exactly two.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    Errno::result(rc).map_err(system("socketpair"))?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_answer_timeout(sock: &OwnedFd) -> Result<(), HolderError> {
    let tv = libc::timeval {
        tv_sec: ANSWER_TIMEOUT.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: setsockopt(2) reads a timeval of the size given from a local.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    Errno::result(rc)
        .map(drop)
        .map_err(system("socket timeout"))
}

fn is_seqpacket(fd: RawFd) -> bool {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt(2) writes at most `len` bytes into a local int.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0 && ty == libc::SOCK_SEQPACKET
}

/// Room for one `SCM_RIGHTS` descriptor, aligned for `cmsghdr`.
#[repr(C)]
union Control {
    buf: [u8; 64],
    _align: libc::cmsghdr,
}

/// Sends one message, with `fd` attached when given.
fn send(sock: RawFd, op: u32, arg: i32, fd: Option<RawFd>) -> Result<(), Errno> {
    let mut payload = [0u8; 8];
    payload[..4].copy_from_slice(&op.to_le_bytes());
    payload[4..].copy_from_slice(&arg.to_le_bytes());
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let mut control = Control { buf: [0; 64] };
    // SAFETY: an all-zero msghdr is valid (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        // SAFETY: CMSG_SPACE/CMSG_LEN are arithmetic; the control buffer is
        // 64 bytes, more than CMSG_SPACE(4), and aligned for cmsghdr (union),
        // so CMSG_FIRSTHDR returns a pointer into it and CMSG_DATA has room
        // for one int, written unaligned.
        unsafe {
            let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
            msg.msg_control = control.buf.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        }
    }
    loop {
        // SAFETY: `msg` points at `payload`, `iov` and `control`, all alive
        // for the call; MSG_NOSIGNAL keeps a closed peer from raising SIGPIPE.
        let rc = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        match Errno::result(rc) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One received message: operation, argument, the descriptor if one came.
type Message = (u32, i32, Option<OwnedFd>);

/// Receives one message; `None` at end of file (the peer closed its end).
fn receive(sock: RawFd) -> Result<Option<Message>, Errno> {
    let mut payload = [0u8; 8];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let mut control = Control { buf: [0; 64] };
    // SAFETY: an all-zero msghdr is valid (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: a pointer into the 64-byte control buffer, which lives until
    // the end of this function.
    msg.msg_control = unsafe { control.buf.as_mut_ptr().cast() };
    msg.msg_controllen = 64;
    // SAFETY: `msg` points at buffers that outlive the call, with their
    // true sizes; received descriptors are close-on-exec.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    let n = Errno::result(n)?;
    let fd = received_fd(&msg);
    if n == 0 && fd.is_none() {
        return Ok(None);
    }
    if n != 8 {
        return Err(Errno::EPROTO);
    }
    let op = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
    let arg = i32::from_le_bytes([payload[4], payload[5], payload[6], payload[7]]);
    Ok(Some((op, arg, fd)))
}

/// The first `SCM_RIGHTS` descriptor of a received message, owned; any
/// other is closed (only one is ever sent).
fn received_fd(msg: &libc::msghdr) -> Option<OwnedFd> {
    let mut first = None;
    // SAFETY: walks the control messages the kernel wrote into the buffer
    // `msg` points at, with the CMSG_* macros, reading each SCM_RIGHTS int
    // unaligned; each descriptor received is new and owned by no one else.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let header = libc::CMSG_LEN(0) as usize;
                let count = ((*cmsg).cmsg_len as usize - header) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    let fd = OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i)));
                    if first.is_none() {
                        first = Some(fd);
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn memfd(value: &str) -> OwnedFd {
        memfd::sealed_memfd(
            "t",
            &crate::contract::Secret::new(value.as_bytes().to_vec()),
        )
        .unwrap()
    }

    #[test]
    fn messages_carry_one_descriptor_each_way() {
        let (a, b) = seqpacket_pair().unwrap();
        let fd = memfd("over the socket");
        send(a.as_raw_fd(), OP_PUT, 7, Some(fd.as_raw_fd())).unwrap();
        let (op, arg, got) = receive(b.as_raw_fd()).unwrap().unwrap();
        assert_eq!((op, arg), (OP_PUT, 7));
        let mut text = String::new();
        std::fs::File::from(got.unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "over the socket");
        send(b.as_raw_fd(), OP_DONE, -5, None).unwrap();
        assert!(matches!(
            receive(a.as_raw_fd()).unwrap(),
            Some((OP_DONE, -5, None))
        ));
        drop(b);
        assert!(receive(a.as_raw_fd()).unwrap().is_none(), "end of file");
    }

    #[test]
    fn place_swaps_a_slot_atomically_and_refuses_foreign_ones() {
        let mut slots = Vec::new();
        let slot = place(&mut slots, NEW_SLOT, memfd("old"));
        let path = memfd::memfd_path(slot);
        let mut before = std::fs::File::open(&path).unwrap();
        assert_eq!(place(&mut slots, slot, memfd("new")), slot);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mut old = String::new();
        before.read_to_string(&mut old).unwrap();
        assert_eq!(old, "old", "an open descriptor keeps the old file");
        assert_eq!(place(&mut slots, 0, memfd("x")), -(Errno::EBADF as i32));
        assert!(is_seqpacket(seqpacket_pair().unwrap().0.as_raw_fd()));
        assert!(!is_seqpacket(slot));
    }
}
