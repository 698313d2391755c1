//! `--change`: the Dockerfile instructions `import` and `build` may apply to an image's
//! config (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `STOPSIGNAL`, `USER`, `WORKDIR`), as
//! `docker import --change` and `docker commit --change` do (`ENV A=1 B=2` sets two, as a
//! Dockerfile's `ENV`); anything that would need a build step (`RUN`, `COPY`) is
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
        "ENV" => set_pairs(cfg, Pairs::Env, &pairs(change, rest, "ENV", true)?),
        "EXPOSE" => {
            for port in rest.split_whitespace() {
                let p = if port.contains('/') {
                    port.to_string()
                } else {
                    format!("{port}/tcp")
                };
                set_keys(cfg, "ExposedPorts", &[p]);
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
            set_keys(cfg, "Volumes", &paths);
        }
        "LABEL" => set_pairs(cfg, Pairs::Label, &pairs(change, rest, "LABEL", false)?),
        other => {
            return Err(ImageError::UnknownChange {
                instruction: other.to_string(),
            }
            .into())
        }
    }
    Ok(())
}

/// Add `keys` to the set-like object `field` of a config's `config` object (`ExposedPorts`,
/// `Volumes`: each key maps to `{}`), making it when it is missing or not an object;
/// `--change` and `dockling build` share it.
pub(crate) fn set_keys(cfg: &mut Value, field: &str, keys: &[String]) {
    if !cfg[field].is_object() {
        cfg[field] = json!({});
    }
    for k in keys {
        cfg[field][k] = json!({});
    }
}

/// What `KEY=value` pairs set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pairs {
    /// `ENV`: the `Env` list.
    Env,
    /// `LABEL`: the `Labels` map.
    Label,
}

/// Set `ENV` or `LABEL` pairs, already split and substituted, in a config's `config` object
/// (`--change` and `dockling build` share it): an `ENV` variable already there keeps its
/// place in `Env` with its new value, a new one goes at the end, as Docker's `addEnv` does
/// (so `ENV PATH=…` leaves PATH first); a label is set or replaced.
pub(crate) fn set_pairs(cfg: &mut Value, what: Pairs, pairs: &[(String, String)]) {
    match what {
        Pairs::Env => {
            if !cfg["Env"].is_array() {
                cfg["Env"] = json!([]);
            }
            let env = cfg["Env"].as_array_mut().expect("made a list above");
            for (k, v) in pairs {
                let new = json!(format!("{k}={v}"));
                let same = |e: &Value| e.as_str().and_then(|s| s.split('=').next()) == Some(k);
                match env.iter_mut().find(|e| same(e)) {
                    Some(e) => *e = new,
                    None => env.push(new),
                }
            }
        }
        Pairs::Label => {
            if !cfg["Labels"].is_object() {
                cfg["Labels"] = json!({});
            }
            for (k, v) in pairs {
                cfg["Labels"][k] = json!(v);
            }
        }
    }
}

/// The words of a Dockerfile line, as its shell-like lexer splits them: whitespace separates,
/// double and single quotes group (and go), a backslash outside single quotes takes the next
/// character as it is.
fn words(s: &str) -> std::result::Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => return Err("a line cannot end in a backslash"),
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                in_word = true;
                quote = Some(c);
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if quote.is_some() {
        return Err("a quote is not closed");
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// The `key=value` pairs of an `ENV` or `LABEL` line (`ENV A=1 B="two words"` sets two);
/// `ENV key value` (no `=` in the first word: the rest of the line is the value) when
/// `legacy` allows it, as Dockerfile's `ENV` does.
fn pairs(
    change: &str,
    rest: &str,
    what: &'static str,
    legacy: bool,
) -> Result<Vec<(String, String)>> {
    let bad = |why: &'static str| -> crate::error::Error {
        ImageError::BadChange {
            change: change.to_string(),
            why,
        }
        .into()
    };
    let ws = words(rest).map_err(bad)?;
    let needs = if what == "ENV" {
        "ENV needs NAME=value (several: ENV A=1 B=2)"
    } else {
        "LABEL needs key=value (several: LABEL a=1 b=2)"
    };
    match ws.first() {
        None => Err(bad(needs)),
        Some(first) if !first.contains('=') => {
            if !legacy || ws.len() < 2 {
                return Err(bad(needs));
            }
            // `ENV NAME the rest`: the value is the rest of the line, as written.
            let value = rest.trim()[first.len()..].trim().to_string();
            Ok(vec![(first.clone(), value)])
        }
        Some(_) => ws
            .iter()
            .map(|w| match w.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(bad(needs)),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keeps_a_variable_in_its_place_as_docker_does() {
        let mut cfg = json!({"Env": ["PATH=/bin", "A=1"], "Labels": null});
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        set_pairs(
            &mut cfg,
            Pairs::Env,
            &pairs(&[("PATH", "/x:/bin"), ("B", "2")]),
        );
        assert_eq!(cfg["Env"], json!(["PATH=/x:/bin", "A=1", "B=2"]));
        set_pairs(&mut cfg, Pairs::Label, &pairs(&[("a", "1"), ("a", "2")]));
        assert_eq!(cfg["Labels"], json!({"a": "2"}));
        let mut empty = json!({});
        set_pairs(&mut empty, Pairs::Env, &pairs(&[("X", "y")]));
        assert_eq!(empty["Env"], json!(["X=y"]));
    }

    #[test]
    fn unknown_changes_are_refused() {
        let mut cfg = json!({"Env": []});
        assert!(apply_change(&mut cfg, "RUN echo")
            .unwrap_err()
            .to_string()
            .contains("only CMD"));
        apply_change(&mut cfg, "EXPOSE 80").unwrap();
        apply_change(&mut cfg, "ENV A=1 B=\"two words\"").unwrap();
        apply_change(&mut cfg, "ENV C the rest").unwrap();
        assert_eq!(cfg["Env"], json!(["A=1", "B=two words", "C=the rest"]));
        apply_change(&mut cfg, "LABEL a=1 b=2").unwrap();
        assert_eq!(cfg["Labels"], json!({"a": "1", "b": "2"}));
        apply_change(&mut cfg, "VOLUME /data /logs").unwrap();
        assert_eq!(cfg["Volumes"], json!({"/data": {}, "/logs": {}}));
        for bad in [
            "ENV",
            "ENV A",
            "ENV =1",
            "LABEL x",
            "ENV A=\"open",
            "VOLUME data",
        ] {
            let e = apply_change(&mut cfg, bad).unwrap_err().to_string();
            assert!(e.starts_with("--change"), "{bad}: {e}");
        }
        assert_eq!(cfg["ExposedPorts"]["80/tcp"], json!({}));
    }
}
