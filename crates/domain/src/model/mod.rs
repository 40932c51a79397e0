//! The entities Latchkey's rules speak about, and who acts on them.

mod names;
mod principal;

pub use names::{DisplayName, TokenName};
pub use principal::Principal;
