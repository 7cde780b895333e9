//! `kubectl r4 wrap`: puts r4-exec in front of the entrypoint of the
//! containers whose pod template opts in, at deploy time, without
//! rebuilding their images. A filter (stdin to stdout) for `kubectl apply
//! -f -`, kustomize and Helm's `--post-renderer`. See kubectl-r4/README.md.

mod auth;
mod image;
mod registry;
mod wrap;
mod yaml;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The r4-exec image the init container copies the binary from, by default.
const DEFAULT_IMAGE: &str = concat!("ghcr.io/r4-dev/r4-exec:", env!("CARGO_PKG_VERSION"));

#[derive(Parser)]
#[command(
    name = "kubectl-r4",
    version,
    about = "Wrap Kubernetes workloads with r4-exec at deploy time, without rebuilding their images",
    long_about = "Wrap Kubernetes workloads with r4-exec at deploy time, without rebuilding \
their images.\n\nAs a kubectl plugin (on PATH as kubectl-r4): `kubectl r4 wrap -f app.yaml | kubectl apply -f -`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read a YAML stream, wrap the opted-in containers, write it to stdout.
    #[command(long_about = WRAP_HELP)]
    Wrap(WrapArgs),
}

const WRAP_HELP: &str = "Read a YAML stream of Kubernetes objects (Pod, Deployment, StatefulSet, \
DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, and List or any *List with items), \
wrap the containers of every pod template whose metadata has the annotation \
r4.dev/inject: \"true\" (or a comma-separated list of container names), and write the stream to \
stdout. Documents that are not changed are written byte for byte as they came; a changed \
document is written anew, keeping its `---` line and the comments before its content \
(Helm's `# Source:` lines) but not the comments within it.

For each wrapped container: its command becomes [\"/r4/r4-exec\", \"--\", <what it ran>] \
(args folded in and removed) and it mounts the volume r4-bin at /r4 read-only; the pod gains \
the volume r4-bin (emptyDir, medium Memory, sizeLimit 16Mi) and the init container r4-install \
(image --image, command [\"/r4-exec\", \"install\", \"/r4/\"], restricted Pod Security \
Standard securityContext, requests cpu 10m memory 16Mi, limit memory 32Mi).

A container without a command runs its image's Entrypoint and Cmd: they are read from the \
image's registry (OCI distribution API) at this point, Kubernetes' rules applied (args replace \
Cmd), and the image is pinned by the digest the registry served for its tag (the index's digest \
for a multi-platform image, so every platform still works). A container that has a command \
needs no look-up: no registry is contacted and its image is left as written. Wrapping \
already-wrapped output changes nothing.

On any error: one line on stderr naming the document, object and container, exit status 1, \
nothing on stdout.";

#[derive(clap::Args)]
struct WrapArgs {
    /// The YAML stream to read; `-` or none: standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    file: Option<PathBuf>,

    /// The r4-exec image the init container copies the binary from (a FROM
    /// scratch image holding /r4-exec). Pin it by digest for reproducible
    /// output.
    #[arg(long, value_name = "REF", default_value = DEFAULT_IMAGE)]
    image: String,

    /// The platform(s) whose image config gives the entrypoint, as os/arch
    /// or os/arch/variant; repeatable or comma-separated. With several,
    /// their commands must agree.
    #[arg(
        long,
        value_name = "OS/ARCH",
        value_delimiter = ',',
        default_value = "linux/amd64"
    )]
    platform: Vec<String>,

    /// Speak plain HTTP to this registry (HOST:PORT exactly, as the image
    /// names it), and to a token server there; for a loopback or lab
    /// registry. Repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    insecure_registry: Vec<String>,

    /// Trust the PEM CA certificates in FILE for registries, instead of the
    /// built-in Mozilla roots.
    #[arg(long, value_name = "FILE")]
    registry_ca: Option<PathBuf>,

    /// Registry credentials (auths with base64 `auth`, as `podman login`
    /// and `docker login` write them). Default: $REGISTRY_AUTH_FILE, then
    /// $XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json
    /// ($DOCKER_CONFIG/config.json).
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,

    /// Wrap exec probes (liveness, readiness, startup) too, so they see the
    /// secrets.
    #[arg(long)]
    wrap_probes: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Wrap(args) = cli.command;
    match run(&args) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                let _ = writeln!(std::io::stderr(), "kubectl-r4: writing stdout: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line, whatever a registry or a library put in it: every
            // control character escaped.
            let line: String = e
                .chars()
                .flat_map(|c| {
                    let escaped: Vec<char> = if c.is_control() {
                        c.escape_default().collect()
                    } else {
                        vec![c]
                    };
                    escaped
                })
                .collect();
            let _ = writeln!(std::io::stderr(), "kubectl-r4: {line}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &WrapArgs) -> Result<String, String> {
    let mut input = Vec::new();
    match args.file.as_deref() {
        None => std::io::stdin().read_to_end(&mut input),
        Some(p) if p.as_os_str() == "-" => std::io::stdin().read_to_end(&mut input),
        Some(p) => std::fs::File::open(p).and_then(|mut f| f.read_to_end(&mut input)),
    }
    .map_err(|e| {
        let what = args
            .file
            .as_deref()
            .map_or("stdin".to_owned(), |p| p.display().to_string());
        format!("reading {what}: {e}")
    })?;
    let text = String::from_utf8(input).map_err(|_| "the input is not UTF-8".to_owned())?;
    let platforms = args
        .platform
        .iter()
        .map(|p| {
            p.trim()
                .parse::<image::Platform>()
                .map_err(|e| format!("--platform {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.image.is_empty() || args.image.contains(char::is_whitespace) {
        return Err("--image: not an image reference".into());
    }
    let mut registry = registry::Registry::new(registry::Settings {
        insecure: args.insecure_registry.clone(),
        ca_file: args.registry_ca.clone(),
        auth_files: auth::auth_files(args.authfile.as_deref()),
        platforms,
    })?;
    let opts = wrap::Options {
        image: args.image.clone(),
        wrap_probes: args.wrap_probes,
    };
    wrap::wrap_stream(&text, &opts, &mut registry)
}
