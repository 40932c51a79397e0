//! The sea-orm entity of the audit table, in both databases.

#![expect(
    unreachable_pub,
    reason = "sea-orm derives expect pub items; the entity module is crate-private"
)]

pub(crate) mod audit_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub replica: String,
        pub sequence: i64,
        pub time: DateTimeUtc,
        pub event_type: String,
        pub outcome: String,
        pub reason: String,
        pub principal: String,
        pub token_hmac: String,
        pub project_id: String,
        pub environment: String,
        pub path: String,
        /// JSON `[{"name": ..., "version": ...}]`.
        pub secrets: String,
        pub target: String,
        pub client_ip: String,
        /// JSON array of addresses.
        pub forwarded_for: String,
        pub user_agent: String,
        pub transport: String,
        pub method: String,
        pub trace_id: String,
        pub count: i64,
        pub mac: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod audit_checkpoint {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_checkpoints")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub replica: String,
        pub sequence: i64,
        pub mac: Vec<u8>,
        pub seal: Vec<u8>,
        pub reaped_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
