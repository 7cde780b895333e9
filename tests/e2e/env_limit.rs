//! A secret too long for one environment variable: the kernel refuses a
//! `NAME=value` string longer than MAX_ARG_STRLEN (128 KiB, NUL included)
//! with E2BIG, which names nothing. r4-exec refuses it before exec, naming
//! the variable and the fix ([files]); exactly at the limit, COMMAND runs,
//! which shows the limit is the kernel's and not a guess.

use crate::util::*;
use r4_exec::deliver::env::MAX_ARG_STRLEN;

/// A world whose `DB_PASSWORD` (in `[env]`) is `len` bytes long.
fn world_with_password_of(len: usize) -> World {
    let w = World::new();
    set_db_password(&w, &"p".repeat(len));
    w
}

/// The longest value `DB_PASSWORD=value` can hold.
const FITS: usize = MAX_ARG_STRLEN - "DB_PASSWORD=".len() - 1;

#[test]
fn a_value_at_the_limit_reaches_command() {
    let w = world_with_password_of(FITS);
    let out = w
        .r4exec()
        .args(["--", "sh", "-c", "printf %s \"${#DB_PASSWORD}\""])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), FITS.to_string());
}

#[test]
fn a_value_over_the_limit_is_refused_naming_the_variable_and_files() {
    let w = world_with_password_of(FITS + 1);
    let out = w.r4exec().args(["--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.ends_with(&format!(
            "r4-exec: the value for DB_PASSWORD is {} bytes: over the kernel's limit of 128 KiB for one environment variable (MAX_ARG_STRLEN); deliver it as a file: map DB_PASSWORD in [files] instead of [env]\n",
            FITS + 1
        )),
        "{err}"
    );
    assert!(!err.contains("ppppp"), "the value leaked: {err}");
}

#[test]
fn the_same_value_in_files_is_delivered() {
    let w = world_with_password_of(FITS + 1);
    w.config("[files]\nDB_PASSWORD = \"r4://Production Secrets/Production DB/Password\"\n");
    let out = w
        .r4exec()
        .args(["--", "sh", "-c", "wc -c < \"$DB_PASSWORD\""])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), (FITS + 1).to_string());
}
