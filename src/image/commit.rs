//! The image `dockling commit` makes: the container's image plus one layer, with a config as
//! Docker's commit writes it (moby `daemon/commit.go`): the container's own command,
//! environment and working directory over the image's (what `run` was given stays with the
//! image), then the `--change` lines, an `author`, and one history entry whose `created_by` is
//! the container's command and whose `comment` is `-m`. The base image's layer blobs are
//! reused as they are: only the new layer is written.

use std::path::Path;

use serde_json::{json, Value};

use super::build::NewLayer;
pub use super::build::{LayerTar, TarSink};
use super::reference::Reference;
use super::store::{Image, Store};
use crate::error::Result;

/// A layer blob `commit` stored, not yet part of an image.
pub struct StoredLayer(NewLayer);

impl StoredLayer {
    /// The blob's digest, its size and the uncompressed tar's digest.
    pub fn describe(&self) -> (&str, u64, &str) {
        (&self.0.digest, self.0.size, &self.0.diff_id)
    }
}

/// What the container contributes to the new image's config.
#[derive(Debug, Clone)]
pub struct CommitConfig<'a> {
    /// `-a`.
    pub author: Option<&'a str>,
    /// `-m`.
    pub comment: Option<&'a str>,
    /// `-c` lines.
    pub changes: &'a [String],
    /// The container's full command line (entrypoint and arguments).
    pub argv: &'a [String],
    /// The container's environment.
    pub env: &'a [String],
    /// The container's working directory.
    pub cwd: &'a Path,
    /// Whether it ran with `-t` (which added `TERM=xterm`).
    pub tty: bool,
    /// The image's `created` and the history entry's time (RFC 3339).
    pub created: &'a str,
}

/// The strings of a JSON array (none when it is not one; other values left out).
pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The container's command split back into the image's `Entrypoint` and `Cmd`: when it starts
/// with the image's entrypoint, that stays and the rest is `Cmd`; otherwise (`--entrypoint`)
/// the whole line is the command with no entrypoint.
fn split_command(image_cfg: &Value, argv: &[String]) -> (Option<Vec<String>>, Vec<String>) {
    let ep = strings(&image_cfg["Entrypoint"]);
    if argv.starts_with(&ep) {
        (
            (!ep.is_empty()).then_some(ep.clone()),
            argv[ep.len()..].to_vec(),
        )
    } else {
        (None, argv.to_vec())
    }
}

/// The container's environment as an image keeps it: without what the engine adds for the
/// process only (`HOSTNAME`, and the `TERM=xterm` of `-t` when the image had no `TERM`).
fn image_env(image_cfg: &Value, env: &[String], tty: bool) -> Vec<String> {
    let had_term = strings(&image_cfg["Env"])
        .iter()
        .any(|e| e.starts_with("TERM="));
    env.iter()
        .filter(|e| !e.starts_with("HOSTNAME="))
        .filter(|e| !(tty && !had_term && e.as_str() == "TERM=xterm"))
        .cloned()
        .collect()
}

/// Refuse a bad `-c` line before anything is done (each is applied to a scratch config).
pub fn check_changes(changes: &[String]) -> Result<()> {
    let mut probe = json!({"Env": []});
    for c in changes {
        super::change::apply_change(&mut probe, c)?;
    }
    Ok(())
}

impl Store {
    /// Store the new layer (an uncompressed tar in its file, as [`Store::layer_sink`] wrote
    /// it) as a gzip blob, streamed: `(digest, size, diff_id)`.
    pub fn commit_layer(&self, layer_tar: LayerTar) -> Result<StoredLayer> {
        Ok(StoredLayer(self.store_layer(layer_tar)?))
    }

    /// Write the image `base` + `layer` with the container's config, tag it as `reference`,
    /// and return it.
    pub fn commit_image(
        &self,
        base: &Image,
        layer: StoredLayer,
        c: &CommitConfig<'_>,
        reference: Option<&Reference>,
    ) -> Result<Image> {
        let base_cfg: Value = serde_json::to_value(base.config.config()).unwrap_or(Value::Null);
        let (entrypoint, cmd) = split_command(&base_cfg, c.argv);
        let mut history = json!({"created": c.created, "created_by": cmd.join(" ")});
        if let Some(a) = c.author {
            history["author"] = json!(a);
        }
        if let Some(m) = c.comment {
            history["comment"] = json!(m);
        }
        let env = image_env(&base_cfg, c.env, c.tty);
        let cwd = c.cwd.display().to_string();
        let author = c.author.map(str::to_string);
        let edit = move |config: &mut Value| {
            if let Some(a) = &author {
                config["author"] = json!(a);
            }
            let cfg = &mut config["config"];
            cfg["Env"] = json!(env);
            cfg["Cmd"] = json!(cmd);
            match &entrypoint {
                Some(ep) => cfg["Entrypoint"] = json!(ep),
                None => {
                    if let Some(o) = cfg.as_object_mut() {
                        o.remove("Entrypoint");
                    }
                }
            }
            if cwd != "/" || cfg["WorkingDir"].as_str().is_some_and(|w| !w.is_empty()) {
                cfg["WorkingDir"] = json!(cwd);
            }
        };
        self.write_image(
            Some(base),
            Some(layer.0),
            c.changes,
            c.created,
            history,
            &edit,
            reference,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_splits_back_into_entrypoint_and_cmd() {
        let cfg = json!({"Entrypoint": ["/init"], "Cmd": ["serve"]});
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            split_command(&cfg, &argv(&["/init", "sh"])),
            (Some(argv(&["/init"])), argv(&["sh"]))
        );
        assert_eq!(
            split_command(&cfg, &argv(&["sh", "-c", "x"])),
            (None, argv(&["sh", "-c", "x"]))
        );
        assert_eq!(
            split_command(&json!({}), &argv(&["sh"])),
            (None, argv(&["sh"]))
        );
    }

    #[test]
    fn the_engine_s_own_variables_stay_out() {
        let env = ["PATH=/bin", "HOSTNAME=abc", "TERM=xterm", "A=1"].map(String::from);
        assert_eq!(image_env(&json!({}), &env, true), ["PATH=/bin", "A=1"]);
        assert_eq!(
            image_env(&json!({"Env": ["TERM=xterm"]}), &env, true),
            ["PATH=/bin", "TERM=xterm", "A=1"]
        );
    }
}
