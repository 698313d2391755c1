//! Command-line types only: the doc comments below are the help text.
//!
//! Flags follow Docker's names and meanings wherever Docker has the feature, so what a
//! student learns here transfers; dockling's own switches (`--trace`, `--step`, `--layers`,
//! `--rootfs`, `--no-cgroups`) turn parts of the engine off or show them working.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub mod runtime;

/// The parser of a flag taking one of an engine type's values (`T::VARIANTS`: value, name,
/// help). The engine's enums do not derive clap's `ValueEnum` (clap stays in `cli`), so this
/// lists the names and their help the way `ValueEnum` does, and turns the name `clap` checked
/// into the value with the type's own `FromStr`.
fn engine_enum<T>(
    variants: &'static [(T, &'static str, &'static str)],
) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Debug,
{
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        variants
            .iter()
            .map(|(_, name, help)| PossibleValue::new(*name).help(*help)),
    )
    .map(|name| {
        name.parse::<T>()
            .expect("clap accepts only the names of VARIANTS")
    })
}

/// `--lang` (or `DOCKLING_LANG`): a language the explanations ship in, by its code or a locale
/// naming it (`ko_KR.UTF-8`); anything else is refused with the list.
fn parse_lang(value: &str) -> Result<&'static str, String> {
    crate::trace::catalog::language_code(value).ok_or_else(|| {
        format!(
            "dockling explains in {} (or give a locale naming one, like ko_KR.UTF-8)",
            crate::trace::catalog::language_list()
        )
    })
}

/// A small but real container engine, built to be looked into.
#[derive(Debug, Parser)]
#[command(name = "dockling", version, about, propagate_version = true)]
pub struct Cli {
    /// Where images and containers are stored
    #[arg(long, global = true, env = "DOCKLING_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Config file with defaults (YAML)
    #[arg(long, global = true, env = "DOCKLING_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Language of the trace explanations, step titles and hints: en or ko (default: the
    /// locale, LC_ALL, LC_MESSAGES or LANG, else en). Errors stay in English, as Docker's
    #[arg(long, global = true, env = "DOCKLING_LANG", value_name = "LANG", value_parser = parse_lang)]
    pub lang: Option<&'static str>,
    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parse a command line as [`Cli::try_parse_from`] does, with the same result, output and
    /// errors. `dockling run …` (the start-up path) is parsed by [`RunCli`], a tree of the
    /// global options and `run` alone: building clap's whole tree (every subcommand's every
    /// flag) cost a run ~200 page faults of the binary's code (most of a megabyte of its peak
    /// RSS) and a few hundred microseconds. Anything that parser does not accept (help,
    /// version, a bad flag) is parsed again by the whole tree, which prints exactly what it
    /// always did; what it accepts, the whole tree would have parsed the same way (the same
    /// global options and `RunArgs`; `tests::the_run_parser_agrees_with_the_whole_tree`).
    pub fn parse_args(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
        if first_word_is_run(&args) {
            if let Ok(fast) = RunCli::try_parse_from(&args) {
                let RunOnly::Run(run) = fast.command;
                return Ok(Cli {
                    root: fast.root,
                    config: fast.config,
                    lang: fast.lang,
                    command: Command::Run(run),
                });
            }
        }
        Cli::try_parse_from(args)
    }
}

/// True when the command (the first word that is neither a global option nor its value) is
/// `run`.
fn first_word_is_run(args: &[std::ffi::OsString]) -> bool {
    let mut words = args.iter().skip(1).map(|a| a.as_encoded_bytes());
    while let Some(w) = words.next() {
        match w {
            b"--root" | b"--config" | b"--lang" => {
                words.next();
            }
            _ if w.starts_with(b"--root=")
                || w.starts_with(b"--config=")
                || w.starts_with(b"--lang=") => {}
            _ => return w == b"run",
        }
    }
    false
}

/// [`Cli`] with `run` as its only subcommand (see [`Cli::parse_args`]): the global options
/// are copies of [`Cli`]'s, which a test holds equal.
#[derive(Debug, Parser)]
#[command(name = "dockling", version, about, propagate_version = true)]
struct RunCli {
    #[arg(long, global = true, env = "DOCKLING_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,
    #[arg(long, global = true, env = "DOCKLING_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long, global = true, env = "DOCKLING_LANG", value_name = "LANG", value_parser = parse_lang)]
    lang: Option<&'static str>,
    #[command(subcommand)]
    command: RunOnly,
}

#[derive(Debug, Subcommand)]
enum RunOnly {
    /// Run a command in a new container
    Run(RunArgs),
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an image from a root filesystem tarball (like `docker import`)
    Import(ImportArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// List images
    Images(ImagesArgs),
    /// Run a command in a new container
    Run(RunArgs),
    /// List containers
    Ps(PsArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Pause all processes within one or more containers
    Pause(WaitArgs),
    /// Unpause all processes within one or more containers
    Unpause(WaitArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Manage builds (the build cache)
    Builder(BuilderArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Manage containers
    Container(ContainerArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Show low-level information on images or containers as JSON
    Inspect(InspectArgs),
    /// Show the plan of an operation, step by step, with the syscalls it would make
    Explain(ExplainArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// The lab registry on loopback that stands in for Docker Hub
    Lab(LabArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Manage images
    Image(ImageArgs),
    /// The lessons: list, run, check your own work
    Lesson(LessonArgs),
    /// Run every lesson in order against the lab registry (starting it if needed)
    Tour(TourArgs),
    /// Manage dockling itself: check what this host offers, disk usage, prune
    System(SystemArgs),
    /// Manage volumes
    Volume(VolumeArgs),
    /// Manage networks
    Network(NetworkArgs),
    /// Draw a JSON trace (`run --trace-file`) as a picture: steps by subsystem, namespaces, mounts
    Trace(TraceArgs),
    /// The port proxy of a container (started by dockling itself, not by hand)
    #[command(hide = true)]
    Proxy(ProxyArgs),
    /// dockling as an OCI runtime, with runc's command line (`dockling runtime --help`;
    /// also installed as `dockling-runc`)
    #[command(disable_help_flag = true)]
    Runtime(RuntimeArgs),
}

/// `dockling runtime …`: everything after `runtime` goes to the runtime's own parser
/// ([`runtime::RuntimeCli`]), whose global flags are runc's, not dockling's.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// The runtime's flags, subcommand and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<std::ffi::OsString>,
}

/// `dockling proxy` (hidden): serve published ports whose sockets it inherits on fds 4..,
/// reporting on fd 3 (see `network::proxy`).
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The container's address the traffic goes to
    #[arg(long)]
    pub container_ip: std::net::Ipv4Addr,
    /// One published port, PROTO:IP:HOSTPORT:CONTAINERPORT; the n-th is on fd 4+n
    #[arg(long = "map", required = true)]
    pub maps: Vec<String>,
    /// Connections carried at once
    #[arg(long, default_value_t = crate::network::proxy::MAX_CONNECTIONS)]
    pub max_connections: usize,
}

/// The network flags of `run` besides `--network`.
#[derive(Debug, Clone, Default, Args)]
pub struct NetFlags {
    /// IPv4 address (e.g., 172.30.100.104), on a user network
    #[arg(long, value_name = "string")]
    pub ip: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "list")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Add link to another container (name[:alias])
    #[arg(long, value_name = "list")]
    pub link: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "string")]
    pub mac_address: Option<String>,
}

/// `dockling network`.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// What to do
    #[command(subcommand)]
    pub command: NetworkCommand,
}

/// The subcommands of `dockling network`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create {
        /// Driver to manage the Network (only "bridge")
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Subnet in CIDR format that represents a network segment
        #[arg(long, value_name = "strings")]
        subnet: Option<String>,
        /// IPv4 Gateway for the master subnet
        #[arg(long, value_name = "strings")]
        gateway: Option<String>,
        /// Set metadata on a network (KEY=VALUE)
        #[arg(long = "label", value_name = "list")]
        labels: Vec<String>,
        /// The network's name
        name: String,
    },
    /// List networks
    #[command(visible_alias = "list")]
    Ls {
        /// Only display network IDs
        #[arg(short, long)]
        quiet: bool,
        /// Provide filter values (e.g. "name=NAME", "driver=bridge", "id=ID")
        #[arg(short, long = "filter", value_name = "filter")]
        filters: Vec<String>,
        /// Format output using a Go template ('table', 'json' or 'TEMPLATE')
        #[arg(long)]
        format: Option<String>,
        /// Do not truncate the output
        #[arg(long)]
        no_trunc: bool,
    },
    /// Display detailed information on one or more networks
    Inspect {
        /// Format output using a Go template ('json' or 'TEMPLATE')
        #[arg(short, long)]
        format: Option<String>,
        /// Networks, by name or id
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm {
        /// Do not error if the network does not exist
        #[arg(short, long)]
        force: bool,
        /// Networks, by name or id
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Connect a running container to a network (one more interface, eth1…)
    Connect {
        /// IPv4 address (e.g., 172.30.100.104)
        #[arg(long, value_name = "string")]
        ip: Option<String>,
        /// Add network-scoped alias for the container
        #[arg(long = "alias", value_name = "strings")]
        aliases: Vec<String>,
        /// The network
        network: String,
        /// The container
        container: String,
    },
    /// Disconnect a container from a network it was connected to
    Disconnect {
        /// Force the container to disconnect from a network
        #[arg(short, long)]
        force: bool,
        /// The network
        network: String,
        /// The container
        container: String,
    },
    /// Remove all unused networks
    Prune {
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
    },
}

/// `dockling volume`.
#[derive(Debug, Args)]
pub struct VolumeArgs {
    /// What to do
    #[command(subcommand)]
    pub command: VolumeCommand,
}

/// The subcommands of `dockling volume`.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create {
        /// Specify volume driver name (only "local")
        #[arg(short, long, default_value = "local")]
        driver: String,
        /// Set metadata for a volume (KEY=VALUE)
        #[arg(long = "label", value_name = "LIST")]
        labels: Vec<String>,
        /// Specify volume name
        #[arg(long = "name")]
        name_flag: Option<String>,
        /// The volume's name (random when omitted)
        name: Option<String>,
    },
    /// List volumes
    #[command(visible_alias = "list")]
    Ls {
        /// Only display volume names
        #[arg(short, long)]
        quiet: bool,
        /// Provide filter values (e.g. "dangling=true", "name=NAME", "label=KEY")
        #[arg(short, long = "filter", value_name = "FILTER")]
        filters: Vec<String>,
        /// Format output using a Go template ('table', 'json' or 'TEMPLATE')
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on one or more volumes
    Inspect {
        /// Format output using a Go template ('json' or 'TEMPLATE')
        #[arg(short, long)]
        format: Option<String>,
        /// Volumes, by name
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove one or more volumes. You cannot remove a volume that is in use by a container.
    #[command(visible_alias = "remove")]
    Rm {
        /// Force the removal of one or more volumes (a missing one is not an error)
        #[arg(short, long)]
        force: bool,
        /// Volumes, by name
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove unused local volumes (anonymous ones only, unless -a)
    Prune {
        /// Remove all unused volumes, not just anonymous ones
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
        /// Provide filter values (e.g. "label=KEY")
        #[arg(long = "filter", value_name = "FILTER")]
        filters: Vec<String>,
    },
}

/// `dockling trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// What to do
    #[command(subcommand)]
    pub command: TraceCommand,
}

/// `dockling trace` subcommands.
#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Render a JSON trace as an SVG: a timeline of the steps by subsystem, the namespaces
    /// the container got and the mounts it ends with
    Render(TraceRenderArgs),
}

/// `dockling trace render`.
#[derive(Debug, Args)]
pub struct TraceRenderArgs {
    /// The trace: a file `--trace-file` (or `--trace=json`) wrote
    pub file: std::path::PathBuf,
    /// Write the SVG to this file (default: stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Place events at equal distances in their order, not at their times
    #[arg(long)]
    pub by_order: bool,
}

/// `dockling builder`.
#[derive(Debug, Args)]
pub struct BuilderArgs {
    /// What to do
    #[command(subcommand)]
    pub command: BuilderCommand,
}

/// `dockling builder` subcommands.
#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Remove build cache: the images build steps made that no tag or container uses, and
    /// the directories of RUN --mount=type=cache
    Prune(BuilderPruneArgs),
}

/// `dockling builder prune`.
#[derive(Debug, Args)]
pub struct BuilderPruneArgs {
    /// Remove all build cache (dockling's cache has no internal records: the same as without)
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `dockling system`.
#[derive(Debug, Args)]
pub struct SystemArgs {
    /// What to do
    #[command(subcommand)]
    pub command: SystemCommand,
}

/// `dockling system` subcommands.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Check the kernel features, cgroup mode, overlayfs, seccomp and store permissions
    /// dockling relies on (exit 1 when something required is missing)
    Check,
    /// Check the store: every blob's digest, the index, each image's blobs and unpacked
    /// layers, orphans, temporary files, container records, leftover cgroups and mounts
    /// (exit 1 when something is wrong)
    Fsck {
        /// Repair what can be proven broken or garbage, and say what was done
        #[arg(long)]
        repair: bool,
    },
    /// Show dockling disk usage
    Df,
    /// Remove unused data: stopped containers, dangling (or, with -a, unused) images, and
    /// what interrupted commands left in the store
    Prune(SystemPruneArgs),
}

/// `dockling system prune`.
#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `dockling lesson`.
#[derive(Debug, Args)]
pub struct LessonArgs {
    /// What to do
    #[command(subcommand)]
    pub command: LessonCommand,
}

/// `dockling lesson` subcommands.
#[derive(Debug, Subcommand)]
pub enum LessonCommand {
    /// The lessons, numbered, each with its goal
    List,
    /// Run a lesson: its prose, each real command, its real output, a check
    Run {
        /// The lesson's number
        number: usize,
        /// Show each step (its text and command), then wait for Enter before running it (q stops)
        #[arg(long)]
        step: bool,
        /// Start at this step (counted from 1); the steps before it run first, without being shown
        #[arg(long, value_name = "STEP", default_value_t = 1)]
        from: usize,
        /// How to show it: text, markdown (a book chapter) or progress
        #[arg(long, default_value_t = crate::lessons::runner::Format::Text, value_parser = engine_enum(crate::lessons::runner::Format::VARIANTS))]
        format: crate::lessons::runner::Format,
    },
    /// Check your own work for a lesson ("container web is running: ok")
    Check {
        /// The lesson's number
        number: usize,
    },
}

/// `dockling tour`.
#[derive(Debug, Args)]
pub struct TourArgs {
    /// Where the lab registry listens if the tour starts it
    #[arg(long, default_value = crate::lab::DEFAULT_ADDR, value_name = "IP:PORT")]
    pub addr: String,
}

/// `dockling image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// What to do with images
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// `dockling image` subcommands (Docker's management commands).
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Show low-level information on one or more images as JSON
    Inspect {
        /// Format output using a Go template ('json' or 'TEMPLATE')
        #[arg(short, long)]
        format: Option<String>,
        /// Images, by name or ID
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Show the history of an image
    History(HistoryArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Create an image from a root filesystem tarball
    Import(ImportArgs),
    /// Show an image's layers: what each adds, changes and whites out, and the bytes hidden
    Layers(ImageLayersArgs),
    /// Show what changed between two images (A added, C changed, D deleted)
    Diff(ImageDiffArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
}

/// `dockling image layers`.
#[derive(Debug, Args)]
pub struct ImageLayersArgs {
    /// Show which layers give, replace or hide this path instead of the table
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// The image
    pub image: String,
}

/// `dockling image diff`.
#[derive(Debug, Args)]
pub struct ImageDiffArgs {
    /// The image compared from
    pub a: String,
    /// The image compared to
    pub b: String,
}

/// `dockling history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format (default true)
    // Docker's boolean flag: `-H` alone is true, `-H=false` / `--human=false` prints raw
    // sizes (bytes) and RFC 3339 dates.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", hide_default_value = true, hide_possible_values = true)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// The image
    pub image: String,
}

/// `dockling image prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all images no container uses, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// When `run` pulls its image, as Docker's `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// Every time
    Always,
    /// When the image is not in the store
    Missing,
    /// Never: a missing image is an error
    Never,
}

/// `dockling lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// What to do with the lab
    #[command(subcommand)]
    pub command: LabCommand,
}

/// `dockling lab` subcommands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start the lab registry, push the lesson images, make it the Docker Hub mirror
    Up {
        /// Where the registry listens (loopback only)
        #[arg(long, default_value = crate::lab::DEFAULT_ADDR, value_name = "IP:PORT")]
        addr: String,
        /// Also build and push a bigger image: `debian` (debootstrap --variant=minbase from
        /// apt's own mirror, plus a layer with apache2: `debian:latest`, `debian:apache2`)
        #[arg(long, value_name = "IMAGE", value_parser = clap::builder::PossibleValuesParser::new(crate::lab::EXTRAS))]
        with: Vec<String>,
    },
    /// Say what runs where (exit 1 when the lab is down)
    Status,
    /// Stop the lab registry and remove the mirror (its images are kept)
    Down,
}

/// What `pull` and `push` show.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Show every HTTP exchange with the registry and why: pretty (default) or json
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "pretty", value_parser = engine_enum(crate::trace::Format::VARIANTS))]
    pub trace: Option<crate::trace::Format>,
}

/// `dockling push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Output and tracing
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Image to push: NAME[:TAG]
    pub name: String,
}

/// `dockling login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Registry (default: Docker Hub)
    pub server: Option<String>,
}

/// `dockling logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry (default: Docker Hub)
    pub server: Option<String>,
}

/// `dockling pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Output and tracing
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Image to pull: NAME[:TAG|@DIGEST]
    pub name: String,
}

/// `dockling tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

/// `dockling import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Tarball of a root filesystem (plain, gzip), or - for standard input
    pub file: String,
    /// Name for the image, like busybox:latest
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Set the commit message for the imported image
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
}

/// `dockling save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Archive format
    #[arg(long, default_value = "docker-archive", value_parser = engine_enum(crate::image::save::SaveFormat::VARIANTS))]
    pub format: crate::image::save::SaveFormat,
    /// The images (NAME[:TAG] or ID)
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `dockling load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

/// `dockling export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The container
    pub container: String,
}

/// `dockling images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images of builds)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Format output using a Go template ('table', 'table TEMPLATE', 'json' or 'TEMPLATE')
    #[arg(long)]
    pub format: Option<String>,
    /// Only images of this repository (optionally :tag)
    pub repository: Option<String>,
}

/// `dockling ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a Go template ('table', 'table TEMPLATE', 'json' or 'TEMPLATE')
    #[arg(long)]
    pub format: Option<String>,
}

/// `dockling stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        default_value_t = 10
    )]
    pub time: i64,
    /// Signal to send first (default: the image's StopSignal, else SIGTERM)
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Trace every syscall with its reason on stderr: pretty (default) or json
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "pretty", value_parser = engine_enum(crate::trace::Format::VARIANTS))]
    pub trace: Option<crate::trace::Format>,
    /// Containers, by name or ID (prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `dockling top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// The container, by name or ID (prefix)
    pub container: String,
    /// Options for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `dockling port`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// The container, by name or ID (prefix)
    pub container: String,
    /// The container's port, with its protocol (`80`, `80/tcp`, `53/udp`)
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub private_port: Option<String>,
}

/// `dockling start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals (the container runs in the foreground)
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Containers, by name or ID (prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `dockling attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// The container, by name or ID (prefix)
    pub container: String,
}

/// `dockling kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// Containers, by name or ID (prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `dockling wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Containers, by name or ID (prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `dockling exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep STDIN open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (NAME=value, or NAME to take it from here)
    #[arg(short, long = "env", value_name = "LIST")]
    pub env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Trace every syscall with its reason on stderr: pretty (default) or json
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "pretty", value_parser = engine_enum(crate::trace::Format::VARIANTS))]
    pub trace: Option<crate::trace::Format>,
    /// Write the trace to this file (created 0600, truncated) instead of stderr, so the
    /// container's own stderr does not mix into it; json unless --trace says otherwise
    #[arg(long = "trace-file", value_name = "PATH")]
    pub trace_file: Option<std::path::PathBuf>,
    /// Pause before each step: Enter goes on, q aborts
    #[arg(long)]
    pub step: bool,
    /// The container, by name or ID (prefix)
    pub container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `dockling cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Trace every syscall with its reason on stderr: pretty (default) or json
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "pretty", value_parser = engine_enum(crate::trace::Format::VARIANTS))]
    pub trace: Option<crate::trace::Format>,
    /// CONTAINER:SRC_PATH, or a local SRC_PATH (`-`: a tar stream on stdin)
    #[arg(allow_hyphen_values = true)]
    pub src: String,
    /// CONTAINER:DEST_PATH, or a local DEST_PATH (`-`: a tar stream on stdout)
    #[arg(allow_hyphen_values = true)]
    pub dest: String,
}

/// `dockling commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change", value_name = "CHANGE")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit (default true)
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", hide_default_value = true, hide_possible_values = true)]
    pub pause: bool,
    /// Trace every step and syscall with its reason on stderr: pretty (default) or json
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "pretty", value_parser = engine_enum(crate::trace::Format::VARIANTS))]
    pub trace: Option<crate::trace::Format>,
    /// The container, by name or ID (prefix)
    pub container: String,
    /// The new image's name: REPOSITORY[:TAG] (none: an untagged image)
    pub reference: Option<String>,
}

/// `dockling build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short, long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short, long)]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Set type of progress output ("auto", "plain", "tty", "quiet"); dockling always prints plain
    #[arg(long, default_value = "auto", value_parser = ["auto", "plain", "tty", "quiet", "rawjson"])]
    pub progress: String,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Set the networking mode for the RUN instructions during build (default, none, host, bridge)
    #[arg(long)]
    pub network: Option<String>,
    /// Trace each instruction (its container, then its commit) on stderr: pretty (default) or json
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "pretty", value_parser = engine_enum(crate::trace::Format::VARIANTS))]
    pub trace: Option<crate::trace::Format>,
    /// The build context: a local directory
    pub context: String,
}

/// `dockling diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The container, by name or ID (prefix)
    pub container: String,
}

/// `dockling logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Trace how the log is opened and followed on stderr: pretty (default) or json
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "pretty", value_parser = engine_enum(crate::trace::Format::VARIANTS))]
    pub trace: Option<crate::trace::Format>,
    /// The container, by name or ID (prefix)
    pub container: String,
}

/// `dockling rename`.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The container, by name or ID (prefix)
    pub container: String,
    /// Its new name
    pub new_name: String,
}

/// `dockling container`: Docker's management command for containers.
#[derive(Debug, Args)]
pub struct ContainerArgs {
    /// What to do
    #[command(subcommand)]
    pub command: ContainerCommand,
}

/// The subcommands of `dockling container`.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(PsArgs),
    /// Create and run a new container from an image
    Run(Box<RunArgs>),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Display detailed information on one or more containers
    Inspect {
        /// Format output using a Go template ('json' or 'TEMPLATE')
        #[arg(short, long)]
        format: Option<String>,
        /// Containers, by name or ID
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Pause all processes within one or more containers
    Pause(WaitArgs),
    /// Unpause all processes within one or more containers
    Unpause(WaitArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Remove all stopped containers
    Prune(ContainerPruneArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
}

/// `dockling container prune`.
#[derive(Debug, Args)]
pub struct ContainerPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `dockling rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    /// Containers, by name or ID (prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `dockling rmi`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image, even if a stopped container uses it
    #[arg(short, long)]
    pub force: bool,
    /// Images, by name or ID (prefix)
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `dockling inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Only look at this kind of object
    #[arg(long = "type", value_parser = ["image", "container", "volume", "network"])]
    pub kind: Option<String>,
    /// Format output using a Go template ('json' or 'TEMPLATE')
    #[arg(short, long)]
    pub format: Option<String>,
    /// Images, containers or volumes, by name or ID
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `dockling explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The operation to explain
    #[command(subcommand)]
    pub what: ExplainWhat,
}

/// What `explain` can explain.
// Parsed once per process: the size of the small variant does not matter (and boxing `Run`
// would make `Command::Run` the outsized variant of `Command` instead).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ExplainWhat {
    /// The plan of `dockling run` with these flags
    Run(RunArgs),
    /// The plan of `dockling commit` with these flags: what it would freeze, walk and write
    Commit(CommitArgs),
    /// The path a connection to a published host port takes now
    Port {
        /// The host port: N, N/tcp or N/udp
        port: String,
    },
}

/// `dockling run`: Docker's flags, plus the switches that show the engine's parts.
///
/// Like Docker, `-h` is `--hostname` here, so help is `--help` only.
#[derive(Debug, Args, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Proxy received signals to the process (not with -t, as Docker)
    #[arg(long = "sig-proxy", num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Log driver options of a detached container (json-file: max-size=10m, max-file=3)
    #[arg(long = "log-opt", value_name = "OPT")]
    pub log_opts: Vec<String>,
    /// Restart policy to apply when a container exits (no, on-failure[:max-retries], always, unless-stopped)
    #[arg(long, default_value = "no", value_parser = parse_restart)]
    pub restart: crate::spec::RestartPolicy,
    /// Keep STDIN open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (NAME=value, or NAME to take it from here)
    #[arg(short, long = "env", value_name = "LIST")]
    pub env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Bind mount a volume (HOST-DIR:CONTAINER-DIR[:ro|rw], VOLUME-NAME:CONTAINER-DIR[:ro],
    /// or CONTAINER-DIR for an anonymous volume)
    #[arg(short, long = "volume", value_name = "LIST")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container (type=volume|bind|tmpfs,source=…,target=…,
    /// readonly, volume-nocopy, tmpfs-size=, tmpfs-mode=, consistency=)
    #[arg(long, value_name = "MOUNT")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (/PATH[:rw,exec,nosuid,size=…,mode=…])
    #[arg(long, value_name = "LIST")]
    pub tmpfs: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// PID namespace to use: "host" shares the host's process ids
    #[arg(long, value_name = "string")]
    pub pid: Option<String>,
    /// UTS namespace to use: "host" shares the host's hostname
    #[arg(long, value_name = "string")]
    pub uts: Option<String>,
    /// IPC mode to use: "private" (default) or "host"
    #[arg(long, value_name = "string")]
    pub ipc: Option<String>,
    /// Connect a container to a network: "bridge" (default: an address on dockling0), a user network (dockling network create), "none" (only loopback) or "host"
    #[arg(long, alias = "net", value_name = "network")]
    pub network: Option<String>,
    /// --ip, --network-alias, --add-host, --dns, --link
    #[command(flatten)]
    pub net: NetFlags,
    /// Publish a container's port(s) to the host ([ip:][hostPort:]containerPort[/tcp|udp])
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports (PORT[-END][/tcp|udp])
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,
    /// How published ports reach the container: proxy (a `dockling proxy` process) or nat (nftables rules)
    #[arg(long = "publish-mode", value_name = "MODE", value_parser = engine_enum(crate::spec::PublishMode::VARIANTS))]
    pub publish_mode: Option<crate::spec::PublishMode>,
    /// Cgroup namespace to use: "private" (default) or "host"
    #[arg(long, value_name = "string")]
    pub cgroupns: Option<String>,
    /// Give extended privileges to this container (all capabilities, nothing masked)
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Security options: seccomp=unconfined, no-new-privileges
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit (like 64m, 1g; 0 for none)
    // A value starting with `-` is the flag's value, as Docker takes it: `-m -1` gets the
    // engine's "invalid size", not clap's "use '-- -1'" tip.
    #[arg(short, long, value_name = "bytes", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Number of CPUs (like 0.5; 0 for no limit)
    // Kept as text and checked by the engine (cgroups::parse_cpus), so `nan`, `inf` and `-1`
    // get Docker's messages rather than a float that passes or clap's tip.
    #[arg(long, value_name = "decimal", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Trace every syscall with its reason on stderr: pretty (default) or json
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "pretty", value_parser = engine_enum(crate::trace::Format::VARIANTS))]
    pub trace: Option<crate::trace::Format>,
    /// Write the trace to this file (created 0600, truncated) instead of stderr, so the
    /// container's own stderr does not mix into it; json unless --trace says otherwise
    #[arg(long = "trace-file", value_name = "PATH")]
    pub trace_file: Option<std::path::PathBuf>,
    /// Pause before each step of the start: Enter goes on, q aborts and undoes
    #[arg(long)]
    pub step: bool,
    /// How the image layers become the root filesystem: overlay, copy or erofs (each layer
    /// mounted from its tar, nothing unpacked)
    #[arg(long, value_name = "MODE", value_parser = engine_enum(crate::spec::LayersMode::VARIANTS))]
    pub layers: Option<crate::spec::LayersMode>,
    /// How the root is switched: pivot_root or chroot (to see why chroot leaks)
    #[arg(long, value_name = "MODE", value_parser = engine_enum(crate::spec::RootfsMode::VARIANTS))]
    pub rootfs: Option<crate::spec::RootfsMode>,
    /// Do not create a cgroup (no resource limits, no device rules: without --privileged the
    /// container then gets no CAP_MKNOD and its image is mounted nodev)
    #[arg(long)]
    pub no_cgroups: bool,
    /// Image to run
    pub image: String,
    /// Command and arguments (default: the image's ENTRYPOINT and CMD)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn parse_restart(s: &str) -> Result<crate::spec::RestartPolicy, String> {
    s.parse()
}

impl Command {
    /// True for the commands that only read and print (`ps`, `images`, `inspect`, `history`,
    /// `explain`): nothing is left half done when a closed pipe ends them.
    pub fn only_prints(&self) -> bool {
        match self {
            Command::Images(_)
            | Command::Ps(_)
            | Command::Logs(_)
            | Command::Inspect(_)
            | Command::Port(_)
            | Command::History(_)
            | Command::Diff(_)
            | Command::Explain(_)
            | Command::Trace(_) => true,
            Command::Image(a) => matches!(
                a.command,
                ImageCommand::Ls(_)
                    | ImageCommand::Inspect { .. }
                    | ImageCommand::History(_)
                    | ImageCommand::Layers(_)
                    | ImageCommand::Diff(_)
            ),
            Command::Volume(a) => matches!(
                a.command,
                VolumeCommand::Ls { .. } | VolumeCommand::Inspect { .. }
            ),
            Command::Network(a) => matches!(
                a.command,
                NetworkCommand::Ls { .. } | NetworkCommand::Inspect { .. }
            ),
            Command::Container(a) => matches!(
                a.command,
                ContainerCommand::Ls(_)
                    | ContainerCommand::Inspect { .. }
                    | ContainerCommand::Logs(_)
                    | ContainerCommand::Diff(_)
            ),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn engine_enums_parse_every_name_they_list() {
        use crate::spec::{LayersMode, RootfsMode};
        let run = |flags: &[&str]| {
            let argv = ["dockling", "run"].iter().chain(flags).chain(&["busybox"]);
            let Command::Run(r) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not run")
            };
            r
        };
        for (mode, name, _) in LayersMode::VARIANTS {
            assert_eq!(run(&["--layers", name]).layers, Some(*mode));
        }
        for (mode, name, _) in RootfsMode::VARIANTS {
            assert_eq!(run(&["--rootfs", name]).rootfs, Some(*mode));
        }
        for (format, name, _) in crate::trace::Format::VARIANTS {
            assert_eq!(run(&[&format!("--trace={name}")]).trace, Some(*format));
        }
        assert!(
            Cli::try_parse_from(["dockling", "run", "--layers", "bogus", "busybox"])
                .unwrap_err()
                .to_string()
                .contains("[possible values: overlay, copy, erofs]")
        );
        for (format, name, _) in crate::lessons::runner::Format::VARIANTS {
            let cli = Cli::try_parse_from(["dockling", "lesson", "run", "1", "--format", name]);
            let Command::Lesson(l) = cli.unwrap().command else {
                panic!("not lesson")
            };
            let LessonCommand::Run { format: parsed, .. } = l.command else {
                panic!("not lesson run")
            };
            assert_eq!(parsed, *format);
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        RunCli::command().debug_assert();
    }

    /// `Cli::parse_args` parses `run` with a tree of `run` alone: its global options must stay
    /// the whole tree's, and every line it accepts must come out as the whole tree's parse;
    /// what it refuses goes to the whole tree (same help, version and errors).
    #[test]
    fn the_run_parser_agrees_with_the_whole_tree() {
        let describe = |c: &clap::Command| -> Vec<String> {
            let mut args: Vec<String> = c
                .get_arguments()
                .filter(|a| a.is_global_set())
                // All but the help text (only help shows it, and help is the whole tree's).
                .map(|a| {
                    format!(
                        "{:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                        a.get_id(),
                        a.get_long(),
                        a.get_env(),
                        a.get_value_names(),
                        a.get_action(),
                        a.get_value_parser(),
                        a.get_num_args()
                    )
                })
                .collect();
            args.sort();
            args
        };
        assert_eq!(describe(&RunCli::command()), describe(&Cli::command()));
        let lines = [
            "dockling run --rm --network none busybox true",
            "dockling --root /r run -it -e A=1 -v /a:/b busybox sh -c 'x'",
            "dockling run --root /r --lang ko --trace=json busybox",
            "dockling --config=/c.yaml --lang=en run -d --name web -p 80:80 httpd",
            "dockling run busybox --rm echo -h --help",
            "dockling run -h host --network=none busybox",
        ];
        for line in lines {
            let argv: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
            let fast = RunCli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{line}: {e}"));
            let whole = Cli::try_parse_from(&argv).unwrap();
            let RunOnly::Run(run) = fast.command;
            let fast = Cli {
                root: fast.root,
                config: fast.config,
                lang: fast.lang,
                command: Command::Run(run),
            };
            assert_eq!(format!("{fast:?}"), format!("{whole:?}"), "{line}");
            assert!(first_word_is_run(&argv), "{line}");
        }
        for line in [
            "dockling run --help",
            "dockling run --version",
            "dockling run --bogus busybox",
            "dockling run",
            "dockling --help run",
            "dockling ps",
            "dockling --root run ps",
        ] {
            let argv: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
            let whole = Cli::try_parse_from(&argv).map(|c| format!("{c:?}"));
            let got = Cli::parse_args(argv).map(|c| format!("{c:?}"));
            match (got, whole) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{line}"),
                (Err(a), Err(b)) => {
                    assert_eq!(
                        (a.kind(), a.to_string()),
                        (b.kind(), b.to_string()),
                        "{line}"
                    )
                }
                (a, b) => panic!("{line}: {a:?} vs {b:?}"),
            }
        }
    }

    #[test]
    fn run_takes_docker_flags_and_the_command_after_the_image() {
        let cli = Cli::try_parse_from([
            "dockling",
            "run",
            "--rm",
            "-h",
            "box",
            "-e",
            "A=1",
            "busybox",
            "sh",
            "-c",
            "echo -n hi",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        assert_eq!(r.hostname.as_deref(), Some("box"));
        assert_eq!(r.command, vec!["sh", "-c", "echo -n hi"]);
        let cli = Cli::try_parse_from(["dockling", "run", "--trace", "busybox", "true"]).unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        assert_eq!(r.trace, Some(crate::trace::Format::Pretty));
        assert_eq!(r.image, "busybox");
    }

    #[test]
    fn history_human_is_a_docker_boolean_flag_whose_help_says_what_it_does() {
        let human = |flags: &[&str]| {
            let argv = ["dockling", "history"]
                .iter()
                .chain(flags)
                .chain(&["busybox"]);
            let Command::History(h) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not history")
            };
            h.human
        };
        assert!(human(&[]));
        assert!(human(&["-H"]));
        assert!(!human(&["-H=false"]));
        assert!(!human(&["--human=false"]));
        assert!(human(&["--human=true"]));
        let help = Cli::command()
            .find_subcommand_mut("history")
            .unwrap()
            .render_help()
            .to_string();
        assert!(
            help.contains("Print sizes and dates in human readable format (default true)"),
            "{help}"
        );
    }

    #[test]
    fn build_takes_docker_s_flags() {
        let Command::Build(b) = Cli::try_parse_from([
            "dockling",
            "build",
            "-t",
            "web:1",
            "--tag",
            "web:latest",
            "-f",
            "Other.df",
            "--build-arg",
            "A=1",
            "--build-arg",
            "B",
            "--target",
            "final",
            "--no-cache",
            "--progress",
            "plain",
            "--network",
            "none",
            "-q",
            ".",
        ])
        .unwrap()
        .command
        else {
            panic!("not build")
        };
        assert_eq!(b.tags, ["web:1", "web:latest"]);
        assert_eq!(b.file.as_deref(), Some("Other.df"));
        assert_eq!(b.build_args, ["A=1", "B"]);
        assert_eq!(b.target.as_deref(), Some("final"));
        assert!(b.no_cache && b.quiet);
        assert_eq!(b.progress, "plain");
        assert_eq!(b.network.as_deref(), Some("none"));
        assert_eq!(b.context, ".");
        assert!(Cli::try_parse_from(["dockling", "build", "--progress", "fancy", "."]).is_err());
    }

    #[test]
    fn commit_takes_docker_s_flags() {
        let parse = |argv: &[&str]| match Cli::try_parse_from(argv).unwrap().command {
            Command::Commit(c) => c,
            other => panic!("{other:?}"),
        };
        let c = parse(&[
            "dockling",
            "commit",
            "-a",
            "me",
            "-m",
            "msg",
            "-c",
            "CMD [\"sh\"]",
            "--change",
            "ENV A=1",
            "web",
            "img:1",
        ]);
        assert_eq!(c.author.as_deref(), Some("me"));
        assert_eq!(c.message.as_deref(), Some("msg"));
        assert_eq!(c.changes, ["CMD [\"sh\"]", "ENV A=1"]);
        assert!(c.pause, "--pause is on by default");
        assert_eq!(
            (c.container.as_str(), c.reference.as_deref()),
            ("web", Some("img:1"))
        );
        assert!(!parse(&["dockling", "commit", "--pause=false", "web"]).pause);
        assert!(parse(&["dockling", "commit", "-p", "web"]).pause);
        assert!(parse(&["dockling", "commit", "web"]).reference.is_none());
        assert!(Cli::try_parse_from(["dockling", "diff", "web", "extra"]).is_err());
    }

    #[test]
    fn trace_render_takes_a_file_an_output_and_by_order() {
        let cli =
            Cli::try_parse_from(["dockling", "trace", "render", "t.json", "-o", "t.svg"]).unwrap();
        assert!(cli.command.only_prints());
        let Command::Trace(TraceArgs {
            command: TraceCommand::Render(r),
        }) = cli.command
        else {
            panic!("not trace render");
        };
        assert_eq!(r.file, std::path::Path::new("t.json"));
        assert_eq!(r.output.as_deref(), Some(std::path::Path::new("t.svg")));
        assert!(!r.by_order);
        let cli =
            Cli::try_parse_from(["dockling", "trace", "render", "--by-order", "t.json"]).unwrap();
        let Command::Trace(TraceArgs {
            command: TraceCommand::Render(r),
        }) = cli.command
        else {
            panic!("not trace render");
        };
        assert!(r.by_order && r.output.is_none());
        assert!(Cli::try_parse_from(["dockling", "trace", "render"]).is_err());
    }

    #[test]
    fn trace_file_is_a_flag_of_run_and_exec() {
        let cli = Cli::try_parse_from([
            "dockling",
            "run",
            "--trace=json",
            "--trace-file",
            "/tmp/t.jsonl",
            "busybox",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        assert_eq!(
            r.trace_file.as_deref(),
            Some(std::path::Path::new("/tmp/t.jsonl"))
        );
        let cli =
            Cli::try_parse_from(["dockling", "exec", "--trace-file=/tmp/t", "web", "ps"]).unwrap();
        let Command::Exec(e) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(
            e.trace_file.as_deref(),
            Some(std::path::Path::new("/tmp/t"))
        );
    }
}
