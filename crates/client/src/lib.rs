//! `latchkey-client`: what Latchkey's clients share, the CLI and any Rust
//! service. It starts with the dotenv format, which secrets are exported in
//! (`latchkey export`, `--output dotenv`) and read from
//! (`latchkey secrets set --file`); the channels and typed calls the CLI
//! holds in its `client` module belong here next.

pub mod dotenv;
