//! The vocabulary of the seam: one [`Call`] value per kernel operation the engine makes.
//!
//! Making every kernel operation a plain value is what lets the same engine code run for real
//! ([`super::linux`]), against a recording double ([`super::record`]) for unit tests and
//! `dockling explain`, and through the tracer, which renders each call the way `strace` would.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

/// One kernel operation, with the arguments it will be made with.
///
/// Field names are the argument names of the man page of each call.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `clone(2)` used like `fork(2)`: the child starts in the new namespaces named by `flags`.
    Clone { flags: CloneFlags },
    /// `unshare(2)`: move the calling process into new namespaces.
    Unshare { flags: CloneFlags },
    /// `mount(2)`.
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    /// `umount2(2)`.
    Umount2 { target: PathBuf, flags: MntFlags },
    /// `pivot_root(2)`.
    PivotRoot { new_root: PathBuf, put_old: PathBuf },
    /// `chroot(2)`.
    Chroot { path: PathBuf },
    /// `chdir(2)`.
    Chdir { path: PathBuf },
    /// `sethostname(2)`.
    Sethostname { name: String },
    /// `setdomainname(2)`: the NIS domain name of the UTS namespace (a config's `domainname`).
    Setdomainname { name: String },
    /// `setns(2)`: join the namespace `fd` (an open `/proc/<pid>/ns/<kind>`) names.
    Setns {
        /// The namespace file's descriptor.
        fd: i32,
        /// Which kind (one `CLONE_NEW*` flag).
        kind: CloneFlags,
        /// The container's pid whose namespace it is; 0 for dockling's own namespace, which
        /// it returns to after configuring the container's network from inside.
        pid: i32,
    },
    /// `mkdir(2)`; an existing directory is not an error for the engine's callers.
    Mkdir { path: PathBuf, mode: u32 },
    /// `mknodat(2)` of a node named `name` in the directory `dirfd`: `kind` `c` (or `u`), `b`
    /// or `p` (a FIFO). `inside` is set for a node an OCI config's `linux.devices` asks for
    /// (`dirfd` its parent, found inside the container's root; `inside` its path in the
    /// container, for the trace); unset for Docker's standard devices in the container's own
    /// /dev tmpfs.
    Mknodat {
        dirfd: i32,
        name: PathBuf,
        inside: Option<PathBuf>,
        kind: char,
        mode: u32,
        major: u64,
        minor: u64,
    },
    /// `fchownat(2)` with `AT_SYMLINK_NOFOLLOW` of the node `name` in `dirfd` just made for
    /// `linux.devices` (`inside`, its path in the container).
    Fchownat {
        dirfd: i32,
        name: PathBuf,
        inside: PathBuf,
        uid: u32,
        gid: u32,
    },
    /// `symlinkat(2)`: a link named `linkpath` in the directory `dirfd`, pointing at `target`.
    Symlinkat {
        target: PathBuf,
        dirfd: i32,
        linkpath: PathBuf,
    },
    /// `umask(2)`: the mode bits removed from every file and directory created from now on.
    Umask { mask: u32 },
    /// `mknodat(AT_FDCWD, path, S_IFIFO|0622)` (umask 0 around it, as runc): the `exec.fifo` of an OCI container's
    /// state directory (the runtime's own, root's only).
    Mkfifo { path: PathBuf },
    /// `socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0)` then `connect(2)` to `path`: the
    /// caller's console socket (`--console-socket`), to hand it a terminal. Returns the socket.
    ConnectUnix { path: PathBuf },
    /// `sendmsg(2)` on `sock` of `name` with the descriptor `fd` attached (`SCM_RIGHTS`): the
    /// terminal's master end handed to whoever listens on the console socket.
    SendFd { sock: i32, fd: i32, name: String },
    /// `prlimit64(pid, resource, {soft, hard}, NULL)`: one of an OCI config's rlimits, set on
    /// the container's first process (`name` is the config's, `RLIMIT_NOFILE`).
    Prlimit {
        pid: i32,
        resource: i32,
        name: String,
        soft: u64,
        hard: u64,
    },
    /// `rmdir(2)`.
    Rmdir { path: PathBuf },
    /// `prctl(2)` with one option and one argument.
    Prctl { option: Prctl, arg: u64 },
    /// `capset(2)` for the calling thread.
    Capset {
        effective: u64,
        permitted: u64,
        inheritable: u64,
    },
    /// `setgroups(2)`.
    Setgroups { gids: Vec<u32> },
    /// `setresgid(2)` with all three ids equal.
    Setresgid { gid: u32 },
    /// `setresuid(2)` with all three ids equal.
    Setresuid { uid: u32 },
    /// `setsid(2)`.
    Setsid,
    /// `ioctl(fd, TIOCSCTTY, 0)`: make the terminal on `fd` the controlling terminal.
    IoctlSetCtty { fd: i32 },
    /// `dup2(2)`: `what` says what `old` is (the explanation depends on it).
    Dup2 { old: i32, new: i32, what: Stdio },
    /// `close_range(2)` with `CLOSE_RANGE_CLOEXEC`: mark every descriptor from `first` up
    /// close-on-exec so nothing of the engine leaks into the container. `preserving`: `first`
    /// is 3 + N, the N descriptors after stderr left open for the program (`runtime create`
    /// and `exec --preserve-fds N`); explained apart.
    CloseRange { first: u32, preserving: bool },
    /// `close_range(2)` without flags: close every descriptor from `first` to `last` now
    /// (`--init`'s process 1, which never execs, so close-on-exec would never close them).
    CloseRangeNow { first: u32, last: u32 },
    /// `seccomp(2)` `SECCOMP_SET_MODE_FILTER`: install `filter`, the BPF program compiled from
    /// the container's policy; `about` says in words what it does (shown in the trace).
    Seccomp {
        filter: Vec<super::bpf::SockFilter>,
        about: String,
    },
    /// A program of the host run to its end, its output read: `clone`, its `execve` (`argv[0]`
    /// looked up in `PATH`), `wait4`, as one entry (runtime `ps` runs the host's `ps`). Its
    /// stdout and stderr come back in [`Ret::Ran`].
    RunHost { argv: Vec<String> },
    /// `execve(2)`; on success it never returns.
    Execve {
        path: PathBuf,
        argv: Vec<String>,
        envp: Vec<String>,
    },
    /// `openat2(2)`: open `path` relative to `dirfd` with `resolve` rules (inside the
    /// container's root, never leaving it); with `O_CREAT` it creates an empty file.
    Openat2 {
        dirfd: i32,
        path: PathBuf,
        flags: i32,
        mode: u32,
        resolve: u64,
    },
    /// `mkdirat(2)` of one name in the directory `dirfd`.
    Mkdirat {
        dirfd: i32,
        path: PathBuf,
        mode: u32,
    },
    /// `openat(AT_FDCWD, path, flags, mode)`: a device the container's own stdio will use, the
    /// new root, a cgroup knob to write, or (with `O_CREAT`) a file of the container's own.
    Open {
        path: PathBuf,
        flags: i32,
        mode: u32,
    },
    /// `ioctl` on a pseudo-terminal master: unlock its slave, or ask the slave's number.
    IoctlPty { fd: i32, op: PtyOp },
    /// `rt_sigprocmask(SIG_SETMASK, {})`: no signal blocked.
    UnblockSignals,
    /// `kill(2)`.
    Kill { pid: i32, signal: i32 },
    /// `rt_sigaction(signal, {SIG_DFL}, NULL)`: give back the default action of a signal the
    /// engine inherited as ignored (an ignored signal stays ignored across `execve`).
    SigactionDefault { signal: i32 },
    /// `wait4(2)` for one child, with `__WALL`.
    Wait4 { pid: i32 },
    /// `write(2)` of `data` to `fd`, an open control file or file of the container (`path` is
    /// what `fd` is, for the explanation and error messages; it is not an argument).
    Write {
        fd: i32,
        path: PathBuf,
        data: String,
    },
    /// `close(2)` of a descriptor the engine opened for one job (`object` is what it was).
    Close { fd: i32, object: String },
    /// `socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, 0)`: a handle for interface `ioctl`s.
    SocketInet,
    /// `ioctl(fd, SIOCGIFFLAGS)` (`set: None`) or `ioctl(fd, SIOCSIFFLAGS)` with `set` flags.
    IoctlIfFlags {
        fd: i32,
        name: String,
        set: Option<i32>,
    },
    /// `socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC)`: the engine/child channel.
    Socketpair,
    /// `bind(fd, {AF_UNIX, "/proc/self/fd/<dir>/<name>"})` of a new listening stream socket
    /// (socket, bind under umask 0177 so it is made 0600, listen): a monitor's attach socket,
    /// named through the descriptor of the container's directory, not a host path.
    BindUnix { dir: i32, name: String },
    /// `pidfd_open(pid, 0)`: a descriptor that names this very process, whatever later
    /// reuses its number.
    PidfdOpen { pid: i32 },
    /// `pidfd_open(pid, 0)` of a process to wait for: a container's engine (its monitor,
    /// `stop`) or an OCI container's first process (`start`); the same call, explained as
    /// the wait it is for.
    PidfdOpenEngine { pid: i32 },
    /// `pidfd_send_signal(fd, signal, NULL, 0)`: a signal to the process `fd` names (`pid` is
    /// its number, for the explanation and error messages; it is not an argument).
    PidfdSendSignal { fd: i32, pid: i32, signal: i32 },
    /// `pipe2(O_CLOEXEC)`: the pipe the container writes its stdout into, which the engine
    /// copies to its own stdout when that is a pipe or a socket (see `runtime::io`).
    Pipe2,
    /// `pipe2(O_CLOEXEC)` of the port proxy's status pipe: it answers `0\n` on it once it
    /// serves, or `1\n<error>` (see `network::proxy`).
    ProxyPipe,
    /// `kill(pid, SIGKILL)` of the port proxy at the end of a run: the published ports close
    /// with it.
    KillProxy { pid: i32 },
    /// `wait4(2)` for the killed port proxy, with `__WALL`.
    WaitProxy { pid: i32 },
    /// `flock(fd, LOCK_EX|LOCK_NB)` of a store lock file (`path`, for the explanation and
    /// errors): a network's lock, under which its members' hosts files are rewritten.
    Flock { fd: i32, path: PathBuf },
    /// `rt_sigprocmask(SIG_BLOCK, signals)`: hold these signals for the engine's signalfd.
    BlockSignals { signals: Vec<i32> },
    /// `rt_sigprocmask(SIG_SETMASK, mask)`: put back the mask from before the container.
    RestoreSignals { mask: u64 },
    /// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC)`: a detached bind mount.
    OpenTree { path: PathBuf },
    /// `mount_setattr(fd, "", AT_EMPTY_PATH, {attr_set=MOUNT_ATTR_RDONLY})`.
    MountSetattrRdonly { fd: i32 },
    /// `memfd_create(name, MFD_CLOEXEC|MFD_ALLOW_SEALING)`.
    MemfdCreate { name: String },
    /// `fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE)`.
    AddSeals { fd: i32 },
    /// `fstatfs(2)`: which file system the object `fd` is open on lives on; `object` names it
    /// (a path inside the container), for the explanation and error messages.
    Fstatfs { fd: i32, object: String },
    /// `statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID)`: which mount the object `fd` is open on
    /// (its mount ID); `object` names it (a path inside the container).
    StatxMntId { fd: i32, object: String },
    /// `access(path, mode)` with `F_OK` (does `path` exist?) or `X_OK` (may it be executed?),
    /// following symlinks. Where the machine has no `access` syscall (aarch64), glibc makes it
    /// `faccessat(AT_FDCWD, path, mode)`.
    Access { path: PathBuf, mode: i32 },
    /// `stat(path)` (following symlinks): what kind of file `path` is. glibc makes it
    /// `newfstatat(AT_FDCWD, path, buf, 0)` (`fstatat64` on 32-bit machines).
    Stat { path: PathBuf },
    /// `read(fd, buf, cap)`: up to `cap` bytes from `fd` (`path` is what `fd` is, for the
    /// explanation and error messages; it is not an argument): a cgroup knob, the
    /// `exec.fifo` of an OCI container, a file of the container's. The bytes come back in
    /// [`Ret::Received`]; none at the end of the file.
    Read { fd: i32, path: PathBuf, cap: usize },
    /// `unlinkat(AT_FDCWD, path, 0)`: remove the name `path` (the `exec.fifo` of an OCI
    /// container once `start` let it go).
    Unlink { path: PathBuf },
    /// `poll(fds, n, timeout)`, each descriptor asked for `POLLIN`, `timeout` in milliseconds
    /// (-1: unbounded); `what` says what the descriptors are. The ready ones come back in
    /// [`Ret::Polled`].
    Poll {
        fds: Vec<i32>,
        timeout: i32,
        what: String,
    },
    /// `getdents64(fd, buf, cap)`: the next entries of the directory open on `fd` (`path`
    /// names it, for the explanation and error messages), in [`Ret::Dirents`]; none at its
    /// end. A cgroup's children, the kernel's huge page sizes.
    Getdents { fd: i32, path: PathBuf, cap: usize },
    /// `sendfile(out_fd, in_fd, NULL, count)`: up to `count` bytes from `in_fd`'s offset to
    /// `out_fd`, without passing through user space; 0 at the end of `in_fd`.
    Sendfile {
        out_fd: i32,
        in_fd: i32,
        count: usize,
    },
    /// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: run the file `fd` names; on success it
    /// never returns. `argv` and `envp` (`KEY=value`) are the bytes the kernel gets: a
    /// re-exec passes this process's own, which need not be UTF-8.
    Execveat {
        fd: i32,
        argv: Vec<std::ffi::OsString>,
        envp: Vec<std::ffi::OsString>,
    },
    /// `bpf(BPF_PROG_LOAD)` of a cgroup device program (`BPF_PROG_TYPE_CGROUP_DEVICE`): the
    /// kernel verifies `insns` and returns a descriptor of the loaded program.
    BpfProgLoad { insns: Vec<super::bpf::BpfInsn> },
    /// `bpf(BPF_PROG_ATTACH)` of the program `prog_fd` to the cgroup directory `target_fd` as
    /// its device filter (`BPF_CGROUP_DEVICE`, `BPF_F_ALLOW_MULTI`); `cgroup` is that
    /// directory, for the explanation and error messages.
    BpfProgAttach {
        target_fd: i32,
        prog_fd: i32,
        cgroup: PathBuf,
    },
    /// `socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE)`: a socket to the kernel's
    /// routing and link configuration (rtnetlink), the one `ip` talks through; or
    /// `NETLINK_NETFILTER`, the one `nft` talks through. It belongs to the network namespace
    /// of the process that makes it.
    NetlinkSocket { proto: super::netlink::NlProto },
    /// `bind(fd, {AF_NETLINK, nl_pid=0}, 12)`: the kernel gives the socket its port id now
    /// (as `ip` does), so it is known, and strace can decode its messages, from the first.
    NetlinkBind { fd: i32 },
    /// `sendto(fd, buf, len, 0, NULL, 0)` of one rtnetlink request or one nf_tables batch.
    NetlinkSend {
        fd: i32,
        req: super::netlink::NlRequest,
    },
    /// `recvfrom(fd, buf, cap, 0, NULL, NULL)`: the kernel's answer to request `seq` (an
    /// `NLMSG_ERROR` carrying 0 or an errno, and before it the data a get asked for);
    /// `command` names the request, for the explanation and error messages.
    NetlinkRecv {
        fd: i32,
        cap: usize,
        seq: u32,
        what: super::netlink::NlWhat,
        command: String,
    },
    /// `socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP)` (or `SOCK_DGRAM` for UDP): a
    /// socket for one published host port, made by the engine before the container starts.
    SocketPort { transport: Transport },
    /// `setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, [1], 4)`: the port may be bound again at once
    /// after the previous user's connections linger in TIME_WAIT.
    SetReuseAddr { fd: i32 },
    /// `bind(fd, {AF_INET, sin_port=htons(port), sin_addr=inet_addr(ip)}, 16)` of a published
    /// host port (port 0: the kernel chooses one).
    BindInet {
        fd: i32,
        addr: std::net::SocketAddrV4,
        transport: Transport,
    },
    /// `listen(fd, backlog)`: the published TCP port accepts connections (queued by the kernel
    /// until the proxy takes them); `addr` is the bound address, for messages.
    Listen {
        fd: i32,
        backlog: i32,
        addr: std::net::SocketAddrV4,
    },
    /// `getsockname(fd, addr, [16])`: the address the socket is bound to, to read back the port
    /// the kernel chose for a bind to port 0 (`-P`, `-p 80`).
    Getsockname { fd: i32 },
    /// `fsopen(fstype, FSOPEN_CLOEXEC)`: a file system context of that type (the new mount
    /// API), configured by `fsconfig` and never mounted: `--layers erofs`'s probe.
    Fsopen { fstype: String },
    /// `fsconfig(fd, FSCONFIG_SET_STRING, "source", source, 0)`: the context's source, here a
    /// file named by its descriptor (`/proc/self/fd/N`).
    FsconfigSource { fd: i32, source: PathBuf },
    /// `fsconfig(fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0)`: the kernel makes the superblock,
    /// reading the source; nothing is mounted (no fsmount follows).
    FsconfigCreate { fd: i32 },
    /// An OCI hook: `clone(2)` like fork, `execve(2)` of `path` in the child with `argv`, the
    /// environment `envp` (the engine's own when `None`, as runc and crun do) and the working
    /// directory `dir`, the container's state (`state`, JSON) written to its stdin through a
    /// pipe, then `wait4(2)`; after `timeout` seconds it is killed (SIGKILL) and the call fails
    /// with `ETIMEDOUT`. Its stdout and stderr are the engine's, or the files `stdout` and
    /// `stderr` name (opened for appending, made 0600 when missing). `kind` names the hook
    /// (`hooks.createRuntime[0]`), for the explanation and error messages.
    RunHook {
        kind: String,
        path: PathBuf,
        argv: Vec<String>,
        envp: Option<Vec<String>>,
        dir: Option<PathBuf>,
        state: String,
        timeout: Option<u64>,
        stdout: Option<PathBuf>,
        stderr: Option<PathBuf>,
    },
    /// `sched_setattr(0, attr, 0)`: the calling thread's scheduling policy and its
    /// parameters (`process.scheduler`), inherited by the program across `execve`.
    SchedSetattr { attr: SchedAttr },
    /// `ioprio_set(IOPRIO_WHO_PROCESS, 0, IOPRIO_PRIO_VALUE(class, level))`: the calling
    /// process's I/O scheduling class and priority (`process.ioPriority`).
    IoprioSet { class: u32, level: u32 },
    /// `set_mempolicy(mode | flags, nodemask, maxnode)`: the calling thread's NUMA memory
    /// policy (`linux.memoryPolicy`); `nodes` is the node mask as 64-bit words.
    SetMempolicy {
        mode: i32,
        flags: i32,
        nodes: Vec<u64>,
        maxnode: u64,
    },
}

/// `struct sched_attr` of `sched_setattr(2)`, the fields a config can set.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedAttr {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// A scheduling policy's name, as strace prints it.
pub fn sched_policy_name(policy: u32) -> String {
    match policy {
        0 => "SCHED_OTHER".into(),
        1 => "SCHED_FIFO".into(),
        2 => "SCHED_RR".into(),
        3 => "SCHED_BATCH".into(),
        4 => "SCHED_ISO".into(),
        5 => "SCHED_IDLE".into(),
        6 => "SCHED_DEADLINE".into(),
        n => n.to_string(),
    }
}

/// The transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// TCP (`SOCK_STREAM`).
    Tcp,
    /// UDP (`SOCK_DGRAM`).
    Udp,
}

impl Transport {
    /// `tcp` or `udp`, as Docker writes it after a port (`80/tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("0.0.0.0")}`, as strace
/// prints a `struct sockaddr_in`.
fn sockaddr_in(addr: &std::net::SocketAddrV4) -> String {
    format!(
        "{{sa_family=AF_INET, sin_port=htons({}), sin_addr=inet_addr(\"{}\")}}",
        addr.port(),
        addr.ip()
    )
}

/// What a `dup2` puts on a standard descriptor (or on the port proxy's numbered ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// The pseudo-terminal's slave (`-t`).
    Terminal,
    /// `/dev/null` as stdin (no `-i`).
    Null,
    /// The write end of the stdout relay pipe as stdout.
    Relay,
    /// The read end of a detached `-i` container's stdin pipe, which its monitor writes.
    StdinPipe,
    /// The port proxy's status pipe, onto descriptor 3 of the proxy.
    ProxyStatus,
    /// A bound host port, onto descriptor 4, 5, … of the proxy.
    ProxyListener,
    /// `/dev/null` onto the proxy's stdin and stdout (and stderr when detached).
    ProxyNull,
    /// A log file onto the proxy's stderr (tests).
    ProxyLog,
    /// `dockling build`: the write end of the pipe whose reader shows a RUN step's output
    /// with BuildKit's `#N` prefix, put on the engine's own stdout and stderr.
    BuildOutput,
    /// `dockling build`: the engine's saved stdout or stderr put back after a RUN step.
    BuildRestore,
}

/// The pseudo-terminal `ioctl`s the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PtyOp {
    /// `TIOCSPTLCK` with 0: let the slave be opened.
    Unlock,
    /// `TIOCGPTN`: the slave's number, `/dev/pts/<n>`.
    Number,
    /// `TIOCSWINSZ`: the terminal's size (`process.consoleSize`), on its slave.
    Winsize {
        /// Rows (`ws_row`).
        rows: u16,
        /// Columns (`ws_col`).
        cols: u16,
    },
}

/// The `prctl(2)` options the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prctl {
    /// `PR_CAPBSET_DROP`: remove one capability from the bounding set.
    CapBsetDrop,
    /// `PR_CAP_AMBIENT` / `PR_CAP_AMBIENT_CLEAR_ALL`.
    CapAmbientClearAll,
    /// `PR_CAP_AMBIENT` / `PR_CAP_AMBIENT_RAISE`: add one capability to the ambient set.
    CapAmbientRaise,
    /// `PR_SET_KEEPCAPS`.
    SetKeepCaps,
    /// `PR_SET_NO_NEW_PRIVS`.
    SetNoNewPrivs,
    /// `PR_SET_PDEATHSIG`.
    SetPdeathsig,
    /// `PR_SET_DUMPABLE`.
    SetDumpable,
}

impl Prctl {
    /// The name `strace` prints for the option.
    pub fn name(self) -> &'static str {
        match self {
            Prctl::CapBsetDrop => "PR_CAPBSET_DROP",
            Prctl::CapAmbientClearAll | Prctl::CapAmbientRaise => "PR_CAP_AMBIENT",
            Prctl::SetKeepCaps => "PR_SET_KEEPCAPS",
            Prctl::SetNoNewPrivs => "PR_SET_NO_NEW_PRIVS",
            Prctl::SetPdeathsig => "PR_SET_PDEATHSIG",
            Prctl::SetDumpable => "PR_SET_DUMPABLE",
        }
    }
}

/// What a successful call gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ret {
    /// Most calls: `0`.
    Zero,
    /// `clone`: the child's pid in the parent, `0` in the child. `wait4`: the pid reaped.
    /// `setsid`: the new session's id.
    Pid(i32),
    /// `wait4`: the pid reaped and its raw wait status.
    #[allow(missing_docs)]
    Waited { pid: i32, status: i32 },
    /// `write`: bytes written.
    Bytes(usize),
    /// `openat2`/`openat`: a new descriptor (owned by the caller from here on).
    Fd(i32),
    /// `ioctl(TIOCGPTN)`: returns 0, and the pseudo-terminal's number through its argument.
    PtyNumber(u32),
    /// `socketpair`: returns 0, and the two new descriptors through its argument.
    FdPair(i32, i32),
    /// `ioctl(SIOCGIFFLAGS)`: returns 0, and the interface's flags through its argument.
    IfFlags(i32),
    /// `rt_sigprocmask`: returns 0, and the mask before the call through its argument.
    OldMask(u64),
    /// `umask`: the mask it replaced (strace prints it in octal).
    Umask(u32),
    /// `fstatfs`: returns 0, and the file system's description through its argument.
    Statfs(Statfs),
    /// `statx` with `STATX_MNT_ID`: returns 0, and the mount's ID through its argument (with
    /// the fields strace shows).
    #[allow(missing_docs)]
    Statx {
        mask: u32,
        attributes: u64,
        mode: u32,
        size: u64,
        mnt_id: u64,
    },
    /// `stat`: returns 0, and (the fields strace shows of) the file's `struct stat`.
    #[allow(missing_docs)]
    Stat { mode: u32, size: i64, rdev: u64 },
    /// `recvfrom`, `read`: the bytes received (their number is what it returns).
    Received(Vec<u8>),
    /// `poll`: the descriptors that are ready with their `revents` (their number is what it
    /// returns).
    Polled(Vec<(i32, i16)>),
    /// `getdents64`: the bytes filled in (what it returns) and each entry's name and whether
    /// it is a directory (`d_type` `DT_DIR`).
    #[allow(missing_docs)]
    Dirents {
        bytes: usize,
        entries: Vec<(String, bool)>,
    },
    /// `getsockname`: returns 0, and the socket's address through its argument.
    SockName(std::net::SocketAddrV4),
    /// A host program run to its end ([`Call::RunHost`]): its pid, raw wait status and output.
    #[allow(missing_docs)]
    Ran {
        pid: i32,
        status: i32,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
}

/// What `fstatfs(2)` fills in (`struct statfs`), the fields strace prints.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statfs {
    /// The file system's magic number (`TMPFS_MAGIC`, statfs(2)).
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    /// `ST_*` mount flags.
    pub f_flags: i64,
}

impl Ret {
    /// The result as strace prints it after `=`: the number, but a umask in octal (`022`).
    pub fn shown(&self) -> String {
        match self {
            Ret::Umask(m) => mode_octal(*m),
            other => other.value().to_string(),
        }
    }

    /// The number strace would print after `=`.
    pub fn value(&self) -> i64 {
        match *self {
            Ret::Zero => 0,
            Ret::Pid(p) => p as i64,
            Ret::Waited { pid, .. } | Ret::Ran { pid, .. } => pid as i64,
            Ret::Bytes(n) => n as i64,
            Ret::Fd(fd) => fd as i64,
            Ret::Received(ref b) => b.len() as i64,
            Ret::Polled(ref r) => r.len() as i64,
            Ret::Dirents { bytes, .. } => bytes as i64,
            Ret::PtyNumber(_)
            | Ret::FdPair(..)
            | Ret::IfFlags(_)
            | Ret::OldMask(_)
            | Ret::Statfs(_)
            | Ret::Statx { .. }
            | Ret::SockName(_)
            | Ret::Stat { .. } => 0,
            Ret::Umask(m) => m as i64,
        }
    }
}

impl Call {
    /// The syscall name, as `strace` prints it.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Clone { .. } => "clone",
            Call::Unshare { .. } => "unshare",
            Call::Mount { .. } => "mount",
            Call::Umount2 { .. } => "umount2",
            Call::PivotRoot { .. } => "pivot_root",
            Call::Chroot { .. } => "chroot",
            Call::Chdir { .. } => "chdir",
            Call::Sethostname { .. } => "sethostname",
            Call::Setdomainname { .. } => "setdomainname",
            Call::Setns { .. } => "setns",
            Call::Mkdir { .. } => "mkdir",
            Call::Mknodat { .. } => "mknodat",
            Call::Fchownat { .. } => "fchownat",
            Call::Symlinkat { .. } => "symlinkat",
            Call::Umask { .. } => "umask",
            Call::Mkfifo { .. } => "mknodat",
            Call::ConnectUnix { .. } => "connect",
            Call::SendFd { .. } => "sendmsg",
            Call::Prlimit { .. } => "prlimit64",
            Call::Rmdir { .. } => "rmdir",
            Call::Prctl { .. } => "prctl",
            Call::Capset { .. } => "capset",
            Call::Setgroups { .. } => "setgroups",
            Call::Setresgid { .. } => "setresgid",
            Call::Setresuid { .. } => "setresuid",
            Call::Setsid => "setsid",
            Call::IoctlSetCtty { .. } => "ioctl",
            Call::Dup2 { .. } => "dup2",
            Call::CloseRange { .. } | Call::CloseRangeNow { .. } => "close_range",
            Call::Seccomp { .. } => "seccomp",
            Call::Execve { .. } | Call::RunHost { .. } => "execve",
            Call::Openat2 { .. } => "openat2",
            Call::Mkdirat { .. } => "mkdirat",
            Call::Open { .. } => "openat",
            Call::IoctlPty { .. } => "ioctl",
            Call::UnblockSignals => "rt_sigprocmask",
            Call::Kill { .. } | Call::KillProxy { .. } => "kill",
            Call::SigactionDefault { .. } => "rt_sigaction",
            Call::Wait4 { .. } | Call::WaitProxy { .. } => "wait4",
            Call::Write { .. } => "write",
            Call::Close { .. } => "close",
            Call::SocketInet => "socket",
            Call::IoctlIfFlags { .. } => "ioctl",
            Call::Socketpair => "socketpair",
            Call::BindUnix { .. } => "bind",
            Call::Pipe2 | Call::ProxyPipe => "pipe2",
            Call::Flock { .. } => "flock",
            Call::PidfdOpen { .. } | Call::PidfdOpenEngine { .. } => "pidfd_open",
            Call::PidfdSendSignal { .. } => "pidfd_send_signal",
            Call::BlockSignals { .. } | Call::RestoreSignals { .. } => "rt_sigprocmask",
            Call::OpenTree { .. } => "open_tree",
            Call::MountSetattrRdonly { .. } => "mount_setattr",
            Call::MemfdCreate { .. } => "memfd_create",
            Call::AddSeals { .. } => "fcntl",
            Call::Sendfile { .. } => "sendfile",
            Call::Fstatfs { .. } => "fstatfs",
            Call::StatxMntId { .. } => "statx",
            Call::Access { .. } => ACCESS,
            Call::Stat { .. } => STAT,
            Call::Read { .. } => "read",
            Call::Unlink { .. } => "unlinkat",
            Call::Poll { .. } => "poll",
            Call::Getdents { .. } => "getdents64",
            Call::Execveat { .. } => "execveat",
            Call::BpfProgLoad { .. } | Call::BpfProgAttach { .. } => "bpf",
            Call::NetlinkSocket { .. } => "socket",
            Call::NetlinkBind { .. } => "bind",
            Call::NetlinkSend { .. } => "sendto",
            Call::NetlinkRecv { .. } => "recvfrom",
            Call::SocketPort { .. } => "socket",
            Call::SetReuseAddr { .. } => "setsockopt",
            Call::BindInet { .. } => "bind",
            Call::Listen { .. } => "listen",
            Call::Getsockname { .. } => "getsockname",
            Call::Fsopen { .. } => "fsopen",
            Call::FsconfigSource { .. } | Call::FsconfigCreate { .. } => "fsconfig",
            Call::RunHook { .. } => "execve",
            Call::SchedSetattr { .. } => "sched_setattr",
            Call::IoprioSet { .. } => "ioprio_set",
            Call::SetMempolicy { .. } => "set_mempolicy",
        }
    }

    /// The key of this call's explanation in the catalog: the syscall name, refined by the
    /// flag or file system that changes what the call means (a bind mount is not a proc mount).
    pub fn explain_key(&self) -> &'static str {
        match self {
            Call::Openat2 { path, .. } if path == std::path::Path::new("hosts") => "openat2.hosts",
            Call::Openat2 { path, .. } if path == std::path::Path::new("etc/passwd") => {
                "openat2.passwd"
            }
            Call::Open { path, flags, .. }
                if flags & libc::O_PATH != 0
                    && path.parent().and_then(|p| p.file_name()) == Some("containers".as_ref()) =>
            {
                "openat.container_dir"
            }
            Call::Open { path, flags, .. }
                if flags & libc::O_CREAT != 0 && path.file_name() == Some(".lock".as_ref()) =>
            {
                "openat.lock"
            }
            Call::Open { path, .. } if path.file_name() == Some("layer.erofs".as_ref()) => {
                "openat.erofs"
            }
            Call::Clone { flags } if flags.is_empty() => "clone.fork",
            Call::CloseRangeNow { .. } => "close_range.now",
            Call::CloseRange {
                preserving: true, ..
            } => "close_range.preserve_fds",
            Call::Clone { flags } if flags.contains(CloneFlags::CLONE_PARENT) => "clone.parent",
            Call::Mount { fstype, flags, .. } => {
                if flags.contains(MsFlags::MS_REMOUNT) {
                    "mount.remount"
                } else if flags
                    .intersects(MsFlags::MS_PRIVATE | MsFlags::MS_SLAVE | MsFlags::MS_SHARED)
                {
                    "mount.propagation"
                } else if flags.contains(MsFlags::MS_BIND) {
                    "mount.bind"
                } else {
                    match fstype.as_deref() {
                        Some("overlay") => "mount.overlay",
                        Some("erofs") => "mount.erofs",
                        Some("proc") => "mount.proc",
                        Some("sysfs") => "mount.sysfs",
                        Some("tmpfs") => "mount.tmpfs",
                        Some("devpts") => "mount.devpts",
                        Some("mqueue") => "mount.mqueue",
                        Some("cgroup") | Some("cgroup2") => "mount.cgroup",
                        _ => "mount",
                    }
                }
            }
            Call::Prctl { option, .. } => match option {
                Prctl::CapBsetDrop => "prctl.capbset_drop",
                Prctl::CapAmbientClearAll => "prctl.cap_ambient",
                Prctl::CapAmbientRaise => "prctl.cap_ambient_raise",
                Prctl::SetKeepCaps => "prctl.keepcaps",
                Prctl::SetNoNewPrivs => "prctl.no_new_privs",
                Prctl::SetPdeathsig => "prctl.pdeathsig",
                Prctl::SetDumpable => "prctl.dumpable",
            },
            Call::Unshare { flags } if *flags == CloneFlags::CLONE_NEWCGROUP => "unshare.cgroup",
            Call::IoctlSetCtty { .. } => "ioctl.tiocsctty",
            Call::Mkfifo { .. } => "mknodat.fifo",
            Call::RunHost { .. } => "execve.host_program",
            Call::Mknodat {
                inside: Some(_), ..
            } => "mknodat.config",
            Call::Fchownat { .. } => "fchownat.device",
            Call::ConnectUnix { .. } => "connect.console",
            Call::SendFd { .. } => "sendmsg.console",
            Call::IoctlPty {
                op: PtyOp::Unlock, ..
            } => "ioctl.tiocsptlck",
            Call::IoctlPty {
                op: PtyOp::Number, ..
            } => "ioctl.tiocgptn",
            Call::IoctlPty {
                op: PtyOp::Winsize { .. },
                ..
            } => "ioctl.tiocswinsz",
            Call::PidfdOpenEngine { .. } => "pidfd_open.engine",
            Call::Setns {
                pid: 0,
                kind: CloneFlags::CLONE_NEWPID,
                ..
            } => "setns.own_pid",
            Call::Setns { pid: 0, .. } => "setns.own",
            Call::Openat2 { flags, .. } if flags & libc::O_CREAT != 0 => "openat2.create",
            Call::Open { path, .. } if path.starts_with("/dev/pts") => "openat.pts",
            Call::Open { path, .. }
                if path.starts_with("/proc")
                    && path.parent().and_then(|p| p.file_name()) == Some("ns".as_ref()) =>
            {
                "openat.ns"
            }
            Call::Access { mode, .. } if *mode == libc::X_OK => ACCESS_EXEC,
            Call::Open { path, .. } if path == std::path::Path::new("/proc/self/exe") => {
                "openat.self_exe"
            }
            Call::Open { path, flags, .. }
                if flags & libc::O_PATH != 0
                    && path.starts_with("/proc")
                    && matches!(
                        path.file_name().and_then(|n| n.to_str()),
                        Some("root" | "cwd")
                    ) =>
            {
                "openat.proc_root"
            }
            Call::Open { flags, .. } if flags & libc::O_PATH != 0 => "openat.root",
            Call::Open { path, .. } if path == std::path::Path::new("/dev/ptmx") => "openat.ptmx",
            Call::Open { flags, .. } if flags & libc::O_CREAT != 0 => "openat.file",
            Call::Open { path, flags, .. }
                if path.starts_with("/sys/fs/cgroup")
                    && flags & libc::O_ACCMODE == libc::O_WRONLY =>
            {
                "openat.cgroup_knob"
            }
            Call::Open { path, flags, .. }
                if path.starts_with("/sys/fs/cgroup")
                    && flags & libc::O_ACCMODE == libc::O_RDONLY
                    && flags & libc::O_DIRECTORY == 0 =>
            {
                "openat.cgroup_read"
            }
            Call::Open { flags, .. } if flags & libc::O_ACCMODE == libc::O_WRONLY => {
                "openat.control"
            }
            Call::Write { path, data, .. }
                if path.starts_with("/sys/fs/cgroup")
                    && data == "0"
                    && (path.ends_with("tasks") || path.ends_with("cgroup.procs")) =>
            {
                "write.cgroup_self"
            }
            Call::Write { path, .. } if path.starts_with("/sys/fs/cgroup") => "write.cgroup",
            Call::Write { path, .. } if path.starts_with("/proc/sys") => "write.sysctl",
            Call::Write { path, .. } if path.starts_with("/proc") => "write",
            Call::Write { .. } => "write.file",
            Call::Read { path, .. } if path.starts_with("/sys/fs/cgroup") => "read.cgroup",
            Call::Read { path, .. } if path.ends_with("exec.fifo") => "read.fifo",
            Call::Getdents { path, .. } if path.starts_with("/sys/fs/cgroup") => {
                "getdents64.cgroup"
            }
            Call::IoctlIfFlags { set: None, .. } => "ioctl.siocgifflags",
            Call::IoctlIfFlags { .. } => "ioctl.siocsifflags",
            Call::Dup2 {
                what: Stdio::Terminal,
                ..
            } => "dup2.terminal",
            Call::Dup2 {
                what: Stdio::Null, ..
            } => "dup2.null",
            Call::Dup2 {
                what: Stdio::Relay, ..
            } => "dup2.relay",
            Call::Dup2 {
                what: Stdio::StdinPipe,
                ..
            } => "dup2.stdin_pipe",
            Call::Dup2 {
                what: Stdio::ProxyStatus,
                ..
            } => "dup2.proxy_status",
            Call::Dup2 {
                what: Stdio::ProxyListener,
                ..
            } => "dup2.proxy_listener",
            Call::Dup2 {
                what: Stdio::ProxyNull,
                ..
            } => "dup2.proxy_null",
            Call::Dup2 {
                what: Stdio::ProxyLog,
                ..
            } => "dup2.proxy_log",
            Call::ProxyPipe => "pipe2.proxy",
            Call::KillProxy { .. } => "kill.proxy",
            Call::WaitProxy { .. } => "wait4.proxy",
            Call::CloseRange { first, .. } if *first > 3 => "close_range.proxy",
            Call::Execve { path, argv, .. }
                if path == std::path::Path::new("/proc/self/exe")
                    && argv.get(1).map(String::as_str) == Some("proxy") =>
            {
                "execve.proxy"
            }
            Call::Dup2 {
                what: Stdio::BuildOutput,
                ..
            } => "dup2.build_output",
            Call::Dup2 {
                what: Stdio::BuildRestore,
                ..
            } => "dup2.build_restore",
            Call::BlockSignals { .. } => "rt_sigprocmask.block",
            Call::RestoreSignals { .. } => "rt_sigprocmask.restore",
            Call::Open { path, .. } if path.starts_with("/sys/fs/cgroup") => "openat.cgroup",
            Call::BpfProgLoad { .. } => "bpf.prog_load",
            Call::BpfProgAttach { .. } => "bpf.prog_attach",
            Call::NetlinkSocket {
                proto: super::netlink::NlProto::Route,
            } => "socket.netlink",
            Call::NetlinkSocket { .. } => "socket.netlink.netfilter",
            Call::NetlinkBind { .. } => "bind.netlink",
            Call::NetlinkSend { req, .. } => req.what.explain_key(),
            Call::NetlinkRecv { what, .. }
                if what.proto() == super::netlink::NlProto::Netfilter =>
            {
                "recvfrom.netlink.netfilter"
            }
            Call::NetlinkRecv { .. } => "recvfrom.netlink",
            Call::SocketPort {
                transport: Transport::Tcp,
            } => "socket.port_tcp",
            Call::SocketPort {
                transport: Transport::Udp,
            } => "socket.port_udp",
            Call::SetReuseAddr { .. } => "setsockopt.reuseaddr",
            Call::BindInet { .. } => "bind.port",
            // NAT mode's reservation listens with a backlog of one (network::ports::hold).
            Call::Listen { backlog: 1, .. } => "listen.reserve",
            Call::Listen { .. } => "listen.port",
            Call::Getsockname { .. } => "getsockname.port",
            Call::Fsopen { .. } => "fsopen.probe",
            Call::FsconfigSource { .. } => "fsconfig.source",
            Call::FsconfigCreate { .. } => "fsconfig.create",
            Call::RunHook { .. } => "execve.hook",
            other => other.name(),
        }
    }

    /// The arguments rendered like `strace` renders them (without the surrounding parens),
    /// before the call: what the kernel fills in (a wait status, a pty number) shows as `…`.
    pub fn args(&self) -> String {
        self.args_with(None)
    }

    /// The arguments as `strace` prints them once the call returned `ret`: values the kernel
    /// wrote through pointer arguments are filled in from it.
    pub fn args_with(&self, ret: Option<&Ret>) -> String {
        let mut s = String::new();
        match self {
            Call::Clone { flags } => {
                let _ = write!(s, "child_stack=NULL, flags={}", clone_flags(*flags, true));
            }
            Call::Unshare { flags } => s.push_str(&clone_flags(*flags, false)),
            Call::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => {
                let _ = write!(
                    s,
                    "{}, {}, {}, {}, {}",
                    source
                        .as_ref()
                        .map(|p| path_arg(p))
                        .unwrap_or_else(|| "NULL".into()),
                    path_arg(target),
                    fstype
                        .as_deref()
                        .map(quote)
                        .unwrap_or_else(|| "NULL".into()),
                    ms_flags(*flags),
                    data.as_deref().map(quote).unwrap_or_else(|| "NULL".into()),
                );
            }
            Call::Umount2 { target, flags } => {
                let f = if flags.contains(MntFlags::MNT_DETACH) {
                    "MNT_DETACH"
                } else {
                    "0"
                };
                let _ = write!(s, "{}, {f}", quote(&target.to_string_lossy()));
            }
            Call::PivotRoot { new_root, put_old } => {
                let _ = write!(
                    s,
                    "{}, {}",
                    quote(&new_root.to_string_lossy()),
                    quote(&put_old.to_string_lossy())
                );
            }
            Call::Chroot { path } | Call::Chdir { path } | Call::Rmdir { path } => {
                s.push_str(&quote(&path.to_string_lossy()))
            }
            Call::Sethostname { name } | Call::Setdomainname { name } => {
                let _ = write!(s, "{}, {}", quote(name), name.len());
            }
            Call::Setns { fd, kind, .. } => {
                let _ = write!(s, "{fd}, {}", clone_flags(*kind, false));
            }
            Call::Mkdir { path, mode } => {
                let _ = write!(
                    s,
                    "{}, {}",
                    quote(&path.to_string_lossy()),
                    mode_octal(*mode)
                );
            }
            Call::Mknodat {
                dirfd,
                name,
                kind,
                mode,
                major,
                minor,
                ..
            } => {
                let ty = match kind {
                    'b' => "S_IFBLK",
                    'p' => "S_IFIFO",
                    _ => "S_IFCHR",
                };
                if *kind == 'p' {
                    let _ = write!(
                        s,
                        "{dirfd}, {}, {ty}|{}",
                        quote(&name.to_string_lossy()),
                        mode_octal(*mode)
                    );
                } else {
                    let _ = write!(
                        s,
                        "{dirfd}, {}, {ty}|{}, makedev({}, {})",
                        quote(&name.to_string_lossy()),
                        mode_octal(*mode),
                        hex(*major),
                        hex(*minor),
                    );
                }
            }
            Call::Fchownat {
                dirfd,
                name,
                uid,
                gid,
                ..
            } => {
                let _ = write!(
                    s,
                    "{dirfd}, {}, {uid}, {gid}, AT_SYMLINK_NOFOLLOW",
                    quote(&name.to_string_lossy())
                );
            }
            Call::Symlinkat {
                target,
                dirfd,
                linkpath,
            } => {
                let _ = write!(
                    s,
                    "{}, {dirfd}, {}",
                    quote(&target.to_string_lossy()),
                    quote(&linkpath.to_string_lossy())
                );
            }
            Call::Umask { mask } => s.push_str(&mode_octal(*mask)),
            Call::ConnectUnix { path } => {
                let fd = match ret {
                    Some(Ret::Fd(fd)) => fd.to_string(),
                    _ => "…".into(),
                };
                let p = path.display().to_string();
                let _ = write!(
                    s,
                    "{fd}, {{sa_family=AF_UNIX, sun_path={}}}, {}",
                    quote(&p),
                    2 + p.len()
                );
            }
            Call::SendFd { sock, fd, name } => {
                let _ = write!(
                    s,
                    "{sock}, {{msg_name=NULL, msg_namelen=0, msg_iov=[{{iov_base={}, iov_len={}}}], msg_iovlen=1, msg_control=[{{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[{fd}]}}], msg_controllen=24, msg_flags=0}}, 0",
                    quote(name),
                    name.len()
                );
            }
            Call::Mkfifo { path } => {
                let _ = write!(
                    s,
                    "AT_FDCWD, {}, S_IFIFO|0622",
                    quote(&path.display().to_string())
                );
            }
            Call::Prlimit {
                pid,
                name,
                soft,
                hard,
                ..
            } => {
                // As strace prints a limit: whole KiB counts as N*1024, no limit by name.
                let rlim = |v: u64| match v {
                    u64::MAX => "RLIM64_INFINITY".to_string(),
                    v if v > 1024 && v % 1024 == 0 => format!("{}*1024", v / 1024),
                    v => v.to_string(),
                };
                let _ = write!(
                    s,
                    "{pid}, {name}, {{rlim_cur={}, rlim_max={}}}, NULL",
                    rlim(*soft),
                    rlim(*hard)
                );
            }
            Call::Prctl { option, arg } => match option {
                Prctl::CapBsetDrop => {
                    let cap = super::caps::NAMES
                        .get(*arg as usize)
                        .map(|n| format!("CAP_{n}"));
                    let _ = write!(
                        s,
                        "PR_CAPBSET_DROP, {}",
                        cap.unwrap_or_else(|| arg.to_string())
                    );
                }
                Prctl::CapAmbientClearAll => {
                    s.push_str("PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0")
                }
                Prctl::CapAmbientRaise => {
                    let cap = super::caps::NAMES
                        .get(*arg as usize)
                        .map(|n| format!("CAP_{n}"));
                    let _ = write!(
                        s,
                        "PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, {}, 0, 0",
                        cap.unwrap_or_else(|| arg.to_string())
                    );
                }
                Prctl::SetPdeathsig => {
                    let sig = nix::sys::signal::Signal::try_from(*arg as i32)
                        .map(|s| s.as_str().to_string());
                    let _ = write!(
                        s,
                        "PR_SET_PDEATHSIG, {}",
                        sig.unwrap_or_else(|_| arg.to_string())
                    );
                }
                Prctl::SetDumpable => {
                    let v = match arg {
                        0 => "SUID_DUMP_DISABLE".to_string(),
                        1 => "SUID_DUMP_USER".to_string(),
                        n => n.to_string(),
                    };
                    let _ = write!(s, "PR_SET_DUMPABLE, {v}");
                }
                // The kernel checks that the unused arguments are 0, so they are passed, and
                // strace shows them.
                Prctl::SetNoNewPrivs => {
                    let _ = write!(s, "PR_SET_NO_NEW_PRIVS, {arg}, 0, 0, 0");
                }
                Prctl::SetKeepCaps => {
                    let _ = write!(s, "PR_SET_KEEPCAPS, {arg}");
                }
            },
            Call::Capset {
                effective,
                permitted,
                inheritable,
            } => {
                let _ = write!(
                    s,
                    "{{version=_LINUX_CAPABILITY_VERSION_3, pid=0}}, {{effective={}, permitted={}, inheritable={}}}",
                    cap_set(*effective),
                    cap_set(*permitted),
                    cap_set(*inheritable)
                );
            }
            Call::Setgroups { gids } => {
                let list: Vec<String> = gids.iter().map(|g| g.to_string()).collect();
                let _ = write!(s, "{}, [{}]", gids.len(), list.join(", "));
            }
            Call::Setresgid { gid } => {
                let _ = write!(s, "{gid}, {gid}, {gid}");
            }
            Call::Setresuid { uid } => {
                let _ = write!(s, "{uid}, {uid}, {uid}");
            }
            Call::Setsid => {}
            Call::IoctlSetCtty { fd } => {
                let _ = write!(s, "{fd}, TIOCSCTTY, 0");
            }
            Call::Dup2 { old, new, .. } => {
                let _ = write!(s, "{old}, {new}");
            }
            Call::CloseRange { first, .. } => {
                let _ = write!(s, "{first}, 4294967295, CLOSE_RANGE_CLOEXEC");
            }
            Call::CloseRangeNow { first, last } => {
                let _ = write!(s, "{first}, {last}, 0");
            }
            Call::Seccomp { filter, about } => {
                let _ = write!(
                    s,
                    "SECCOMP_SET_MODE_FILTER, 0, {{len={}, filter=…}} /* {about} */",
                    filter.len()
                );
            }
            Call::RunHost { argv } => {
                let a: Vec<String> = argv.iter().map(|x| quote(x)).collect();
                let _ = write!(
                    s,
                    "{}, [{}], 0x… /* in a child; then wait4: {} */",
                    quote(argv.first().map_or("", String::as_str)),
                    a.join(", "),
                    match ret {
                        Some(Ret::Ran { status, .. }) => wait_status(*status),
                        _ => "…".into(),
                    }
                );
            }
            Call::Execve { path, argv, envp } => {
                let a: Vec<String> = argv.iter().map(|x| quote(x)).collect();
                let _ = write!(
                    s,
                    "{}, [{}], 0x… /* {} vars */",
                    quote(&path.to_string_lossy()),
                    a.join(", "),
                    envp.len()
                );
            }
            Call::Openat2 {
                dirfd,
                path,
                flags,
                mode,
                resolve,
            } => {
                let _ = write!(
                    s,
                    "{dirfd}, {}, {{flags={}{}, resolve={}}}, 24",
                    quote(&path.to_string_lossy()),
                    o_flags(*flags | libc::O_CLOEXEC),
                    if flags & libc::O_CREAT != 0 {
                        format!(", mode={}", mode_octal(*mode))
                    } else {
                        String::new()
                    },
                    resolve_flags(*resolve)
                );
            }
            Call::Mkdirat { dirfd, path, mode } => {
                let _ = write!(
                    s,
                    "{dirfd}, {}, {}",
                    quote(&path.to_string_lossy()),
                    mode_octal(*mode)
                );
            }
            Call::Open { path, flags, mode } => {
                let _ = write!(
                    s,
                    "AT_FDCWD, {}, {}",
                    quote(&path.to_string_lossy()),
                    o_flags(*flags | libc::O_CLOEXEC)
                );
                if flags & libc::O_CREAT != 0 {
                    let _ = write!(s, ", {}", mode_octal(*mode));
                }
            }
            Call::IoctlPty { fd, op } => {
                let _ = match op {
                    PtyOp::Unlock => write!(s, "{fd}, TIOCSPTLCK, [0]"),
                    PtyOp::Number => match ret {
                        Some(Ret::PtyNumber(n)) => write!(s, "{fd}, TIOCGPTN, [{n}]"),
                        _ => write!(s, "{fd}, TIOCGPTN, […]"),
                    },
                    PtyOp::Winsize { rows, cols } => write!(
                        s,
                        "{fd}, TIOCSWINSZ, {{ws_row={rows}, ws_col={cols}, ws_xpixel=0, ws_ypixel=0}}"
                    ),
                };
            }
            Call::UnblockSignals => s.push_str("SIG_SETMASK, [], NULL, 8"),
            Call::SigactionDefault { signal } => {
                let _ = write!(
                    s,
                    "{}, {{sa_handler=SIG_DFL, sa_mask=[], sa_flags=0}}, NULL, 8",
                    signal_name(*signal)
                );
            }
            Call::Flock { fd, .. } => {
                let _ = write!(s, "{fd}, LOCK_EX|LOCK_NB");
            }
            Call::KillProxy { pid } => {
                let _ = write!(s, "{pid}, SIGKILL");
            }
            Call::Kill { pid, signal } => {
                let name = nix::sys::signal::Signal::try_from(*signal)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|_| signal.to_string());
                let _ = write!(s, "{pid}, {name}");
            }
            Call::Wait4 { pid } | Call::WaitProxy { pid } => {
                let status = match ret {
                    Some(Ret::Waited { status, .. }) => wait_status(*status),
                    _ => "…".into(),
                };
                let _ = write!(s, "{pid}, {status}, __WALL, NULL");
            }
            Call::Write { fd, data, .. } => {
                let _ = write!(s, "{fd}, {}, {}", quote(data), data.len());
            }
            Call::Close { fd, .. } => {
                let _ = write!(s, "{fd}");
            }
            Call::SocketInet => s.push_str("AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP"),
            Call::IoctlIfFlags { fd, name, set } => {
                let (op, flags) = match (set, ret) {
                    (Some(f), _) => ("SIOCSIFFLAGS", if_flags(*f)),
                    (None, Some(Ret::IfFlags(f))) => ("SIOCGIFFLAGS", if_flags(*f)),
                    (None, _) => ("SIOCGIFFLAGS", "…".into()),
                };
                let _ = write!(
                    s,
                    "{fd}, {op}, {{ifr_name={}, ifr_flags={flags}}}",
                    quote(name)
                );
            }
            Call::Socketpair => {
                let fds = match ret {
                    Some(Ret::FdPair(a, b)) => format!("[{a}, {b}]"),
                    _ => "[…]".into(),
                };
                let _ = write!(s, "AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC, 0, {fds}");
            }
            Call::BindUnix { dir, name } => {
                let fd = match ret {
                    Some(Ret::Fd(fd)) => fd.to_string(),
                    _ => "…".into(),
                };
                // The address's length as nix passes it: the family, then the path without
                // its NUL.
                let path = format!("/proc/self/fd/{dir}/{name}");
                let _ = write!(
                    s,
                    "{fd}, {{sa_family=AF_UNIX, sun_path={}}}, {}",
                    quote(&path),
                    2 + path.len()
                );
            }
            Call::PidfdOpen { pid } | Call::PidfdOpenEngine { pid } => {
                let _ = write!(s, "{pid}, 0");
            }
            Call::PidfdSendSignal { fd, signal, .. } => {
                let _ = write!(s, "{fd}, {}, NULL, 0", signal_name(*signal));
            }
            Call::Pipe2 | Call::ProxyPipe => {
                let fds = match ret {
                    Some(Ret::FdPair(a, b)) => format!("[{a}, {b}]"),
                    _ => "[…]".into(),
                };
                let _ = write!(s, "{fds}, O_CLOEXEC");
            }
            Call::BlockSignals { signals } => {
                let mask = signals
                    .iter()
                    .fold(0u64, |m, sig| m | 1u64 << (*sig as u64 - 1));
                let old = match ret {
                    Some(Ret::OldMask(m)) => sig_set(*m),
                    _ => "…".into(),
                };
                let _ = write!(s, "SIG_BLOCK, {}, {old}, 8", sig_set(mask));
            }
            Call::RestoreSignals { mask } => {
                let _ = write!(s, "SIG_SETMASK, {}, NULL, 8", sig_set(*mask));
            }
            Call::OpenTree { path } => {
                let _ = write!(
                    s,
                    "AT_FDCWD, {}, OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC",
                    quote(&path.to_string_lossy())
                );
            }
            Call::MountSetattrRdonly { fd } => {
                let _ = write!(
                    s,
                    "{fd}, \"\", AT_EMPTY_PATH, {{attr_set=MOUNT_ATTR_RDONLY, attr_clr=0, propagation=0, userns_fd=0}}, {}",
                    std::mem::size_of::<libc::mount_attr>()
                );
            }
            Call::MemfdCreate { name } => {
                let _ = write!(s, "{}, MFD_CLOEXEC|MFD_ALLOW_SEALING", quote(name));
            }
            Call::Sendfile {
                out_fd,
                in_fd,
                count,
            } => {
                let _ = write!(s, "{out_fd}, {in_fd}, NULL, {count}");
            }
            Call::Access { path, mode } => {
                if ACCESS == "faccessat" {
                    s.push_str("AT_FDCWD, ");
                }
                let mode = match *mode {
                    libc::F_OK => "F_OK".to_string(),
                    libc::X_OK => "X_OK".to_string(),
                    other => format!("{other:#o}"),
                };
                let _ = write!(s, "{}, {mode}", path_arg(path));
            }
            Call::Read { fd, cap, .. } => {
                // strace shows the bytes read, or the buffer's address when there were none.
                let buf = match ret {
                    Some(Ret::Received(b)) => quote(&String::from_utf8_lossy(b)),
                    _ => "0x…".into(),
                };
                let _ = write!(s, "{fd}, {buf}, {cap}");
            }
            Call::Unlink { path } => {
                let _ = write!(s, "AT_FDCWD, {}, 0", path_arg(path));
            }
            // strace shows the buffer's address and the entries' number as a comment.
            Call::Getdents { fd, cap, .. } => {
                let count = match ret {
                    Some(Ret::Dirents { entries, .. }) => {
                        format!(" /* {} entries */", entries.len())
                    }
                    _ => String::new(),
                };
                let _ = write!(s, "{fd}, 0x…{count}, {cap}");
            }
            Call::Poll { fds, timeout, .. } => {
                let asked: Vec<String> = fds
                    .iter()
                    .map(|fd| format!("{{fd={fd}, events=POLLIN}}"))
                    .collect();
                let _ = write!(s, "[{}], {}, {timeout}", asked.join(", "), fds.len());
            }
            Call::Stat { path } => {
                let buf = match ret {
                    Some(Ret::Stat { mode, size, rdev }) => stat_struct(*mode, *size, *rdev),
                    _ => "…".into(),
                };
                let _ = write!(s, "AT_FDCWD, {}, {buf}, 0", path_arg(path));
            }
            Call::Fstatfs { fd, .. } => {
                let buf = match ret {
                    Some(Ret::Statfs(st)) => statfs_struct(st),
                    _ => "…".into(),
                };
                let _ = write!(s, "{fd}, {buf}");
            }
            Call::StatxMntId { fd, .. } => {
                let buf = match ret {
                    Some(Ret::Statx {
                        mask,
                        attributes,
                        mode,
                        size,
                        ..
                    }) => statx_struct(*mask, *attributes, *mode, *size),
                    _ => "…".into(),
                };
                let _ = write!(
                    s,
                    "{fd}, \"\", AT_STATX_SYNC_AS_STAT|AT_EMPTY_PATH, STATX_MNT_ID, {buf}"
                );
            }
            Call::AddSeals { fd } => {
                let _ = write!(
                    s,
                    "{fd}, F_ADD_SEALS, F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE"
                );
            }
            Call::Execveat { fd, argv, envp } => {
                // Shown lossily (U+FFFD for a byte that is not UTF-8); passed exactly.
                let a: Vec<String> = argv.iter().map(|x| quote(&x.to_string_lossy())).collect();
                let _ = write!(
                    s,
                    "{fd}, \"\", [{}], 0x… /* {} vars */, AT_EMPTY_PATH",
                    a.join(", "),
                    envp.len()
                );
            }
            Call::BpfProgLoad { insns } => {
                let _ = write!(
                    s,
                    "BPF_PROG_LOAD, {{prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt={}, insns=…, license=\"Apache-2.0\", prog_name=\"dockling_dev\", expected_attach_type=BPF_CGROUP_DEVICE}}, 72",
                    insns.len()
                );
            }
            Call::BpfProgAttach {
                target_fd, prog_fd, ..
            } => {
                let _ = write!(
                    s,
                    "BPF_PROG_ATTACH, {{target_fd={target_fd}, attach_bpf_fd={prog_fd}, attach_type=BPF_CGROUP_DEVICE, attach_flags=BPF_F_ALLOW_MULTI, replace_bpf_fd=0}}, 20"
                );
            }
            Call::NetlinkSocket { proto } => {
                let _ = write!(s, "AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, {}", proto.name());
            }
            Call::NetlinkBind { fd } => {
                let _ = write!(
                    s,
                    "{fd}, {{sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}}, 12"
                );
            }
            Call::NetlinkSend { fd, req } => {
                let _ = write!(
                    s,
                    "{fd}, {}, {}, 0, NULL, 0 /* {} */",
                    super::netlink::render_of(req.what.proto(), &req.bytes),
                    req.bytes.len(),
                    super::netlink::one_line(&req.command)
                );
            }
            Call::NetlinkRecv { fd, cap, what, .. } => {
                let buf = match ret {
                    Some(Ret::Received(b)) => super::netlink::render_of(what.proto(), b),
                    _ => "…".into(),
                };
                let _ = write!(s, "{fd}, {buf}, {cap}, 0, NULL, NULL");
            }
            Call::SocketPort { transport } => {
                let kind = match transport {
                    Transport::Tcp => "SOCK_STREAM",
                    Transport::Udp => "SOCK_DGRAM",
                };
                let _ = write!(s, "AF_INET, {kind}|SOCK_CLOEXEC, IPPROTO_IP");
            }
            Call::SetReuseAddr { fd } => {
                let _ = write!(s, "{fd}, SOL_SOCKET, SO_REUSEADDR, [1], 4");
            }
            Call::BindInet { fd, addr, .. } => {
                let _ = write!(s, "{fd}, {}, 16", sockaddr_in(addr));
            }
            Call::Listen { fd, backlog, .. } => {
                let _ = write!(s, "{fd}, {backlog}");
            }
            Call::Getsockname { fd } => {
                let addr = match ret {
                    Some(Ret::SockName(a)) => sockaddr_in(a),
                    _ => "…".into(),
                };
                let _ = write!(s, "{fd}, {addr}, [16]");
            }
            Call::Fsopen { fstype } => {
                let _ = write!(s, "{}, FSOPEN_CLOEXEC", quote(fstype));
            }
            Call::FsconfigSource { fd, source } => {
                let _ = write!(
                    s,
                    "{fd}, FSCONFIG_SET_STRING, \"source\", {}, 0",
                    path_arg(source)
                );
            }
            Call::FsconfigCreate { fd } => {
                let _ = write!(s, "{fd}, FSCONFIG_CMD_CREATE, NULL, NULL, 0");
            }
            Call::RunHook {
                path, argv, envp, ..
            } => {
                let a: Vec<String> = argv.iter().map(|x| quote(x)).collect();
                let _ = write!(
                    s,
                    "{}, [{}], 0x… /* {} */",
                    quote(&path.to_string_lossy()),
                    a.join(", "),
                    match envp {
                        Some(e) => format!("{} vars", e.len()),
                        None => "the engine's environment".into(),
                    }
                );
            }
            Call::SchedSetattr { attr } => {
                let _ = write!(
                    s,
                    "0, {{size=48, sched_policy={}, sched_flags={}, sched_nice={}, \
                     sched_priority={}, sched_runtime={}, sched_deadline={}, sched_period={}}}, 0",
                    sched_policy_name(attr.policy),
                    hex(attr.flags),
                    attr.nice,
                    attr.priority,
                    attr.runtime,
                    attr.deadline,
                    attr.period
                );
            }
            Call::IoprioSet { class, level } => {
                let name = match class {
                    1 => "IOPRIO_CLASS_RT",
                    2 => "IOPRIO_CLASS_BE",
                    3 => "IOPRIO_CLASS_IDLE",
                    _ => "IOPRIO_CLASS_NONE",
                };
                let _ = write!(
                    s,
                    "IOPRIO_WHO_PROCESS, 0, IOPRIO_PRIO_VALUE({name}, {level})"
                );
            }
            Call::SetMempolicy {
                mode,
                flags,
                nodes,
                maxnode,
            } => {
                let mut m = match mode {
                    0 => "MPOL_DEFAULT",
                    1 => "MPOL_PREFERRED",
                    2 => "MPOL_BIND",
                    3 => "MPOL_INTERLEAVE",
                    4 => "MPOL_LOCAL",
                    5 => "MPOL_PREFERRED_MANY",
                    6 => "MPOL_WEIGHTED_INTERLEAVE",
                    _ => "?",
                }
                .to_string();
                for (bit, name) in [
                    (1 << 15, "MPOL_F_STATIC_NODES"),
                    (1 << 14, "MPOL_F_RELATIVE_NODES"),
                    (1 << 13, "MPOL_F_NUMA_BALANCING"),
                ] {
                    if flags & bit != 0 {
                        m.push('|');
                        m.push_str(name);
                    }
                }
                let mask = if nodes.is_empty() {
                    "NULL".to_string()
                } else {
                    let words: Vec<String> = nodes.iter().map(|w| hex(*w)).collect();
                    format!("[{}]", words.join(", "))
                };
                let _ = write!(s, "{m}, {mask}, {maxnode}");
            }
        }
        s
    }

    /// A short name of what the call acts on, for error messages: `mount /x/merged`.
    pub fn object(&self) -> String {
        match self {
            Call::Mount { target, .. } | Call::Umount2 { target, .. } => {
                target.display().to_string()
            }
            Call::PivotRoot { new_root, .. } => new_root.display().to_string(),
            Call::Chroot { path }
            | Call::Chdir { path }
            | Call::Mkdir { path, .. }
            | Call::Rmdir { path }
            | Call::Write { path, .. }
            | Call::OpenTree { path }
            | Call::Openat2 { path, .. }
            | Call::Mkdirat { path, .. }
            | Call::Open { path, .. }
            | Call::Access { path, .. }
            | Call::Stat { path }
            | Call::Read { path, .. }
            | Call::Getdents { path, .. }
            | Call::Unlink { path }
            | Call::Execve { path, .. } => path.display().to_string(),
            Call::Poll { what, .. } => what.clone(),
            Call::RunHost { argv } => argv.join(" "),
            Call::Mknodat {
                inside: Some(inside),
                ..
            }
            | Call::Fchownat { inside, .. } => inside.display().to_string(),
            Call::Mknodat { name, .. } => name.display().to_string(),
            Call::BpfProgLoad { .. } => "cgroup device program".into(),
            Call::BpfProgAttach { cgroup, .. } => cgroup.display().to_string(),
            Call::IoctlPty { fd, .. } => format!("fd {fd}"),
            Call::Symlinkat { linkpath, .. } => linkpath.display().to_string(),
            Call::Umask { mask } => mode_octal(*mask),
            Call::Mkfifo { path } | Call::ConnectUnix { path } => path.display().to_string(),
            Call::SendFd { name, .. } => name.clone(),
            Call::Prlimit { name, pid, .. } => format!("{name} of pid {pid}"),
            Call::Setns { kind, pid: 0, .. } => {
                format!("{} of dockling itself", clone_flags(*kind, false))
            }
            Call::Setns { kind, pid, .. } => {
                format!("{} of pid {pid}", clone_flags(*kind, false))
            }
            Call::Sethostname { name }
            | Call::Setdomainname { name }
            | Call::BindUnix { name, .. }
            | Call::IoctlIfFlags { name, .. }
            | Call::MemfdCreate { name } => name.clone(),
            Call::Close { object, .. }
            | Call::Fstatfs { object, .. }
            | Call::StatxMntId { object, .. } => object.clone(),
            Call::Flock { path, .. } => path.display().to_string(),
            Call::MountSetattrRdonly { fd } | Call::AddSeals { fd } | Call::Execveat { fd, .. } => {
                format!("fd {fd}")
            }
            Call::Sendfile { out_fd, in_fd, .. } => format!("fd {in_fd} to fd {out_fd}"),
            Call::Prctl { option, .. } => option.name().to_string(),
            Call::Kill { pid, .. }
            | Call::Wait4 { pid }
            | Call::KillProxy { pid }
            | Call::WaitProxy { pid }
            | Call::PidfdOpen { pid }
            | Call::PidfdOpenEngine { pid }
            | Call::PidfdSendSignal { pid, .. } => format!("pid {pid}"),
            Call::SigactionDefault { signal } => signal_name(*signal),
            Call::Clone { flags } | Call::Unshare { flags } => clone_flags(*flags, false),
            Call::Setresuid { uid } => format!("uid {uid}"),
            Call::Setresgid { gid } => format!("gid {gid}"),
            Call::Setgroups { gids } => format!("{gids:?}"),
            Call::Dup2 { old, new, .. } => format!("{old} -> {new}"),
            Call::IoctlSetCtty { fd } => format!("fd {fd}"),
            Call::CloseRange { first, .. } => {
                format!("fds from {first}")
            }
            Call::NetlinkSend { req, .. } => super::netlink::one_line(&req.command).into_owned(),
            Call::NetlinkRecv { command, .. } => super::netlink::one_line(command).into_owned(),
            Call::NetlinkSocket { proto } => proto.name().into(),
            Call::NetlinkBind { .. } => "netlink socket".into(),
            Call::CloseRangeNow { first, last } => format!("fds {first} to {last}"),
            Call::BindInet {
                addr, transport, ..
            } => format!("{transport} {addr}"),
            Call::Listen { addr, .. } => format!("tcp {addr}"),
            Call::SetReuseAddr { fd } | Call::Getsockname { fd } => format!("fd {fd}"),
            Call::SocketPort { transport } => format!("AF_INET {transport}"),
            Call::Fsopen { fstype } => format!("{fstype} context"),
            Call::FsconfigSource { source, .. } => source.display().to_string(),
            Call::FsconfigCreate { fd } => format!("fs context fd {fd}"),
            Call::RunHook { kind, path, .. } => format!("{kind} {}", path.display()),
            Call::SchedSetattr { attr } => sched_policy_name(attr.policy),
            Call::IoprioSet { .. } => "the container's process".into(),
            Call::SetMempolicy { .. } => "the container's process".into(),
            Call::Capset { .. }
            | Call::Setsid
            | Call::Seccomp { .. }
            | Call::UnblockSignals
            | Call::SocketInet
            | Call::Socketpair
            | Call::Pipe2
            | Call::ProxyPipe
            | Call::BlockSignals { .. }
            | Call::RestoreSignals { .. } => String::new(),
        }
    }

    /// What the syscall the trace names returned, as strace prints it after `=`: the
    /// result's number, except for the calls that do more than one syscall and hand back a
    /// descriptor made by another (`connect` and `bind` return 0; the socket came from
    /// `socket`).
    pub fn returned(&self, ret: &Ret) -> i64 {
        match self {
            Call::ConnectUnix { .. } | Call::BindUnix { .. } => 0,
            _ => ret.value(),
        }
    }

    /// [`Call::returned`] as the pretty trace prints it (a umask in octal).
    pub fn shown_result(&self, ret: &Ret) -> String {
        match ret {
            Ret::Umask(_) => ret.shown(),
            r => self.returned(r).to_string(),
        }
    }

    /// One value of every kind of call (and every refinement of its explanation key), so tests
    /// can check that the catalog explains each. The `match` below fails to compile when a new
    /// variant is added without an example here.
    pub fn examples() -> Vec<Call> {
        fn _every_variant_listed(c: &Call) {
            match c {
                Call::Clone { .. }
                | Call::Unshare { .. }
                | Call::Mount { .. }
                | Call::Umount2 { .. }
                | Call::PivotRoot { .. }
                | Call::Chroot { .. }
                | Call::Chdir { .. }
                | Call::Sethostname { .. }
                | Call::Setdomainname { .. }
                | Call::Setns { .. }
                | Call::Mkdir { .. }
                | Call::Mknodat { .. }
                | Call::Symlinkat { .. }
                | Call::Umask { .. }
                | Call::Mkfifo { .. }
                | Call::ConnectUnix { .. }
                | Call::SendFd { .. }
                | Call::Prlimit { .. }
                | Call::Rmdir { .. }
                | Call::Prctl { .. }
                | Call::Capset { .. }
                | Call::Setgroups { .. }
                | Call::Setresgid { .. }
                | Call::Setresuid { .. }
                | Call::Setsid
                | Call::IoctlSetCtty { .. }
                | Call::Dup2 { .. }
                | Call::CloseRange { .. }
                | Call::CloseRangeNow { .. }
                | Call::Seccomp { .. }
                | Call::Openat2 { .. }
                | Call::Mkdirat { .. }
                | Call::Open { .. }
                | Call::IoctlPty { .. }
                | Call::UnblockSignals
                | Call::Execve { .. }
                | Call::RunHost { .. }
                | Call::Fchownat { .. }
                | Call::Kill { .. }
                | Call::SigactionDefault { .. }
                | Call::Wait4 { .. }
                | Call::Write { .. }
                | Call::Close { .. }
                | Call::SocketInet
                | Call::IoctlIfFlags { .. }
                | Call::Socketpair
                | Call::BindUnix { .. }
                | Call::Pipe2
                | Call::ProxyPipe
                | Call::Flock { .. }
                | Call::KillProxy { .. }
                | Call::WaitProxy { .. }
                | Call::PidfdOpen { .. }
                | Call::PidfdOpenEngine { .. }
                | Call::PidfdSendSignal { .. }
                | Call::BlockSignals { .. }
                | Call::RestoreSignals { .. }
                | Call::OpenTree { .. }
                | Call::MountSetattrRdonly { .. }
                | Call::MemfdCreate { .. }
                | Call::AddSeals { .. }
                | Call::Sendfile { .. }
                | Call::Fstatfs { .. }
                | Call::StatxMntId { .. }
                | Call::Access { .. }
                | Call::Stat { .. }
                | Call::Read { .. }
                | Call::Getdents { .. }
                | Call::Unlink { .. }
                | Call::Poll { .. }
                | Call::Execveat { .. }
                | Call::BpfProgLoad { .. }
                | Call::BpfProgAttach { .. }
                | Call::NetlinkSocket { .. }
                | Call::NetlinkBind { .. }
                | Call::NetlinkSend { .. }
                | Call::NetlinkRecv { .. }
                | Call::SocketPort { .. }
                | Call::SetReuseAddr { .. }
                | Call::BindInet { .. }
                | Call::Listen { .. }
                | Call::Getsockname { .. }
                | Call::Fsopen { .. }
                | Call::FsconfigSource { .. }
                | Call::FsconfigCreate { .. }
                | Call::RunHook { .. }
                | Call::SchedSetattr { .. }
                | Call::IoprioSet { .. }
                | Call::SetMempolicy { .. } => {}
            }
        }
        let p = PathBuf::from;
        let mount = |fstype: Option<&str>, flags: MsFlags| Call::Mount {
            source: None,
            target: p("/x"),
            fstype: fstype.map(String::from),
            flags,
            data: None,
        };
        let mut v = vec![
            Call::Clone {
                flags: CloneFlags::CLONE_NEWPID,
            },
            Call::Clone {
                flags: CloneFlags::empty(),
            },
            Call::Clone {
                flags: CloneFlags::CLONE_PARENT,
            },
            Call::Unshare {
                flags: CloneFlags::CLONE_NEWNS,
            },
            Call::Unshare {
                flags: CloneFlags::CLONE_NEWCGROUP,
            },
            mount(None, MsFlags::MS_REMOUNT),
            mount(None, MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            mount(None, MsFlags::MS_BIND),
            mount(None, MsFlags::empty()),
            Call::Umount2 {
                target: p("/x"),
                flags: MntFlags::MNT_DETACH,
            },
            Call::PivotRoot {
                new_root: p("."),
                put_old: p("."),
            },
            Call::Chroot { path: p(".") },
            Call::Chdir { path: p("/") },
            Call::Sethostname { name: "box".into() },
            Call::Setdomainname {
                name: "example".into(),
            },
            Call::Setns {
                fd: 3,
                kind: CloneFlags::CLONE_NEWNS,
                pid: 4242,
            },
            Call::Setns {
                fd: 3,
                kind: CloneFlags::CLONE_NEWNET,
                pid: 0,
            },
            Call::Setns {
                fd: 3,
                kind: CloneFlags::CLONE_NEWPID,
                pid: 0,
            },
            Call::Mkdir {
                path: p("/x"),
                mode: 0o755,
            },
            Call::Mknodat {
                dirfd: 5,
                name: p("null"),
                inside: None,
                kind: 'c',
                mode: 0o666,
                major: 1,
                minor: 3,
            },
            Call::Symlinkat {
                target: p("/proc/self/fd"),
                dirfd: 5,
                linkpath: p("fd"),
            },
            Call::Umask { mask: 0o022 },
            Call::Mkfifo {
                path: p("/run/dockling-runc/c/exec.fifo"),
            },
            Call::ConnectUnix {
                path: p("/run/conmon/console.sock"),
            },
            Call::SendFd {
                sock: 9,
                fd: 8,
                name: "/dev/pts/0".into(),
            },
            Call::Prlimit {
                pid: 42,
                resource: libc::RLIMIT_NOFILE as i32,
                name: "RLIMIT_NOFILE".into(),
                soft: 1024,
                hard: 1024,
            },
            Call::Rmdir { path: p("/x") },
            Call::Capset {
                effective: 0,
                permitted: 0,
                inheritable: 0,
            },
            Call::Setgroups { gids: vec![] },
            Call::Setresgid { gid: 0 },
            Call::Setresuid { uid: 0 },
            Call::Setsid,
            Call::IoctlSetCtty { fd: 0 },
            Call::Dup2 {
                old: 3,
                new: 0,
                what: Stdio::Terminal,
            },
            Call::Dup2 {
                old: 3,
                new: 0,
                what: Stdio::Null,
            },
            Call::CloseRange {
                first: 3,
                preserving: false,
            },
            Call::CloseRange {
                first: 5,
                preserving: true,
            },
            Call::CloseRangeNow {
                first: 3,
                last: u32::MAX,
            },
            {
                // A one-instruction program by hand (`BPF_RET | BPF_K`, `SECCOMP_RET_ALLOW`):
                // the seam knows the instruction, not the compiler above it.
                Call::Seccomp {
                    filter: vec![super::bpf::SockFilter {
                        code: 0x06,
                        jt: 0,
                        jf: 0,
                        k: 0x7fff_0000,
                    }],
                    about: "allow every syscall".into(),
                }
            },
            Call::Execve {
                path: p("/bin/sh"),
                argv: vec![],
                envp: vec![],
            },
            Call::Openat2 {
                dirfd: 5,
                path: p("etc"),
                flags: libc::O_PATH | libc::O_DIRECTORY,
                mode: 0,
                resolve: libc::RESOLVE_IN_ROOT,
            },
            Call::Openat2 {
                dirfd: 5,
                path: p("etc/hostname"),
                flags: libc::O_CREAT | libc::O_WRONLY,
                mode: 0o644,
                resolve: libc::RESOLVE_IN_ROOT,
            },
            Call::Mkdirat {
                dirfd: 5,
                path: p("data"),
                mode: 0o755,
            },
            Call::Open {
                path: p("/dev/null"),
                flags: libc::O_RDONLY,
                mode: 0,
            },
            Call::Open {
                path: p("/dev/ptmx"),
                flags: libc::O_RDWR | libc::O_NOCTTY,
                mode: 0,
            },
            Call::Open {
                path: p("/dev/pts/0"),
                flags: libc::O_RDWR,
                mode: 0,
            },
            Call::Open {
                path: p("/proc/4242/ns/mnt"),
                flags: libc::O_RDONLY | libc::O_CLOEXEC,
                mode: 0,
            },
            Call::Open {
                path: p("/var/lib/dockling/containers/x/rootfs"),
                flags: libc::O_PATH | libc::O_DIRECTORY,
                mode: 0,
            },
            Call::IoctlPty {
                fd: 3,
                op: PtyOp::Unlock,
            },
            Call::IoctlPty {
                fd: 3,
                op: PtyOp::Number,
            },
            Call::IoctlPty {
                fd: 0,
                op: PtyOp::Winsize { rows: 24, cols: 80 },
            },
            Call::UnblockSignals,
            Call::Kill { pid: 1, signal: 15 },
            Call::SigactionDefault {
                signal: libc::SIGPIPE,
            },
            Call::Wait4 { pid: 1 },
            Call::Open {
                path: p("/sys/fs/cgroup/pids/x/pids.max"),
                flags: libc::O_WRONLY,
                mode: 0,
            },
            Call::Open {
                path: p("/proc/self/x"),
                flags: libc::O_WRONLY,
                mode: 0,
            },
            Call::Open {
                path: p("/var/lib/dockling/containers/x/hostname"),
                flags: libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                mode: 0o644,
            },
            Call::Write {
                fd: 3,
                path: p("/proc/self/x"),
                data: "1".into(),
            },
            Call::Write {
                fd: 3,
                path: p("/proc/sys/net/ipv4/conf/dockling0/forwarding"),
                data: "1".into(),
            },
            Call::Write {
                fd: 3,
                path: p("/sys/fs/cgroup/pids/x/pids.max"),
                data: "1".into(),
            },
            Call::Write {
                fd: 3,
                path: p("/var/lib/dockling/containers/x/hostname"),
                data: "x\n".into(),
            },
            Call::Close {
                fd: 3,
                object: "x".into(),
            },
            Call::SocketInet,
            Call::IoctlIfFlags {
                fd: 3,
                name: "lo".into(),
                set: None,
            },
            Call::IoctlIfFlags {
                fd: 3,
                name: "lo".into(),
                set: Some(libc::IFF_UP),
            },
            Call::Socketpair,
            Call::BindUnix {
                dir: 3,
                name: "attach".into(),
            },
            Call::Pipe2,
            Call::ProxyPipe,
            Call::Flock {
                fd: 3,
                path: p("/var/lib/dockling/networks/n/.lock"),
            },
            Call::Open {
                path: p("/var/lib/dockling/networks/n/.lock"),
                flags: libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
                mode: 0o666,
            },
            Call::Openat2 {
                dirfd: 3,
                path: p("hosts"),
                flags: libc::O_WRONLY | libc::O_TRUNC,
                mode: 0,
                resolve: libc::RESOLVE_BENEATH,
            },
            Call::Open {
                path: p("/var/lib/dockling/containers/x"),
                flags: libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                mode: 0,
            },
            Call::KillProxy { pid: 4242 },
            Call::WaitProxy { pid: 4242 },
            Call::RunHost {
                argv: vec!["ps".into(), "-ef".into()],
            },
            Call::Mknodat {
                dirfd: 5,
                name: p("fuse"),
                inside: Some(p("/dev/fuse")),
                kind: 'c',
                mode: 0o666,
                major: 10,
                minor: 229,
            },
            Call::Fchownat {
                dirfd: 5,
                name: p("fuse"),
                inside: p("/dev/fuse"),
                uid: 0,
                gid: 0,
            },
            Call::CloseRange {
                first: 5,
                preserving: false,
            },
            Call::Execve {
                path: p("/proc/self/exe"),
                argv: vec!["dockling".into(), "proxy".into()],
                envp: vec![],
            },
            Call::Dup2 {
                old: 9,
                new: 3,
                what: Stdio::ProxyStatus,
            },
            Call::Dup2 {
                old: 9,
                new: 4,
                what: Stdio::ProxyListener,
            },
            Call::Dup2 {
                old: 9,
                new: 0,
                what: Stdio::ProxyNull,
            },
            Call::Dup2 {
                old: 9,
                new: 2,
                what: Stdio::ProxyLog,
            },
            Call::PidfdOpen { pid: 4242 },
            Call::PidfdOpenEngine { pid: 4242 },
            Call::PidfdSendSignal {
                fd: 3,
                pid: 4242,
                signal: libc::SIGKILL,
            },
            Call::Dup2 {
                old: 4,
                new: 1,
                what: Stdio::Relay,
            },
            Call::Dup2 {
                old: 4,
                new: 0,
                what: Stdio::StdinPipe,
            },
            Call::Dup2 {
                old: 4,
                new: 1,
                what: Stdio::BuildOutput,
            },
            Call::Dup2 {
                old: 4,
                new: 1,
                what: Stdio::BuildRestore,
            },
            Call::BlockSignals {
                signals: vec![libc::SIGCHLD],
            },
            Call::RestoreSignals { mask: 0 },
            Call::OpenTree {
                path: p("/proc/self/exe"),
            },
            Call::MountSetattrRdonly { fd: 3 },
            Call::MemfdCreate {
                name: "dockling".into(),
            },
            Call::AddSeals { fd: 3 },
            Call::Open {
                path: p("/proc/self/exe"),
                flags: libc::O_RDONLY,
                mode: 0,
            },
            Call::Open {
                path: p("/proc/1234/root"),
                flags: libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                mode: 0,
            },
            Call::Sendfile {
                out_fd: 3,
                in_fd: 4,
                count: 1 << 30,
            },
            Call::Fstatfs {
                fd: 3,
                object: "/etc/hosts".into(),
            },
            Call::StatxMntId {
                fd: 3,
                object: "/dev".into(),
            },
            Call::Access {
                path: p("/work"),
                mode: libc::F_OK,
            },
            Call::Access {
                path: p("/bin/sh"),
                mode: libc::X_OK,
            },
            Call::Stat { path: p("/bin/sh") },
            Call::Open {
                path: p("/sys/fs/cgroup/freezer/x/freezer.state"),
                flags: libc::O_RDONLY | libc::O_CLOEXEC,
                mode: 0,
            },
            Call::Openat2 {
                dirfd: 3,
                path: p("etc/passwd"),
                flags: libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK,
                mode: 0,
                resolve: super::fs::IN_ROOT,
            },
            Call::Read {
                fd: 3,
                path: p("/proc/1/root/etc/passwd"),
                cap: 4096,
            },
            Call::Read {
                fd: 3,
                path: p("/sys/fs/cgroup/freezer/x/freezer.state"),
                cap: 4096,
            },
            Call::Read {
                fd: 3,
                path: p("/run/dockling-runc/x/exec.fifo"),
                cap: 512,
            },
            Call::Unlink {
                path: p("/run/dockling-runc/x/exec.fifo"),
            },
            Call::Getdents {
                fd: 3,
                path: p("/sys/kernel/mm/hugepages"),
                cap: 32768,
            },
            Call::Getdents {
                fd: 3,
                path: p("/sys/fs/cgroup/cpu/x"),
                cap: 32768,
            },
            Call::Poll {
                fds: vec![3, 4],
                timeout: -1,
                what: "exec.fifo and pidfd".into(),
            },
            Call::Execveat {
                fd: 3,
                argv: vec![],
                envp: vec![],
            },
            Call::Open {
                path: p("/sys/fs/cgroup/dockling/x"),
                flags: libc::O_RDONLY | libc::O_DIRECTORY,
                mode: 0,
            },
            Call::BpfProgLoad { insns: vec![] },
            Call::BpfProgAttach {
                target_fd: 5,
                prog_fd: 6,
                cgroup: p("/sys/fs/cgroup/dockling/x"),
            },
        ];
        for fs in [
            "overlay", "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup",
        ] {
            v.push(mount(Some(fs), MsFlags::empty()));
        }
        for option in [
            Prctl::CapBsetDrop,
            Prctl::CapAmbientClearAll,
            Prctl::CapAmbientRaise,
            Prctl::SetKeepCaps,
            Prctl::SetNoNewPrivs,
            Prctl::SetPdeathsig,
            Prctl::SetDumpable,
        ] {
            v.push(Call::Prctl { option, arg: 0 });
        }
        use super::netlink::{NlProto, NlRequest, NlWhat};
        v.push(Call::NetlinkSocket {
            proto: NlProto::Route,
        });
        v.push(Call::NetlinkSocket {
            proto: NlProto::Netfilter,
        });
        v.push(Call::NetlinkBind { fd: 3 });
        for what in [
            NlWhat::LinkAddBridge,
            NlWhat::LinkAddVeth,
            NlWhat::LinkSet,
            NlWhat::LinkGet,
            NlWhat::LinkDel,
            NlWhat::AddrAdd,
            NlWhat::RouteAdd,
            NlWhat::LinkSetHairpin,
            NlWhat::NftBridgeTable,
            NlWhat::NftBridgeUntable,
            NlWhat::NftPublish,
            NlWhat::NftUnpublish,
            NlWhat::NftGetTable,
        ] {
            v.push(Call::NetlinkSend {
                fd: 3,
                req: NlRequest {
                    bytes: vec![],
                    what,
                    command: "ip link".into(),
                },
            });
        }
        v.push(Call::NetlinkRecv {
            fd: 3,
            cap: super::netlink::RECV_CAP,
            seq: 1,
            what: NlWhat::LinkSet,
            command: "ip link".into(),
        });
        v.push(Call::NetlinkRecv {
            fd: 3,
            cap: super::netlink::RECV_CAP,
            seq: 1,
            what: NlWhat::NftPublish,
            command: "nft".into(),
        });
        let addr = std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 8000);
        v.extend([
            Call::SocketPort {
                transport: Transport::Tcp,
            },
            Call::SocketPort {
                transport: Transport::Udp,
            },
            Call::SetReuseAddr { fd: 3 },
            Call::BindInet {
                fd: 3,
                addr,
                transport: Transport::Tcp,
            },
            Call::Listen {
                fd: 3,
                backlog: 4096,
                addr,
            },
            Call::Getsockname { fd: 3 },
            Call::Fsopen {
                fstype: "erofs".into(),
            },
            Call::FsconfigSource {
                fd: 3,
                source: p("/proc/self/fd/4"),
            },
            Call::FsconfigCreate { fd: 3 },
            Call::RunHook {
                kind: "hooks.createRuntime[0]".into(),
                path: p("/usr/bin/hook"),
                argv: vec!["hook".into()],
                envp: None,
                dir: Some(p("/bundle")),
                state: "{}".into(),
                timeout: Some(5),
                stdout: None,
                stderr: None,
            },
            Call::SchedSetattr {
                attr: SchedAttr::default(),
            },
            Call::IoprioSet { class: 2, level: 4 },
            Call::SetMempolicy {
                mode: 2,
                flags: 0,
                nodes: vec![1],
                maxnode: 64,
            },
        ]);
        v
    }

    /// The bytes a netlink call passes to or got from the kernel (shown as hex in the JSON
    /// trace, so a test can hold them against strace's dump).
    pub fn data<'a>(&'a self, ret: Option<&'a Ret>) -> Option<&'a [u8]> {
        match (self, ret) {
            (Call::NetlinkSend { req, .. }, _) => Some(&req.bytes),
            (Call::NetlinkRecv { .. }, Some(Ret::Received(b))) => Some(b),
            _ => None,
        }
    }

    /// The command-line tool's command that does what this call does (`ip link add …`).
    pub fn command(&self) -> Option<&str> {
        match self {
            Call::NetlinkSend { req, .. } => Some(&req.command),
            _ => None,
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.args())
    }
}

/// A number the way strace's `%#x` prints it: `0x1`, but `0`.
pub fn hex(n: u64) -> String {
    if n == 0 {
        "0".into()
    } else {
        format!("{n:#x}")
    }
}

/// Flag names joined with `|` as strace prints them, or `0` when there are none.
fn or_zero<S: AsRef<str>>(parts: &[S]) -> String {
    if parts.is_empty() {
        return "0".into();
    }
    let names: Vec<&str> = parts.iter().map(AsRef::as_ref).collect();
    names.join("|")
}

/// A capability set the way strace prints it: `1<<CAP_CHOWN|1<<CAP_KILL`, or `0`.
pub fn cap_set(set: u64) -> String {
    let names = super::caps::NAMES;
    let parts: Vec<String> = (0..64)
        .filter(|b| set & (1u64 << b) != 0)
        .map(|b| match names.get(b) {
            Some(n) => format!("1<<CAP_{n}"),
            None => format!("1<<{b}"),
        })
        .collect();
    or_zero(&parts)
}

/// A signal's name the way strace prints it: `SIGPIPE`; real-time ones counted from the
/// kernel's first, `SIGRTMIN` (32), then `SIGRT_1`, `SIGRT_2`...
pub fn signal_name(signal: i32) -> String {
    match nix::sys::signal::Signal::try_from(signal) {
        Ok(sig) => sig.as_str().to_string(),
        Err(_) if signal == 32 => "SIGRTMIN".into(),
        Err(_) if signal > 32 => format!("SIGRT_{}", signal - 32),
        Err(_) => signal.to_string(),
    }
}

/// A signal set the way strace prints it: `[HUP INT CHLD]`, `[]`.
pub fn sig_set(mask: u64) -> String {
    let names: Vec<String> = (1..=64i32)
        .filter(|n| mask & (1u64 << (n - 1) as u64) != 0)
        .map(|n| match nix::sys::signal::Signal::try_from(n) {
            Ok(sig) => sig.as_str().trim_start_matches("SIG").to_string(),
            Err(_) => n.to_string(),
        })
        .collect();
    format!("[{}]", names.join(" "))
}

/// A wait status the way strace prints it: `[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]`.
pub fn wait_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!(
            "[{{WIFEXITED(s) && WEXITSTATUS(s) == {}}}]",
            libc::WEXITSTATUS(status)
        )
    } else if libc::WIFSIGNALED(status) {
        let sig = nix::sys::signal::Signal::try_from(libc::WTERMSIG(status))
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| libc::WTERMSIG(status).to_string());
        let core = if libc::WCOREDUMP(status) {
            " && WCOREDUMP(s)"
        } else {
            ""
        };
        format!("[{{WIFSIGNALED(s) && WTERMSIG(s) == {sig}{core}}}]")
    } else {
        format!("[{status:#x}]")
    }
}

/// Interface flags the way strace prints them: `IFF_UP|IFF_LOOPBACK`.
pub fn if_flags(flags: i32) -> String {
    const NAMES: &[(i32, &str)] = &[
        (libc::IFF_UP, "IFF_UP"),
        (libc::IFF_BROADCAST, "IFF_BROADCAST"),
        (libc::IFF_DEBUG, "IFF_DEBUG"),
        (libc::IFF_LOOPBACK, "IFF_LOOPBACK"),
        (libc::IFF_POINTOPOINT, "IFF_POINTOPOINT"),
        (libc::IFF_NOTRAILERS, "IFF_NOTRAILERS"),
        (libc::IFF_RUNNING, "IFF_RUNNING"),
        (libc::IFF_NOARP, "IFF_NOARP"),
        (libc::IFF_PROMISC, "IFF_PROMISC"),
        (libc::IFF_ALLMULTI, "IFF_ALLMULTI"),
        (libc::IFF_MASTER, "IFF_MASTER"),
        (libc::IFF_SLAVE, "IFF_SLAVE"),
        (libc::IFF_MULTICAST, "IFF_MULTICAST"),
        (libc::IFF_PORTSEL, "IFF_PORTSEL"),
        (libc::IFF_AUTOMEDIA, "IFF_AUTOMEDIA"),
        (libc::IFF_DYNAMIC, "IFF_DYNAMIC"),
    ];
    let parts: Vec<&str> = NAMES
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    or_zero(&parts)
}

/// A path argument as strace prints it; a `/proc/self/fd/N` (a mount made through the
/// descriptor the engine resolved inside the rootfs) gets what that descriptor names as a
/// comment, so a reader sees `"/proc/self/fd/7" /* $CONTAINER/rootfs/proc/keys */`.
pub fn path_arg(p: &std::path::Path) -> String {
    let quoted = quote(&p.to_string_lossy());
    if !p.starts_with("/proc/self/fd") {
        return quoted;
    }
    match std::fs::read_link(p) {
        Ok(names) => format!("{quoted} /* {} */", names.display()),
        Err(_) => quoted,
    }
}

/// The syscall glibc's `access(3)` makes: `access` where the machine has one, else
/// `faccessat` (the newer architectures have only the `*at` calls).
const ACCESS: &str = if cfg!(any(
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "loongarch64"
)) {
    "faccessat"
} else {
    "access"
};

/// The explanation key of `access(path, X_OK)` under [`ACCESS`]'s name.
const ACCESS_EXEC: &str = if cfg!(any(
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "loongarch64"
)) {
    "faccessat.exec"
} else {
    "access.exec"
};

/// The syscall glibc's `stat(3)` makes: `newfstatat` on 64-bit machines, `fstatat64` on
/// 32-bit ones.
const STAT: &str = if cfg!(target_pointer_width = "64") {
    "newfstatat"
} else {
    "fstatat64"
};

/// A `struct statx` as strace prints it without `-v`: the mask of what the kernel filled in,
/// the attributes, then as [`stat_struct`].
pub fn statx_struct(mask: u32, attributes: u64, mode: u32, size: u64) -> String {
    const MASK: &[(u32, &str)] = &[
        (0x1, "STATX_TYPE"),
        (0x2, "STATX_MODE"),
        (0x4, "STATX_NLINK"),
        (0x8, "STATX_UID"),
        (0x10, "STATX_GID"),
        (0x20, "STATX_ATIME"),
        (0x40, "STATX_MTIME"),
        (0x80, "STATX_CTIME"),
        (0x100, "STATX_INO"),
        (0x200, "STATX_SIZE"),
        (0x400, "STATX_BLOCKS"),
        (0x800, "STATX_BTIME"),
        (0x1000, "STATX_MNT_ID"),
        (0x2000, "STATX_DIOALIGN"),
    ];
    const ATTRIBUTES: &[(u64, &str)] = &[
        (0x4, "STATX_ATTR_COMPRESSED"),
        (0x10, "STATX_ATTR_IMMUTABLE"),
        (0x20, "STATX_ATTR_APPEND"),
        (0x40, "STATX_ATTR_NODUMP"),
        (0x800, "STATX_ATTR_ENCRYPTED"),
        (0x1000, "STATX_ATTR_AUTOMOUNT"),
        (0x2000, "STATX_ATTR_MOUNT_ROOT"),
        (0x10_0000, "STATX_ATTR_VERITY"),
        (0x20_0000, "STATX_ATTR_DAX"),
    ];
    fn names<T: Copy + Into<u64>>(value: T, table: &[(T, &str)], basic: Option<T>) -> String {
        let mut v: u64 = value.into();
        let mut out = Vec::new();
        if let Some(b) = basic {
            let b: u64 = b.into();
            if v & b == b {
                out.push("STATX_BASIC_STATS".to_string());
                v &= !b;
            }
        }
        for (bit, name) in table {
            let bit: u64 = (*bit).into();
            if v & bit != 0 {
                out.push((*name).to_string());
                v &= !bit;
            }
        }
        if v != 0 {
            out.push(format!("{v:#x}"));
        }
        if out.is_empty() {
            "0".into()
        } else {
            out.join("|")
        }
    }
    let stat = stat_struct(mode, size as i64, 0);
    format!(
        "{{stx_mask={}, stx_attributes={}, {}",
        names(mask, MASK, Some(0x7ff)),
        names(attributes, ATTRIBUTES, None),
        stat.trim_start_matches('{')
            .replace("st_mode=", "stx_mode=")
            .replace("st_size=", "stx_size=")
    )
}

/// A `struct stat` as strace prints it without `-v`: the type and mode, then the size (or a
/// device's number), then `...`.
pub fn stat_struct(mode: u32, size: i64, rdev: u64) -> String {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFREG => "S_IFREG",
        libc::S_IFDIR => "S_IFDIR",
        libc::S_IFLNK => "S_IFLNK",
        libc::S_IFCHR => "S_IFCHR",
        libc::S_IFBLK => "S_IFBLK",
        libc::S_IFIFO => "S_IFIFO",
        libc::S_IFSOCK => "S_IFSOCK",
        _ => "",
    };
    let mut m = String::from(kind);
    for (bit, name) in [
        (libc::S_ISUID, "S_ISUID"),
        (libc::S_ISGID, "S_ISGID"),
        (libc::S_ISVTX, "S_ISVTX"),
    ] {
        if mode & bit != 0 {
            if !m.is_empty() {
                m.push('|');
            }
            m.push_str(name);
        }
    }
    if !m.is_empty() {
        m.push('|');
    }
    m.push_str(&mode_octal(mode & 0o777));
    let hex = |v: u64| match v {
        0 => "0".to_string(),
        v => format!("{v:#x}"),
    };
    match mode & libc::S_IFMT {
        libc::S_IFCHR | libc::S_IFBLK => format!(
            "{{st_mode={m}, st_rdev=makedev({}, {}), ...}}",
            hex(libc::major(rdev) as u64),
            hex(libc::minor(rdev) as u64)
        ),
        _ => format!("{{st_mode={m}, st_size={size}, ...}}"),
    }
}

/// A `struct statfs` as strace prints it: every field, the magic number by name, the fsid in
/// hex, the flags as `ST_*` names (`ST_VALID` first, the rest in bit order).
pub fn statfs_struct(st: &Statfs) -> String {
    const MAGIC: &[(i64, &str)] = &[
        (0xef53, "EXT2_SUPER_MAGIC"),
        (0x0102_1994, "TMPFS_MAGIC"),
        (0x9fa0, "PROC_SUPER_MAGIC"),
        (0x6265_6572, "SYSFS_MAGIC"),
        (0x794c_7630, "OVERLAYFS_SUPER_MAGIC"),
        (0x1cd1, "DEVPTS_SUPER_MAGIC"),
        (0x9123_683e, "BTRFS_SUPER_MAGIC"),
        (0x5846_5342, "XFS_SUPER_MAGIC"),
        (0x6367_7270, "CGROUP2_SUPER_MAGIC"),
        (0x0027_e0eb, "CGROUP_SUPER_MAGIC"),
        (0x1980_0202, "MQUEUE_MAGIC"),
        (0x8584_58f6, "RAMFS_MAGIC"),
        (0x6573_5546, "FUSE_SUPER_MAGIC"),
        (0xf2f5_2010, "F2FS_SUPER_MAGIC"),
        (0x7371_7368, "SQUASHFS_MAGIC"),
        (0x6969, "NFS_SUPER_MAGIC"),
    ];
    const FLAGS: &[(i64, &str)] = &[
        (0x1, "ST_RDONLY"),
        (0x2, "ST_NOSUID"),
        (0x4, "ST_NODEV"),
        (0x8, "ST_NOEXEC"),
        (0x10, "ST_SYNCHRONOUS"),
        (0x40, "ST_MANDLOCK"),
        (0x80, "ST_WRITE"),
        (0x100, "ST_APPEND"),
        (0x200, "ST_IMMUTABLE"),
        (0x400, "ST_NOATIME"),
        (0x800, "ST_NODIRATIME"),
        (0x1000, "ST_RELATIME"),
        (0x2000, "ST_NOSYMFOLLOW"),
    ];
    let f_type = MAGIC
        .iter()
        .find(|(m, _)| *m == st.f_type)
        .map_or_else(|| format!("{:#x}", st.f_type), |(_, n)| n.to_string());
    let hex = |v: i32| match v as u32 {
        0 => "0".to_string(),
        v => format!("{v:#x}"),
    };
    let mut flags = Vec::new();
    let mut rest = st.f_flags;
    if rest & 0x20 != 0 {
        flags.push("ST_VALID".to_string());
        rest &= !0x20;
    }
    for (bit, name) in FLAGS {
        if rest & bit != 0 {
            flags.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        flags.push(format!("{rest:#x}"));
    }
    format!(
        "{{f_type={f_type}, f_bsize={}, f_blocks={}, f_bfree={}, f_bavail={}, f_files={}, f_ffree={}, f_fsid={{val=[{}, {}]}}, f_namelen={}, f_frsize={}, f_flags={}}}",
        st.f_bsize,
        st.f_blocks,
        st.f_bfree,
        st.f_bavail,
        st.f_files,
        st.f_ffree,
        hex(st.f_fsid[0]),
        hex(st.f_fsid[1]),
        st.f_namelen,
        st.f_frsize,
        or_zero(&flags),
    )
}

/// Quote a string the way strace does: C escapes, long strings cut with `...`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    // Most arguments (paths, names) need no escape and are short: copied whole. A string of
    // at most 200 bytes has at most 200 characters, so it is not cut either. (Char by char,
    // this was a visible share of what --trace=json costs a run.)
    if s.len() <= 200 && !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return out;
    }
    quote_chars(out, s)
}

/// [`quote`] char by char, after the opening quote in `out`: what its whole-string copy
/// stands in for when nothing needs an escape.
fn quote_chars(mut out: String, s: &str) -> String {
    for (i, c) in s.chars().enumerate() {
        if i >= 200 {
            out.push_str("\"...");
            return out;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\{:o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A mode or umask as strace prints them (`%#03o`): octal with a leading zero, at least three
/// digits (`0666`, `022`, `000`).
fn mode_octal(mode: u32) -> String {
    format!("{:0>3}", format!("0{mode:o}"))
}

/// Render clone/unshare flags by name, as strace does.
pub fn clone_flags(flags: CloneFlags, with_sigchld: bool) -> String {
    const NAMES: &[(CloneFlags, &str)] = &[
        (CloneFlags::CLONE_NEWNS, "CLONE_NEWNS"),
        (CloneFlags::CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
        (CloneFlags::CLONE_NEWUTS, "CLONE_NEWUTS"),
        (CloneFlags::CLONE_NEWIPC, "CLONE_NEWIPC"),
        (CloneFlags::CLONE_NEWUSER, "CLONE_NEWUSER"),
        (CloneFlags::CLONE_NEWPID, "CLONE_NEWPID"),
        (CloneFlags::CLONE_NEWNET, "CLONE_NEWNET"),
        (CloneFlags::CLONE_PARENT, "CLONE_PARENT"),
    ];
    let mut parts: Vec<&str> = NAMES
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    if with_sigchld {
        parts.push("SIGCHLD");
    }
    or_zero(&parts)
}

/// Render `open` flags by name, as strace does.
pub fn o_flags(flags: i32) -> String {
    let mut parts = vec![match flags & libc::O_ACCMODE {
        libc::O_WRONLY => "O_WRONLY",
        libc::O_RDWR => "O_RDWR",
        _ => "O_RDONLY",
    }];
    // strace's order (its open_mode_flags table), which puts O_DIRECTORY last.
    for (f, n) in [
        (libc::O_CREAT, "O_CREAT"),
        (libc::O_EXCL, "O_EXCL"),
        (libc::O_NOCTTY, "O_NOCTTY"),
        (libc::O_TRUNC, "O_TRUNC"),
        (libc::O_APPEND, "O_APPEND"),
        (libc::O_NONBLOCK, "O_NONBLOCK"),
        (libc::O_NOFOLLOW, "O_NOFOLLOW"),
        (libc::O_CLOEXEC, "O_CLOEXEC"),
        (libc::O_PATH, "O_PATH"),
        (libc::O_DIRECTORY, "O_DIRECTORY"),
    ] {
        if flags & f == f {
            parts.push(n);
        }
    }
    parts.join("|")
}

/// Render `openat2` resolve flags by name, as strace does.
pub fn resolve_flags(resolve: u64) -> String {
    let parts: Vec<&str> = [
        (libc::RESOLVE_NO_XDEV, "RESOLVE_NO_XDEV"),
        (libc::RESOLVE_NO_MAGICLINKS, "RESOLVE_NO_MAGICLINKS"),
        (libc::RESOLVE_NO_SYMLINKS, "RESOLVE_NO_SYMLINKS"),
        (libc::RESOLVE_BENEATH, "RESOLVE_BENEATH"),
        (libc::RESOLVE_IN_ROOT, "RESOLVE_IN_ROOT"),
    ]
    .iter()
    .filter(|(f, _)| resolve & f == *f)
    .map(|(_, n)| *n)
    .collect();
    or_zero(&parts)
}

/// Render mount flags by name, as strace does.
pub fn ms_flags(flags: MsFlags) -> String {
    const NAMES: &[(MsFlags, &str)] = &[
        (MsFlags::MS_RDONLY, "MS_RDONLY"),
        (MsFlags::MS_NOSUID, "MS_NOSUID"),
        (MsFlags::MS_NODEV, "MS_NODEV"),
        (MsFlags::MS_NOEXEC, "MS_NOEXEC"),
        (MsFlags::MS_REMOUNT, "MS_REMOUNT"),
        (MsFlags::MS_BIND, "MS_BIND"),
        (MsFlags::MS_REC, "MS_REC"),
        (MsFlags::MS_PRIVATE, "MS_PRIVATE"),
        (MsFlags::MS_SLAVE, "MS_SLAVE"),
        (MsFlags::MS_SHARED, "MS_SHARED"),
        (MsFlags::MS_RELATIME, "MS_RELATIME"),
        (MsFlags::MS_STRICTATIME, "MS_STRICTATIME"),
    ];
    let parts: Vec<&str> = NAMES
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    or_zero(&parts)
}

#[cfg(test)]
mod tests {
    use super::quote;

    /// The char-by-char quoting that [`quote`]'s whole-string copy stands in for.
    fn quote_slow(s: &str) -> String {
        super::quote_chars(String::from("\""), s)
    }

    #[test]
    fn quote_copies_plain_strings_as_strace_would_print_them() {
        let long = "a".repeat(300);
        let wide = "한".repeat(150);
        for s in [
            "",
            "/proc/self/fd/6",
            "q\"b\\s \t\n\u{1}\u{1f}\u{7f} é",
            &long,
            &long[..200],
            &long[..201],
            &wide,
            &wide[..300],
        ] {
            assert_eq!(quote(s), quote_slow(s), "{s:?}");
        }
    }
}
