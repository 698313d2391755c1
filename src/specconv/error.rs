//! What can stop a container's spec from being built besides a bad flag (flags are refused
//! as [`crate::error::Error::Usage`]): an image without a command, a user or group its
//! account files do not have, account files that cannot be read safely.

use std::path::PathBuf;

/// The image cannot be run as asked.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Neither the image nor the command line gives a command.
    #[error("no command specified: image {image} has no CMD or ENTRYPOINT, give one after the image name")]
    NoCommand {
        /// The image as the user typed it.
        image: String,
    },
    /// `-u` (or the image's `USER`) names a user the image's /etc/passwd does not have
    /// (Docker's words, so scripts matching them keep working).
    #[error("unable to find user {user}: no matching entries in passwd file")]
    UnknownUser {
        /// The user as given.
        user: String,
    },
    /// The group of `-u user:group` is not in the image's /etc/group.
    #[error("unable to find group {group}: no matching entries in group file")]
    UnknownGroup {
        /// The group as given.
        group: String,
    },
    /// An account file of the image that is not a regular file read within the limits.
    #[error("read the image's /{file}: it is {why}; the account files are read only as regular files inside the image (symlinks followed within the image, at most 40 of them, at most {max_mib} MiB), so fix the image")]
    AccountFile {
        /// `etc/passwd` or `etc/group`.
        file: String,
        /// What it is instead (`a FIFO`, `too big`).
        why: String,
        /// The most read, in MiB.
        max_mib: u64,
    },
    /// A name on the way to an account file could not be looked up in the layers.
    #[error("read the image's /{file}: look up {}: {source}", at.display())]
    AccountLookup {
        /// `etc/passwd` or `etc/group`.
        file: String,
        /// The path in the image being looked up.
        at: PathBuf,
        /// Why the lookup failed.
        source: std::io::Error,
    },
    /// A symlink on the way to an account file could not be read.
    #[error("read the image's /{file}: read the symlink {}: {source}", at.display())]
    AccountSymlink {
        /// `etc/passwd` or `etc/group`.
        file: String,
        /// The symlink's path in the image.
        at: PathBuf,
        /// The error number of `readlinkat(2)`.
        source: nix::errno::Errno,
    },
    /// A runtime bundle's `config.json` asks for what dockling cannot do, or is malformed:
    /// the field, and why (`dockling runtime create`).
    #[error("config.json: {field}: {why}")]
    Oci {
        /// The field, as the runtime spec names it (`process.cwd`, `mounts[2]`).
        field: String,
        /// What is wrong and what to do.
        why: String,
    },
}
