//! The entities Latchkey's rules speak about, and who acts on them.

mod principal;

pub use principal::Principal;
