//! Users, organizations and the login answers.

use crate::store::accounts::{Membership, Organization, User};
use agentvista_shared::time_fmt;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    /// `free`, `starter`, `pro` or `scale`.
    pub plan: String,
    pub created_at: String,
}

impl From<&Organization> for OrganizationView {
    fn from(o: &Organization) -> Self {
        OrganizationView {
            id: o.id,
            slug: o.slug.clone(),
            name: o.name.clone(),
            plan: o.plan.clone(),
            created_at: time_fmt::format(o.created_at),
        }
    }
}

/// A short-lived JWT (the session cookie is set alongside).
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// `POST /auth/signup` (201): the user, their personal organization, and a
/// token as from login.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedUp {
    pub user: UserView,
    pub organization: OrganizationView,
    #[serde(flatten)]
    pub token: Token,
}

/// `GET /auth/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub created_at: String,
    /// The organization this credential acts in.
    pub current_organization_id: Uuid,
    pub organizations: Vec<MembershipView>,
}

/// An organization the user belongs to, with their role in it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipView {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub plan: String,
    /// `admin` or `member`.
    pub role: String,
}

impl From<Membership> for MembershipView {
    fn from(m: Membership) -> Self {
        MembershipView {
            id: m.id,
            slug: m.slug,
            name: m.name,
            plan: m.plan,
            role: m.role,
        }
    }
}

impl Me {
    pub fn build(user: &User, current_org: Uuid, orgs: Vec<Membership>) -> Self {
        Me {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            created_at: time_fmt::format(user.created_at),
            current_organization_id: current_org,
            organizations: orgs.into_iter().map(MembershipView::from).collect(),
        }
    }
}

/// One of the caller's sessions (`GET /auth/sessions`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub created_at: String,
    pub expires_at: String,
    /// Whether the listing request came with this session.
    pub current: bool,
}

impl SessionView {
    pub fn build(s: crate::store::accounts::StoredSession, current: Uuid) -> Self {
        SessionView {
            id: s.id,
            created_at: time_fmt::format(s.created_at),
            expires_at: time_fmt::format(s.expires_at),
            current: s.id == current,
        }
    }
}
