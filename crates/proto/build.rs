//! Compiles `proto/` with protox, so no system `protoc` is needed.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        root.join("latchkey/auth/v1/auth.proto"),
        root.join("latchkey/secrets/v1/secrets.proto"),
        root.join("latchkey/audit/v1/audit.proto"),
    ];
    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // Reflection also describes the error details the statuses carry, so
    // grpcurl decodes them; no Rust code is generated for those.
    let mut described = files.to_vec();
    described.push(root.join("google/rpc/error_details.proto"));
    let reflected = protox::compile(&described, [&root])?;
    fs::write(
        out.join("latchkey_descriptor.bin"),
        reflected.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
