//! `--change`: the Dockerfile instructions `import` and `build` may apply to an image's
//! config (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `STOPSIGNAL`, `USER`, `WORKDIR`), as
//! `docker import --change` does; anything that would need a build step (`RUN`, `COPY`) is
//! refused.

use serde_json::{json, Value};

use super::ImageError;
use crate::error::Result;

/// Apply one `--change` instruction (a Dockerfile line) to the image config.
pub(crate) fn apply_change(cfg: &mut Value, change: &str) -> Result<()> {
    let (word, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((change.trim(), ""));
    let rest = rest.trim();
    let list = |s: &str| -> Value {
        match serde_json::from_str::<Vec<String>>(s) {
            Ok(v) => json!(v),
            Err(_) => json!(["/bin/sh", "-c", s]),
        }
    };
    match word.to_ascii_uppercase().as_str() {
        "CMD" => cfg["Cmd"] = list(rest),
        "ENTRYPOINT" => cfg["Entrypoint"] = list(rest),
        "WORKDIR" => cfg["WorkingDir"] = json!(rest),
        "USER" => cfg["User"] = json!(rest),
        "STOPSIGNAL" => cfg["StopSignal"] = json!(rest),
        "ENV" => {
            let kv = match rest.split_once('=') {
                Some((k, v)) => format!("{}={}", k.trim(), v.trim().trim_matches('"')),
                None => match rest.split_once(char::is_whitespace) {
                    Some((k, v)) => format!("{k}={}", v.trim()),
                    None => {
                        return Err(ImageError::BadChange {
                            change: change.to_string(),
                            why: "ENV needs NAME=value",
                        }
                        .into())
                    }
                },
            };
            let key = kv.split('=').next().unwrap_or("").to_string();
            let env = cfg["Env"].as_array_mut().expect("Env is a list");
            env.retain(|e| e.as_str().and_then(|s| s.split('=').next()) != Some(&key));
            env.push(json!(kv));
        }
        "EXPOSE" => {
            for port in rest.split_whitespace() {
                let p = if port.contains('/') {
                    port.to_string()
                } else {
                    format!("{port}/tcp")
                };
                cfg["ExposedPorts"][p] = json!({});
            }
        }
        "VOLUME" => {
            // `VOLUME ["/a", "/b"]` or `VOLUME /a /b`: each becomes an anonymous volume of
            // every container of the image.
            let paths = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => v,
                Err(_) => rest.split_whitespace().map(str::to_string).collect(),
            };
            if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/')) {
                return Err(ImageError::BadChange {
                    change: change.to_string(),
                    why: "VOLUME needs absolute paths",
                }
                .into());
            }
            for p in paths {
                cfg["Volumes"][p] = json!({});
            }
        }
        "LABEL" => {
            let (k, v) = rest.split_once('=').ok_or_else(|| ImageError::BadChange {
                change: change.to_string(),
                why: "LABEL needs key=value",
            })?;
            cfg["Labels"][k.trim()] = json!(v.trim().trim_matches('"'));
        }
        other => {
            return Err(ImageError::UnknownChange {
                instruction: other.to_string(),
            }
            .into())
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_changes_are_refused() {
        let mut cfg = json!({"Env": []});
        assert!(apply_change(&mut cfg, "RUN echo")
            .unwrap_err()
            .to_string()
            .contains("only CMD"));
        apply_change(&mut cfg, "EXPOSE 80").unwrap();
        assert_eq!(cfg["ExposedPorts"]["80/tcp"], json!({}));
    }
}
