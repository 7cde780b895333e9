//! HTTPS trust (`src/client/tls.rs`): the bundled roots and `ca_file` are
//! tried first, the system roots (`SSL_CERT_FILE`/`SSL_CERT_DIR`) only for a
//! chain that does not reach them, and a chain that reaches no trusted root
//! is refused before any request is sent.

use std::process::Command;

use crate::util::*;

#[test]
fn ca_file_is_trusted_without_reading_the_system_store() {
    let (world, server) = tls_world();
    world.config(&format!(
        "[r4]\nca_file = \"{}\"\n{CONFIG}",
        world.path("ca.pem").display()
    ));
    // The system bundle named here exists (a copy of the CA, so that trusting
    // it would also succeed); it must not even be opened.
    let bundle = world.path("system-bundle.pem");
    std::fs::copy(world.path("ca.pem"), &bundle).unwrap();
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=openat,open", "-o"])
        .arg(world.path("trace"))
        .arg(bin());
    let inner = print_password(&world, server.base_url(), &[]);
    cmd.args(inner.get_args().collect::<Vec<_>>())
        .env_clear()
        .envs(inner.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .env("SSL_CERT_FILE", &bundle)
        .current_dir(world.path("."));
    let out = cmd.output().expect("strace (installed by .ci/run)");
    assert_eq!(stdout(&out), DB_PASSWORD, "{}", stderr(&out));
    let trace = std::fs::read_to_string(world.path("trace")).unwrap();
    assert!(
        !trace.contains("system-bundle.pem"),
        "the system store was read:\n{trace}"
    );
}

#[test]
fn system_roots_from_ssl_cert_file_are_trusted() {
    let (world, server) = tls_world();
    let out = print_password(&world, server.base_url(), &[])
        .env("SSL_CERT_FILE", world.path("ca.pem"))
        .output()
        .unwrap();
    assert_eq!(stdout(&out), DB_PASSWORD, "{}", stderr(&out));
}

#[test]
fn a_server_chaining_to_no_trusted_root_is_refused() {
    let (world, server) = tls_world();
    let marker = world.marker();
    fails(
        world
            .std_command()
            .env("R4_BASE_URL", server.base_url())
            .env("SSL_CERT_FILE", world.path("does-not-exist.pem"))
            .env("SSL_CERT_DIR", world.path("no-such-dir"))
            .arg("--")
            .args(marker.command()),
        69,
        &["add its CA with ca_file"],
    );
    marker.assert_not_ran();
}
