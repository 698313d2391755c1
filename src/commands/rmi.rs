//! `dockling rmi`: untag and delete images; refuses one a container uses unless `-f`.

use crate::cli::RmiArgs;
use crate::commands::{require_root, Context};
use crate::container::Containers;
use crate::error::Result;
use crate::image::store::Store;

/// `dockling rmi`.
pub fn run(ctx: &Context, args: &RmiArgs) -> Result<i32> {
    require_root("rmi")?;
    let store = Store::open(&ctx.root)?;
    let containers = Containers::open(&ctx.root)?;
    // Asked under the store lock (see `Store::remove`): a `run` records its container under
    // the same lock, so one created meanwhile is seen and its image kept.
    let used_by = |id: &str| super::image_user(&containers, id);
    let mut code = 0;
    for name in &args.images {
        match store.remove(name, args.force, &used_by) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                eprintln!("Error response from dockling: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}
