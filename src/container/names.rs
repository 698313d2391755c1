//! Generated container names, `adjective_scientist` like Docker's, from a smaller list.

const LEFT: &[&str] = &[
    "admiring", "bold", "brave", "busy", "clever", "cool", "eager", "focused", "gallant", "happy",
    "jolly", "keen", "kind", "lucid", "modest", "nifty", "quirky", "relaxed", "sharp", "stoic",
    "tender", "vibrant", "wizardly", "zealous",
];

const RIGHT: &[&str] = &[
    "babbage", "curie", "dijkstra", "euler", "feynman", "goldberg", "hamilton", "hopper", "kalam",
    "knuth", "lamarr", "lovelace", "meitner", "noether", "pascal", "ritchie", "shannon",
    "thompson", "torvalds", "turing", "wozniak", "yonath",
];

/// A name derived from random bytes of the container id (so it needs no extra entropy).
pub fn generate(id: &str, attempt: usize) -> String {
    let n = u64::from_str_radix(&id[..12], 16).unwrap_or(0);
    let name = format!(
        "{}_{}",
        LEFT[(n % LEFT.len() as u64) as usize],
        RIGHT[((n >> 20) % RIGHT.len() as u64) as usize]
    );
    if attempt == 0 {
        name
    } else {
        format!("{name}{attempt}")
    }
}
