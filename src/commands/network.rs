//! `dockling network create|ls|inspect|rm|prune`: user networks in the store
//! ([`crate::network::store`]). A network's bridge link is made when a container first
//! runs on it (as the default one's) and deleted, over netlink, by `rm`/`prune`.
//! `bridge`, `host` and `none` are always listed, as Docker's, and cannot be removed.

use std::net::Ipv4Addr;

use crate::cli::{NetworkArgs, NetworkCommand};
use crate::commands::{formatted, require_root, table, Context};
use crate::container::Containers;
use crate::error::{Error, Result};
use crate::network::store::{self, Network, DEFAULT_NETWORK};
use crate::network::NetError;

/// The fields a `network ls --format` template sees, and their column headers (Docker's).
const FIELDS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

/// Docker's default `network ls` table as a template.
const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

/// One row of `network ls` or one `network inspect` document: a stored network, or the
/// host's or no network (which have no bridge and no store entry).
struct Row {
    id: String,
    name: String,
    driver: String,
    net: Option<Network>,
}

/// The ids of `host` and `none`: fixed, as they are no store entries.
fn fixed_id(name: &str) -> String {
    use sha2::Digest;
    format!(
        "{:x}",
        sha2::Sha256::digest(format!("dockling network {name}"))
    )
}

fn rows(ctx: &Context) -> Result<Vec<Row>> {
    // Docker's `bridge` always exists: made in the store now if no container made it yet.
    store::default_network(&ctx.root, ctx.config.default_subnet()?)?;
    let mut out: Vec<Row> = store::list(&ctx.root)?
        .into_iter()
        .map(|n| Row {
            id: n.id.clone(),
            name: n.name.clone(),
            driver: n.driver.clone(),
            net: Some(n),
        })
        .collect();
    for name in ["host", "none"] {
        out.push(Row {
            id: fixed_id(name),
            name: name.into(),
            driver: if name == "none" { "null" } else { "host" }.into(),
            net: None,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn find_row(ctx: &Context, key: &str) -> Result<Row> {
    rows(ctx)?
        .into_iter()
        .find(|r| r.name == key || r.id == key)
        .or_else(|| {
            let rows = rows(ctx).ok()?;
            let mut hits = rows
                .into_iter()
                .filter(|r| !key.is_empty() && r.id.starts_with(key));
            match (hits.next(), hits.next()) {
                (Some(r), None) => Some(r),
                _ => None,
            }
        })
        .ok_or_else(|| NetError::NotFound(key.to_string()).into())
}

/// `network inspect`'s document (Docker's fields).
fn inspect_json(ctx: &Context, r: &Row) -> serde_json::Value {
    let containers = Containers::at(&ctx.root);
    let mut members = serde_json::Map::new();
    let (config, created, labels) = match &r.net {
        Some(n) => {
            for (id, addr) in store::members(&ctx.root, &n.name).unwrap_or_default() {
                let Ok(c) = containers.find(&id) else {
                    continue;
                };
                if !c.is_alive() {
                    continue;
                }
                let prefix = n.subnet().map(|s| s.prefix).unwrap_or(16);
                members.insert(
                    id.clone(),
                    serde_json::json!({
                        "Name": c.spec.name,
                        "EndpointID": endpoint_id(&n.id, &id),
                        "MacAddress": store::mac_text(store::mac_of(&c.spec, addr)),
                        "IPv4Address": format!("{addr}/{prefix}"),
                        "IPv6Address": "",
                    }),
                );
            }
            (
                serde_json::json!([{"Subnet": n.subnet, "Gateway": n.gateway.to_string()}]),
                n.created.clone(),
                serde_json::json!(n.labels),
            )
        }
        None => (serde_json::json!([]), String::new(), serde_json::json!({})),
    };
    let options = match &r.net {
        Some(n) if n.name == DEFAULT_NETWORK => serde_json::json!({
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.name": n.bridge,
        }),
        Some(n) => serde_json::json!({"com.docker.network.bridge.name": n.bridge}),
        None => serde_json::json!({}),
    };
    serde_json::json!({
        "Name": r.name,
        "Id": r.id,
        "Created": created,
        "Scope": "local",
        "Driver": r.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": members,
        "Options": options,
        "Labels": labels,
    })
}

/// A container's endpoint id on a network: fixed for the pair, as nothing else names it.
pub fn endpoint_id(network: &str, container: &str) -> String {
    use sha2::Digest;
    format!(
        "{:x}",
        sha2::Sha256::digest(format!("endpoint {network} {container}"))
    )
}

/// The network documents of `inspect` for `key` (the generic `inspect` looks here too).
pub fn inspect_one(ctx: &Context, key: &str) -> Option<serde_json::Value> {
    find_row(ctx, key).ok().map(|r| inspect_json(ctx, &r))
}

fn refused(e: Error) -> Result<i32> {
    eprintln!("Error response from dockling: {e}");
    Ok(1)
}

/// Delete a removed network's link (gone already counts as done), then its bridge chains
/// (NAT mode's). The link decides: if it cannot go, the network is kept. Chains that cannot
/// go (no nf_tables here) only match a bridge name no link has any more: a warning.
fn delete_bridge(bridge: &str) -> Result<()> {
    use crate::sys::{linux::Linux, Sys};
    let sys = Sys::new(Box::new(Linux), crate::trace::Tracer::off());
    crate::network::bridge::delete(&sys, bridge)?;
    if let Err(e) = crate::network::nft::remove_bridge_chains(&sys, bridge) {
        eprintln!(
            "dockling: warning: the nftables chains of bridge {bridge} were left in table ip dockling ({e}): nft delete chain ip dockling guard-{bridge} (and post-, iso-) removes them"
        );
    }
    Ok(())
}

/// `dockling network`.
pub fn run(ctx: &Context, args: &NetworkArgs) -> Result<i32> {
    require_root("network")?;
    match &args.command {
        NetworkCommand::Create {
            driver,
            subnet,
            gateway,
            labels,
            name,
        } => {
            if driver != "bridge" {
                return refused(Error::Usage(format!(
                    "plugin \"{driver}\" not found: dockling has only the bridge driver"
                )));
            }
            let subnet = match subnet {
                Some(s) => Some(s.parse::<crate::network::ipam::Subnet>()?),
                None => None,
            };
            let gateway = match gateway {
                Some(g) => Some(g.parse::<Ipv4Addr>().map_err(|_| {
                    Error::Usage(format!("invalid gateway address {g}: write it as a.b.c.d"))
                })?),
                None => None,
            };
            if gateway.is_some() && subnet.is_none() {
                return Err(Error::Usage(
                    "every ip-range or gateway must have a corresponding subnet: give --subnet with --gateway".into(),
                ));
            }
            let labels = labels
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l, ""));
                    (k.to_string(), v.to_string())
                })
                .collect();
            match store::create(
                &ctx.root,
                name,
                subnet,
                gateway,
                ctx.config.default_subnet()?,
                labels,
            ) {
                Ok(n) => {
                    println!("{}", n.id);
                    Ok(0)
                }
                Err(e @ Error::Network(_)) => refused(e),
                Err(e) => Err(e),
            }
        }
        NetworkCommand::Ls {
            quiet,
            filters,
            format,
            no_trunc,
        } => {
            let mut list = rows(ctx)?;
            for f in filters {
                let (k, v) = f.split_once('=').ok_or_else(|| {
                    Error::Usage(format!("bad format of filter (expected name=value): {f}"))
                })?;
                match k {
                    "name" => list.retain(|r| r.name.contains(v)),
                    "id" => list.retain(|r| r.id.starts_with(v)),
                    "driver" => list.retain(|r| r.driver == v),
                    "type" => list.retain(|r| {
                        let builtin = r.name == "bridge" || r.net.is_none();
                        (v == "builtin") == builtin
                    }),
                    _ => {
                        return Err(Error::Usage(format!(
                            "invalid filter '{k}': use name=, id=, driver= or type=custom|builtin"
                        )))
                    }
                }
            }
            let id = |r: &Row| {
                if *no_trunc {
                    r.id.clone()
                } else {
                    r.id[..12].to_string()
                }
            };
            if *quiet {
                for r in &list {
                    println!("{}", id(r));
                }
                return Ok(0);
            }
            let out = match format {
                Some(f) => {
                    let docs: Vec<serde_json::Value> = list
                        .iter()
                        .map(|r| {
                            serde_json::json!({
                                "ID": id(r),
                                "Name": r.name,
                                "Driver": r.driver,
                                "Scope": "local",
                                "IPv6": "false",
                                "Internal": "false",
                                "Labels": r.net.as_ref().map(|n| n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")).unwrap_or_default(),
                                "CreatedAt": r.net.as_ref().map(|n| n.created.clone()).unwrap_or_default(),
                            })
                        })
                        .collect();
                    formatted(f, DEFAULT_TABLE, FIELDS, &docs)?
                }
                None => table(
                    &["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
                    &list
                        .iter()
                        .map(|r| vec![id(r), r.name.clone(), r.driver.clone(), "local".into()])
                        .collect::<Vec<_>>(),
                ),
            };
            print!("{out}");
            Ok(0)
        }
        NetworkCommand::Inspect { format, networks } => {
            let containers = Containers::open(&ctx.root)?;
            crate::commands::rm::reap(ctx, &containers);
            let mut docs = vec![];
            let mut code = 0;
            for key in networks {
                match find_row(ctx, key) {
                    Ok(r) => docs.push(inspect_json(ctx, &r)),
                    Err(e) => {
                        eprintln!("Error response from dockling: {e}");
                        code = 1;
                    }
                }
            }
            crate::commands::print_inspect(&docs, format.as_deref())?;
            Ok(code)
        }
        NetworkCommand::Rm { force, networks } => {
            let containers = Containers::open(&ctx.root)?;
            crate::commands::rm::reap(ctx, &containers);
            let mut code = 0;
            for key in networks {
                match store::remove(&ctx.root, key, |n| delete_bridge(&n.bridge)) {
                    Ok(_) => println!("{key}"),
                    Err(Error::Network(NetError::NotFound(_))) if *force => {}
                    Err(e) => {
                        eprintln!("Error response from dockling: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        NetworkCommand::Connect {
            ip,
            aliases,
            network,
            container,
        } => match connect(ctx, network, container, ip.as_deref(), aliases) {
            Ok(()) => Ok(0),
            Err(e @ (Error::Network(_) | Error::Usage(_) | Error::Container(_))) => refused(e),
            Err(e) => Err(e),
        },
        NetworkCommand::Disconnect {
            force,
            network,
            container,
        } => match disconnect(ctx, network, container, *force) {
            Ok(()) => Ok(0),
            Err(e @ (Error::Network(_) | Error::Usage(_) | Error::Container(_))) => refused(e),
            Err(e) => Err(e),
        },
        NetworkCommand::Prune { force } => {
            if !force {
                use std::io::Write;
                print!("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
                let _ = std::io::stdout().flush();
                let mut answer = String::new();
                let _ = std::io::stdin().read_line(&mut answer);
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    return Ok(0);
                }
            }
            let containers = Containers::open(&ctx.root)?;
            crate::commands::rm::reap(ctx, &containers);
            let mut removed = vec![];
            for n in store::list(&ctx.root)? {
                if n.name == DEFAULT_NETWORK {
                    continue;
                }
                match store::remove(&ctx.root, &n.name, |n| delete_bridge(&n.bridge)) {
                    Ok(n) => removed.push(n.name),
                    Err(Error::Network(NetError::InUse { .. })) => {}
                    Err(e) => return Err(e),
                }
            }
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for n in removed {
                    println!("{n}");
                }
            }
            Ok(0)
        }
    }
}

/// `network connect NET CONTAINER`: one more interface (`eth1`…) in a container. A running
/// one gets it now; a created or stopped one has it recorded (its address leased now, as
/// every lease is kept from create to rm) and plugged at its next start, as Docker's.
fn connect(
    ctx: &Context,
    network: &str,
    container: &str,
    ip: Option<&str>,
    aliases: &[String],
) -> Result<()> {
    use crate::sys::{linux::Linux, Sys};
    for a in aliases {
        crate::specconv::hosts_word("--alias", a)?;
    }
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let net = if network == DEFAULT_NETWORK {
        store::default_network(&ctx.root, ctx.config.default_subnet()?)?
    } else {
        store::find(&ctx.root, network)?
    };
    let ip = match ip {
        Some(s) => {
            if net.name == DEFAULT_NETWORK {
                return Err(Error::Usage(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
            Some(s.parse::<Ipv4Addr>().map_err(|_| {
                Error::Usage(format!("invalid IPv4 address: {s}: write it as a.b.c.d"))
            })?)
        }
        None => None,
    };
    let _names = containers.lock()?;
    let c = containers.find(container)?;
    if c.spec.network != crate::spec::NetworkMode::Bridge {
        return Err(Error::Usage(format!(
            "container cannot be connected to network {} with network mode {}: only containers on a bridge network can be",
            net.name,
            c.spec.network_name()
        )));
    }
    let on_first = c.spec.on_primary_network() && c.spec.network_name() == net.name;
    if on_first || c.spec.net.extra.iter().any(|x| x.network == net.name) {
        return Err(Error::Usage(format!(
            "endpoint with name {} already exists in network {}",
            c.spec.name, net.name
        )));
    }
    let index = c.spec.net.extra.iter().map(|x| x.index).max().unwrap_or(0) + 1;
    let att = crate::spec::Attachment {
        network: net.name.clone(),
        ip,
        aliases: aliases.to_vec(),
        index,
    };
    // A live process (not a reused pid) is plugged now; otherwise the address is reserved
    // and the next start plugs it, the engine lock held so no start reads the record between.
    let _held = settled(&containers, &c)?;
    let plugged = match c.status {
        crate::container::Status::Running { pid, .. } if c.is_alive() => {
            let sys = Sys::new(Box::new(Linux), crate::trace::Tracer::off());
            crate::network::connect::plug_extra(
                &sys,
                &ctx.root,
                ctx.config.default_subnet()?,
                &c.spec,
                &att,
                pid,
            )
            .map(|_| true)
        }
        _ => store::lease_on(
            &ctx.root,
            &net.name,
            ctx.config.default_subnet()?,
            ip,
            &c.spec.id,
        )
        .map(|_| false),
    };
    let running = match plugged {
        Ok(r) => r,
        Err(e) => {
            let _ = crate::network::ipam::release(&store::dir(&ctx.root, &net.name), &c.spec.id);
            return Err(e);
        }
    };
    containers.update(&c.spec.id, |c| c.spec.net.extra.push(att))?;
    if running {
        crate::network::hosts::refresh(&ctx.root, &net.name, None, None)?;
        crate::network::hosts::rewrite_one(&ctx.root, &c.spec.id)?;
    }
    Ok(())
}

/// The container's engine lock when it is not running (so no start reads its record while
/// connect or disconnect changes it); None when it runs. A container whose lock is held but
/// that is not alive is being started or stopped right now: the caller is told to retry.
fn settled(
    containers: &Containers,
    c: &crate::container::Container,
) -> Result<Option<crate::container::EngineLock>> {
    if c.is_alive() {
        return Ok(None);
    }
    match containers.try_lock_engine(&c.spec.id)? {
        Some(l) => {
            // The record read before the lock may be stale: a start may have ended in between.
            let now = containers.find(&c.spec.id)?;
            if now.is_alive() {
                return Err(Error::Usage(format!(
                    "container {} started meanwhile: run the command again",
                    c.spec.name
                )));
            }
            Ok(Some(l))
        }
        None => Err(Error::Usage(format!(
            "container {} is being started or stopped: run the command again in a moment",
            c.spec.name
        ))),
    }
}

/// `network disconnect NET CONTAINER`: the interface on NET gone (a running container's
/// veth deleted), its address given back, the names on NET updated, the record changed so no
/// later start plugs it again. NET may be the network the container was created on (its
/// `eth0`), as in Docker, unless ports are published through it while it runs. `-f`, as
/// Docker's: a container that no longer exists is no error (one that exists and is not
/// connected still is).
fn disconnect(ctx: &Context, network: &str, container: &str, force: bool) -> Result<()> {
    use crate::sys::{linux::Linux, Sys};
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let net = if network == DEFAULT_NETWORK {
        store::default_network(&ctx.root, ctx.config.default_subnet()?)?
    } else {
        store::find(&ctx.root, network)?
    };
    let _names = containers.lock()?;
    let c = match containers.find(container) {
        // Docker's -f: a container that is gone leaves nothing to disconnect.
        Err(Error::NotFound(_)) if force => return Ok(()),
        other => other?,
    };
    let extra = c
        .spec
        .net
        .extra
        .iter()
        .find(|x| x.network == net.name)
        .cloned();
    let first = c.spec.on_primary_network() && c.spec.network_name() == net.name;
    let _held = settled(&containers, &c)?;
    if first && c.is_alive() {
        let published = c.published_ports(true);
        if !published.is_empty() {
            // Its proxy or NAT table leads them to the address given back here, which the
            // next run could get.
            let list: Vec<String> = published
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}->{}/{}",
                        p.host.ip(),
                        p.host.port(),
                        p.container_port,
                        p.proto
                    )
                })
                .collect();
            return Err(Error::Usage(format!(
                "container {} publishes ports through network {} ({}): they cannot be taken back while it runs; stop it first, then disconnect it",
                c.spec.name,
                net.name,
                list.join(", ")
            )));
        }
    }
    let veth = match (&extra, first) {
        (Some(att), _) => crate::network::bridge::extra_veth_name(&c.spec.id, att.index),
        (None, true) => crate::network::bridge::veth_name(&c.spec.id),
        (None, false) => {
            return Err(Error::Usage(format!(
                "container {} is not connected to network {}",
                c.spec.id, net.name
            )))
        }
    };
    // The host end of the pair: deleting it deletes the container's end too (gone already,
    // as for a stopped container, counts as done).
    let sys = Sys::new(Box::new(Linux), crate::trace::Tracer::off());
    crate::network::bridge::delete(&sys, &veth)?;
    containers.update(&c.spec.id, |c| match &extra {
        Some(att) => c.spec.net.extra.retain(|x| x.network != att.network),
        None => c.spec.net.primary_disconnected = true,
    })?;
    crate::network::ipam::release(&store::dir(&ctx.root, &net.name), &c.spec.id)?;
    crate::network::hosts::refresh(&ctx.root, &net.name, None, None)?;
    if c.is_alive() {
        crate::network::hosts::rewrite_one(&ctx.root, &c.spec.id)?;
    }
    Ok(())
}
