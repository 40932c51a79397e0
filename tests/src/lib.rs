//! End-to-end tests live in `e2e/` (one test binary, a module per concern).

#![cfg_attr(
    test,
    expect(
        unused_crate_dependencies,
        reason = "the unit-test build links the dev-dependencies the e2e binary uses"
    )
)]
