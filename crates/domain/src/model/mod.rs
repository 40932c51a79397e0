//! The entities Latchkey's rules speak about, and who acts on them.

mod ids;
mod names;
mod principal;
mod project;
mod secret;
mod service_token;

pub use crate::identity::{AccessToken, Identity, Membership};
pub use ids::{AccessTokenId, IdentityId, MAX_ID_BYTES, ProjectId, ServiceTokenId};
pub use names::{DisplayName, TokenName};
pub use principal::Principal;
pub use project::{NewProject, Project};
pub use secret::{
    Folder, MAX_VALUE_BYTES, PlainSecret, Secret, SecretKey, WriteMode, check_envelope, check_value,
};
pub use service_token::{NewServiceToken, ServiceToken};
