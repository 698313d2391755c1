//! `dockling runtime …`, also installed as `dockling-runc` (a link to `dockling`): runc's
//! command line, the way podman, containerd's shim and crun's tests call an OCI runtime.
//!
//! A parser of its own, not a subcommand of [`super::Cli`]: runc's global `--root` (where
//! the runtime keeps its state) and crun's `--config` (a bundle's config file) mean other
//! things than dockling's, and callers put them before the subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// dockling's engine as an OCI runtime (runc's command line).
#[derive(Debug, Parser)]
#[command(name = "dockling-runc", disable_version_flag = true)]
pub struct RuntimeCli {
    /// Where the runtime keeps the state of its containers
    #[arg(long, value_name = "DIR", default_value = "/run/dockling-runc")]
    pub root: PathBuf,
    /// Also write errors and warnings to this file
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// How `--log` lines look
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Accepted for runc's callers; nothing more is logged
    #[arg(long)]
    pub debug: bool,
    /// Refused: dockling-runc manages cgroups through cgroupfs only
    #[arg(long)]
    pub systemd_cgroup: bool,
    /// crun's: cgroupfs (the default) or disabled; systemd is refused
    #[arg(long, value_name = "MANAGER")]
    pub cgroup_manager: Option<String>,
    /// Accepted as false or auto; rootless containers are refused
    #[arg(long, value_name = "BOOL")]
    pub rootless: Option<String>,
    /// Accepted for runc's callers and ignored: there is no checkpointing
    #[arg(long, value_name = "PATH")]
    pub criu: Option<PathBuf>,
    /// Print the version (three lines, as runc's)
    #[arg(short = 'v', long)]
    pub version: bool,
    /// What to do
    #[command(subcommand)]
    pub command: Option<RuntimeCommand>,
}

/// The format of `--log` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time="…" level=error msg="…"`
    Text,
    /// `{"level":"error","msg":"…","time":"…"}`
    Json,
}

/// The formats of `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Columns: ID PID STATUS BUNDLE CREATED OWNER
    Table,
    /// A JSON array of the containers' states
    Json,
}

/// What `create` and `run` take (runc's flags).
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The bundle's directory (its config.json and root filesystem)
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// crun's: the config file, instead of the bundle's config.json
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the container's pid (as the host sees it) to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Where to send a terminal's master (refused: no terminals yet)
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// chroot(2) instead of pivot_root(2) (a root on a ramfs cannot pivot)
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted: no session keyring is made either way
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass descriptors 3 to 2+N on to the container's process
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container's id
    pub id: String,
}

/// What `exec` takes (runc's flags).
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Where to send the terminal's master (with --tty, or a process file's terminal)
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// The working directory inside the container (absolute)
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Set an environment variable (KEY=VALUE), added to the container's
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Give the process a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// The user to run as: UID[:GID] (numbers)
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Supplementary groups (numbers; repeat or separate with commas)
    #[arg(short = 'g', long, value_name = "GID", value_delimiter = ',')]
    pub additional_gids: Vec<u32>,
    /// A JSON file holding the whole process (the config's `process` object); the command
    /// and the flags above are then not given
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Return once the process runs, leaving it running
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid (as the host sees it) to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Refused unless empty: dockling does not support SELinux
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Refused unless empty: dockling-runc does not apply AppArmor profiles
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Set no_new_privs: execve cannot give the process more privileges
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability (CAP_KILL...) to the bounding, effective and permitted sets
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,
    /// Pass descriptors 3 to 2+N on to the process
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Refused: the process joins the container's own cgroup only
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// Exec into a paused container too
    #[arg(long)]
    pub ignore_paused: bool,
    /// The container's id
    pub id: String,
    /// The command and its arguments (not with --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The runtime's subcommands.
#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Make a container from a bundle; its process waits for `start`
    Create(CreateArgs),
    /// Let a created container run its program
    Start {
        /// The container's id
        id: String,
    },
    /// Create and start; without --detach, wait for the container, remove it and exit
    /// with its code
    Run {
        /// What create takes
        #[command(flatten)]
        create: CreateArgs,
        /// Exit once the container runs, leaving it running
        #[arg(short, long)]
        detach: bool,
        /// crun's: do not remove the container when it ends
        #[arg(long)]
        keep: bool,
        /// Accepted for runc's callers
        #[arg(long)]
        no_subreaper: bool,
    },
    /// Run a process in a running container
    Exec(ExecArgs),
    /// Print a container's state as runc's JSON (status read from the process, never stored)
    State {
        /// The container's id
        id: String,
    },
    /// List the containers under --root
    List {
        /// table or json
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Only the ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Send a signal (default SIGTERM) to a container's first process, or with --all to every
    /// process of its cgroup
    Kill {
        /// Every process of the container's cgroup, not only its first
        #[arg(short, long)]
        all: bool,
        /// The container's id
        id: String,
        /// A name (TERM, SIGKILL) or a number
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Remove a stopped (or created) container: its cgroup and its state
    Delete {
        /// Kill it first if it still runs; no error if it does not exist
        #[arg(short, long)]
        force: bool,
        /// The container's id
        id: String,
    },
    /// Freeze every process of a running container (its cgroup's freezer)
    Pause {
        /// The container's id
        id: String,
    },
    /// Thaw a paused container's processes
    Resume {
        /// The container's id
        id: String,
    },
    /// The processes of a container: the host's ps filtered to its cgroup, or its pids as JSON
    Ps {
        /// table (the host's `ps` lines of its processes) or json (an array of host pids)
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// The container's id
        id: String,
        /// Options for ps (default -ef), after the id
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print what this runtime supports, as the runtime spec's features document (JSON)
    Features,
    /// Change a container's cgroup limits while it runs
    Update(Box<UpdateArgs>),
    /// Refused: dockling-runc does not checkpoint containers (no CRIU support)
    #[command(disable_help_flag = true)]
    Checkpoint {
        /// (ignored)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Refused: dockling-runc does not restore containers (no CRIU support)
    #[command(disable_help_flag = true)]
    Restore {
        /// (ignored)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Refused: dockling-runc reports no events (containerd's shim reads the cgroups itself)
    #[command(disable_help_flag = true)]
    Events {
        /// (ignored)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Write a config.json template for a bundle: what `dockling run busybox sh` would run
    Spec {
        /// The bundle's directory
        #[arg(short, long, value_name = "DIR", default_value = ".")]
        bundle: PathBuf,
        /// Refused: dockling-runc runs containers as root only
        #[arg(long)]
        rootless: bool,
    },
}

/// What `update` takes (runc's flags; sizes in bytes or with a unit like 64m).
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// A JSON file of the runtime spec's LinuxResources (`-`: standard input); the flags
    /// below are then not allowed
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Block I/O weight, 10 to 1000
    #[arg(long, value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,
    /// CFS period in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds per period (-1: none)
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long, value_name = "SHARES")]
    pub cpu_share: Option<u64>,
    /// Real-time period in microseconds (cgroup v1)
    #[arg(long, value_name = "US")]
    pub cpu_rt_period: Option<u64>,
    /// Real-time runtime in microseconds per period (cgroup v1)
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs the container may run on (0-3, 0,1)
    #[arg(long, value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (0-3, 0,1)
    #[arg(long, value_name = "MEMS")]
    pub cpuset_mems: Option<String>,
    /// Memory limit (-1: none)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Most processes the container may have (0 or less: no limit)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Refused: kernel memory limits are deprecated by the kernel
    #[arg(long, value_name = "SIZE")]
    pub kernel_memory: Option<String>,
    /// Refused: kernel memory limits are deprecated by the kernel
    #[arg(long, value_name = "SIZE")]
    pub kernel_memory_tcp: Option<String>,
    /// Refused: Intel RDT is not supported
    #[arg(long, value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,
    /// Refused: Intel RDT is not supported
    #[arg(long, value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,
    /// The container's id
    pub id: String,
}
