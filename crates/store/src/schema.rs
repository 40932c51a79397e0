//! Column helpers shared by both databases' migrations, so a column type
//! means the same thing in each.

use sea_orm_migration::prelude::*;

/// A `TEXT` primary key (UUIDs as text).
pub(crate) fn id(name: &str) -> ColumnDef {
    col(name).string().not_null().primary_key().to_owned()
}

/// A column to be typed by the caller.
pub(crate) fn col(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

/// A non-null timestamp with time zone.
pub(crate) fn ts(name: &str) -> ColumnDef {
    col(name).timestamp_with_time_zone().not_null().to_owned()
}

/// A nullable timestamp with time zone.
pub(crate) fn ts_null(name: &str) -> ColumnDef {
    col(name).timestamp_with_time_zone().null().to_owned()
}

/// A non-null binary column (ciphertext, IVs, tags).
pub(crate) fn blob(name: &str) -> ColumnDef {
    col(name).binary().not_null().to_owned()
}
