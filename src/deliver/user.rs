//! `--user USER[:GROUP]` (and `[r4] user`, and a `[files]` entry's `owner`):
//! r4-exec resolves and decrypts as the user it was started as, then hands
//! the files to the named user and becomes that user just before
//! `execve(2)` — COMMAND, and in supervisor mode the holder of the files,
//! run as it. The pattern of the official images' `gosu`/`setpriv` step,
//! but with files the dropped user can open: a memfd is `0400` and owned by
//! whoever created it, so a root-owned one is `EACCES` for `postgres`.
//!
//! Names are looked up in `/etc/passwd` and `/etc/group` by hand: the
//! static binary has no NSS, and a container's files are the authority
//! there. A numeric `UID` with no passwd entry needs an explicit `:GID`
//! (Docker's `--user 1000` silently gives group 0, root's).
//!
//! The switch uses the raw system calls, which change only the calling
//! thread (glibc's wrappers signal every thread to follow): the thread
//! that calls [`switch`] is the one that execs, in a forked child (the
//! only thread) or in exec mode (the others vanish at `execve`). It is
//! checked afterwards: every uid and gid is the target's, and a non-root
//! target cannot take root back.

use std::path::Path;

use nix::errno::Errno;
use nix::libc;

use crate::localfile::{cap, read_text, Follow};

/// Whom COMMAND runs as, resolved before any secret is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups: the primary one and every `/etc/group` entry
    /// that lists the user.
    pub groups: Vec<u32>,
    /// As written (`postgres`, `999:999`), for messages.
    pub spec: String,
}

/// A `USER[:GROUP]` that cannot be used. Names the spec, never file text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user {spec:?}: {why}")]
pub struct UserError {
    /// As written.
    pub spec: String,
    /// What is wrong.
    pub why: String,
}

/// The files names are looked up in (tests point them elsewhere).
#[derive(Debug, Clone, Copy)]
pub struct Databases<'a> {
    /// `/etc/passwd`.
    pub passwd: &'a Path,
    /// `/etc/group`.
    pub group: &'a Path,
}

/// The system's own.
pub fn system() -> Databases<'static> {
    Databases {
        passwd: Path::new("/etc/passwd"),
        group: Path::new("/etc/group"),
    }
}

/// Resolves `spec` (`USER`, `USER:GROUP`, numeric or by name). `uid` 0 is
/// refused unless written as `root` or `0`: a user named to drop
/// privileges that turns out to be root is a mistake.
pub fn lookup(spec: &str, db: Databases<'_>) -> Result<RunAs, UserError> {
    let err = |why: &str| UserError {
        spec: spec.to_owned(),
        why: why.to_owned(),
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group.is_some_and(str::is_empty) {
        return Err(err("write USER or USER:GROUP (names or numbers)"));
    }
    let passwd = read_db(db.passwd).map_err(|e| err(&e))?;
    let entry = passwd
        .lines()
        .filter_map(parse_passwd)
        .find(|p| p.name == user || user.parse() == Ok(p.uid));
    let (name, uid, primary) = match (&entry, user.parse::<u32>()) {
        (Some(p), _) => (Some(p.name), p.uid, Some(p.gid)),
        (None, Ok(uid)) => (None, uid, None),
        (None, Err(_)) => return Err(err(&format!("no such user in {}", db.passwd.display()))),
    };
    let groups_text = read_db(db.group).unwrap_or_default();
    let groups: Vec<GroupEntry<'_>> = groups_text.lines().filter_map(parse_group).collect();
    let gid = match group {
        Some(g) => match groups.iter().find(|e| e.name == g) {
            Some(e) => e.gid,
            None => g
                .parse()
                .map_err(|_| err(&format!("no such group in {}", db.group.display())))?,
        },
        None => primary.ok_or_else(|| {
            err("a numeric user with no /etc/passwd entry needs its group: UID:GID")
        })?,
    };
    if uid == 0 && user != "root" && user != "0" {
        return Err(err(
            "is root (uid 0): --user drops privileges; write root if that is meant",
        ));
    }
    let mut supplementary = vec![gid];
    if let Some(name) = name {
        for e in &groups {
            if e.members.split(',').any(|m| m == name) && !supplementary.contains(&e.gid) {
                supplementary.push(e.gid);
            }
        }
    }
    Ok(RunAs {
        uid,
        gid,
        groups: supplementary,
        spec: spec.to_owned(),
    })
}

/// A missing file is an empty one: a `FROM scratch` image has none, and a
/// numeric `UID:GID` needs none.
fn read_db(path: &Path) -> Result<String, String> {
    match read_text(path, cap::CONFIG, Follow::Yes) {
        Ok(text) => Ok(text.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

fn parse_passwd(line: &str) -> Option<PasswdEntry<'_>> {
    let mut f = line.split(':');
    let name = f.next()?;
    let _password = f.next()?;
    let uid = f.next()?.parse().ok()?;
    let gid = f.next()?.parse().ok()?;
    Some(PasswdEntry { name, uid, gid })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

fn parse_group(line: &str) -> Option<GroupEntry<'_>> {
    let mut f = line.split(':');
    let name = f.next()?;
    let _password = f.next()?;
    let gid = f.next()?.parse().ok()?;
    let members = f.next().unwrap_or("");
    Some(GroupEntry { name, gid, members })
}

/// Becomes `who` (calling thread): supplementary groups, then gid, then
/// uid, then checks the result. Makes system calls only (safe after
/// `fork` in a threaded process).
pub fn switch(who: &RunAs) -> Result<(), Errno> {
    // SAFETY: the three calls take integers and a pointer to `who.groups`,
    // which outlives them; they change only this thread's credentials.
    unsafe {
        Errno::result(libc::syscall(
            libc::SYS_setgroups,
            who.groups.len(),
            who.groups.as_ptr(),
        ))?;
        Errno::result(libc::syscall(
            libc::SYS_setresgid,
            who.gid,
            who.gid,
            who.gid,
        ))?;
        Errno::result(libc::syscall(
            libc::SYS_setresuid,
            who.uid,
            who.uid,
            who.uid,
        ))?;
    }
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresuid/getresgid write three integers we own.
    unsafe {
        Errno::result(libc::getresuid(&mut r, &mut e, &mut s))?;
        if (r, e, s) != (who.uid, who.uid, who.uid) {
            return Err(Errno::EPERM);
        }
        Errno::result(libc::getresgid(&mut r, &mut e, &mut s))?;
        if (r, e, s) != (who.gid, who.gid, who.gid) {
            return Err(Errno::EPERM);
        }
        if who.uid != 0 && libc::syscall(libc::SYS_setresuid, 0, 0, 0) == 0 {
            return Err(Errno::EPERM);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let passwd = dir.join("passwd");
        let group = dir.join("group");
        std::fs::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/sh\npostgres:x:999:998::/var/lib/postgresql:/bin/sh\nbroken line\ntoor:x:0:0::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            &group,
            "root:x:0:\npostgres:x:998:\nssl-cert:x:110:postgres,other\nwww:x:33:other\n",
        )
        .unwrap();
        (passwd, group)
    }

    fn look(spec: &str) -> Result<RunAs, String> {
        let dir = tempfile::tempdir().unwrap();
        let (passwd, group) = db(dir.path());
        let db = Databases {
            passwd: &passwd,
            group: &group,
        };
        lookup(spec, db).map_err(|e| e.to_string())
    }

    #[test]
    fn names_and_numbers_resolve_with_the_users_groups() {
        let p = look("postgres").unwrap();
        assert_eq!((p.uid, p.gid, p.groups), (999, 998, vec![998, 110]));
        assert_eq!(look("999").unwrap().gid, 998);
        let g = look("postgres:www").unwrap();
        assert_eq!((g.gid, g.groups), (33, vec![33, 110]));
        assert_eq!(look("postgres:4242").unwrap().gid, 4242);
        let n = look("5000:5000").unwrap();
        let none = Databases {
            passwd: Path::new("/nonexistent/passwd"),
            group: Path::new("/nonexistent/group"),
        };
        assert_eq!(lookup("7:8", none).unwrap().groups, [8]);
        assert!(lookup("postgres", none)
            .unwrap_err()
            .why
            .contains("no such user"));
        assert_eq!((n.uid, n.gid, n.groups), (5000, 5000, vec![5000]));
        assert_eq!(look("root").unwrap().uid, 0);
        assert_eq!(look("0").unwrap().uid, 0);
    }

    #[test]
    fn a_mistake_is_refused_naming_the_spec() {
        for (spec, why) in [
            ("nobody-here", "no such user"),
            ("5000", "needs its group: UID:GID"),
            ("postgres:nogroup", "no such group"),
            ("toor", "is root (uid 0)"),
            ("", "write USER or USER:GROUP"),
            ("postgres:", "write USER or USER:GROUP"),
        ] {
            let e = look(spec).unwrap_err();
            assert!(
                e.contains(why) && e.contains(&format!("{spec:?}")),
                "{spec}: {e}"
            );
        }
    }

    #[test]
    fn an_unreadable_database_is_an_error_not_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = Databases {
            passwd: dir.path(),
            group: dir.path(),
        };
        let e = lookup("7:8", db).unwrap_err();
        assert!(e.why.starts_with("cannot read "), "{e}");
    }

    /// In a forked child (the credentials of this test process must stay):
    /// as root, the child becomes 65534 with exactly that group; as
    /// another user, the switch is refused.
    #[test]
    fn switch_becomes_the_user_entirely_or_fails() {
        let nobody = RunAs {
            uid: 65534,
            gid: 65534,
            groups: vec![65534],
            spec: "65534:65534".into(),
        };
        // SAFETY: the child makes system calls only and leaves with _exit.
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            let code = match switch(&nobody) {
                Err(_) => 10,
                Ok(()) => {
                    let mut groups = [0 as libc::gid_t; 4];
                    // SAFETY: getgroups writes at most 4 ids into `groups`.
                    let n = unsafe { libc::getgroups(4, groups.as_mut_ptr()) };
                    // SAFETY: plain getters.
                    let ids = unsafe {
                        (
                            libc::getuid(),
                            libc::geteuid(),
                            libc::getgid(),
                            libc::getegid(),
                        )
                    };
                    if ids == (65534, 65534, 65534, 65534) && n == 1 && groups[0] == 65534 {
                        0
                    } else {
                        11
                    }
                }
            };
            // SAFETY: ends the forked child at once.
            unsafe { libc::_exit(code) }
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(child, &mut status, 0) };
        // SAFETY: geteuid(2) cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let want = if root { 0 } else { 10 };
        assert_eq!(libc::WEXITSTATUS(status), want, "root: {root}");
    }
}
