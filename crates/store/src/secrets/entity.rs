//! sea-orm entities of the secrets database.

#![expect(
    unreachable_pub,
    reason = "sea-orm derives expect pub items; the entity modules are crate-private"
)]

pub(crate) mod secret {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "secrets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub project_id: String,
        pub environment: String,
        pub path: String,
        pub name: String,
        pub ciphertext: Vec<u8>,
        pub iv: Vec<u8>,
        pub tag: Vec<u8>,
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod secret_version {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "secret_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub secret_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i64,
        pub ciphertext: Vec<u8>,
        pub iv: Vec<u8>,
        pub tag: Vec<u8>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
