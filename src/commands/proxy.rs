//! `dockling proxy` (hidden): the port proxy process `network::proxy::spawn` starts. It
//! parses its maps and serves until killed; it exits 1 only when it cannot serve.

use crate::cli::ProxyArgs;
use crate::error::{Error, Result};
use crate::network::ports::Published;

/// Serve the published ports; returns only if that is impossible.
pub fn run(args: &ProxyArgs) -> Result<i32> {
    let maps = args
        .maps
        .iter()
        .map(|m| m.parse::<Published>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::Usage)?;
    match crate::network::proxy::serve(args.container_ip, &maps, args.max_connections) {
        Ok(()) => Ok(0),
        Err(e) => {
            eprintln!("dockling proxy: {e}");
            Ok(1)
        }
    }
}
