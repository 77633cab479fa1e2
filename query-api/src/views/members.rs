//! Organization members.

use crate::store::members::StoredMember;
use agentvista_shared::model::Role;
use agentvista_shared::time_fmt;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    #[schema(value_type = Role)]
    pub role: String,
    /// When the user joined the organization.
    pub joined_at: String,
}

impl From<StoredMember> for Member {
    fn from(m: StoredMember) -> Self {
        Member {
            user_id: m.user_id,
            email: m.email,
            name: m.name,
            role: m.role,
            joined_at: time_fmt::format(m.created_at),
        }
    }
}
