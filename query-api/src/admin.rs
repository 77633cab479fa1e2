//! `query-api admin …`: operator commands (clap; `--help` on each).
//!
//! `bootstrap` creates a user, their organization and a `read`+`write` API
//! key (or, when the user exists and the password matches, a new key for
//! them); `set-plan` changes an organization's plan and limit; `set-price`
//! overrides a model's price for one organization.

use crate::store::{accounts, keys};
use crate::{auth, error::AppError};
use agentvista_shared::config::CommonConfig;
use agentvista_shared::keys::{SCOPE_READ, SCOPE_WRITE};
use agentvista_shared::plan::Plan;
use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user (same password rules as signup: 8 to 256 characters),
    /// their personal organization and a read+write API key, and print JSON
    /// with the key. When the user exists and the password matches, create
    /// one more key for them instead (the output says `"created_user":
    /// false`); earlier keys keep working.
    Bootstrap {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        /// The user's display name; the organization's slug is derived from it.
        #[arg(long, default_value = "admin")]
        name: String,
        /// free, starter, pro or scale.
        #[arg(long, default_value = "scale")]
        plan: String,
    },
    /// Change an organization's plan (and optionally its monthly span limit).
    SetPlan {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// free, starter, pro or scale.
        #[arg(long)]
        plan: String,
        /// Spans per calendar month, overriding the plan's.
        #[arg(long)]
        monthly_span_limit: Option<i64>,
    },
    /// Override a model's price for one organization (USD per million
    /// tokens), used for spans that carry tokens but no cost.
    SetPrice {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// The model name as spans report it.
        #[arg(long)]
        model: String,
        /// USD per million input tokens.
        #[arg(long)]
        input: String,
        /// USD per million output tokens.
        #[arg(long)]
        output: String,
        /// USD per million cached input tokens; defaults to the input price.
        #[arg(long)]
        cached_input: Option<String>,
    },
}

fn app_err(e: AppError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.0.detail)
}

pub async fn run(common: &CommonConfig, cmd: AdminCommand) -> anyhow::Result<()> {
    let pg = crate::connect_pg(common).await?.0;
    let redis = crate::connect_redis(common).await?;
    match cmd {
        AdminCommand::Bootstrap {
            email,
            password,
            name,
            plan,
        } => {
            let plan = Plan::parse(&plan).with_context(|| format!("unknown plan {plan:?}"))?;
            let (user_id, org_id, slug, created) = match accounts::user_by_email(&pg, &email)
                .await
                .map_err(app_err)?
            {
                Some(user) => {
                    if !auth::verify_password(&password, &user.password_hash) {
                        bail!("user {email} exists and the password does not match");
                    }
                    let (org_id, slug): (Uuid, String) = sqlx::query_as(
                        "SELECT o.id, o.slug FROM organizations o JOIN memberships m ON m.org_id = o.id \
                         WHERE m.user_id = $1 ORDER BY m.created_at LIMIT 1",
                    )
                    .bind(user.id)
                    .fetch_one(&pg)
                    .await?;
                    eprintln!("user {email} exists: creating another API key for it (its earlier keys keep working)");
                    (user.id, org_id, slug, false)
                }
                None => {
                    let password =
                        crate::routes::auth::validate_password(Some(password)).map_err(app_err)?;
                    let hash = auth::hash_password(&password);
                    let (user, org) = accounts::create_user(&pg, &email, &name, hash, plan)
                        .await
                        .map_err(app_err)?;
                    (user.id, org.id, org.slug, true)
                }
            };
            let scopes = vec![SCOPE_READ.to_string(), SCOPE_WRITE.to_string()];
            let (view, raw) =
                keys::create_api_key(&pg, &redis, user_id, org_id, "bootstrap", &scopes)
                    .await
                    .map_err(app_err)?;
            println!(
                "{}",
                json!({"user_email": email, "created_user": created, "org_slug": slug, "key_id": view.id, "api_key": raw})
            );
            Ok(())
        }
        AdminCommand::SetPlan {
            org: slug,
            plan,
            monthly_span_limit: limit,
        } => {
            let plan = Plan::parse(&plan).with_context(|| format!("unknown plan {plan:?}"))?;
            let org = accounts::org_by_slug(&pg, &slug)
                .await
                .map_err(app_err)?
                .with_context(|| format!("no organization {slug:?}"))?;
            accounts::set_plan(&pg, &redis, org.id, plan, limit)
                .await
                .map_err(app_err)?;
            println!(
                "{}",
                json!({"org_slug": slug, "plan": plan.as_str(), "monthly_span_limit": limit})
            );
            Ok(())
        }
        AdminCommand::SetPrice {
            org: slug,
            model,
            input,
            output,
            cached_input,
        } => {
            let cached = cached_input.unwrap_or_else(|| input.clone());
            let org = accounts::org_by_slug(&pg, &slug)
                .await
                .map_err(app_err)?
                .with_context(|| format!("no organization {slug:?}"))?;
            accounts::set_price(&pg, &redis, org.id, &model, &input, &output, &cached)
                .await
                .map_err(app_err)?;
            println!(
                "{}",
                json!({"org_slug": slug, "model": model, "input": input, "output": output, "cached_input": cached})
            );
            Ok(())
        }
    }
}
