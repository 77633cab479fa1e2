//! `query-api admin …`: operator commands.
//!
//! `bootstrap --email E --password P [--name N] [--plan P]`: create a user,
//! their organization and a `read`+`write` API key (or, when the user
//! exists and the password matches, a new key for them), and print JSON with
//! the key. `set-plan --org SLUG --plan P [--monthly-span-limit N]`.
//! `set-price --org SLUG --model M --input USD --output USD [--cached-input USD]`
//! (USD per million tokens).

use crate::{auth, control, error::AppError};
use agentvista_shared::config::CommonConfig;
use agentvista_shared::keys::{SCOPE_READ, SCOPE_WRITE};
use agentvista_shared::plan::Plan;
use anyhow::{bail, Context};
use serde_json::json;
use uuid::Uuid;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn app_err(e: AppError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.0.detail)
}

pub async fn run(common: &CommonConfig, args: &[String]) -> anyhow::Result<()> {
    let pg = crate::connect_pg(common).await?;
    let redis = crate::connect_redis(common).await?;
    match args.first().map(String::as_str) {
        Some("bootstrap") => {
            let email = flag(args, "--email").context("--email is required")?;
            let password = flag(args, "--password").context("--password is required")?;
            let name = flag(args, "--name").unwrap_or_else(|| "admin".into());
            let plan = match flag(args, "--plan") {
                Some(p) => Plan::parse(&p).with_context(|| format!("unknown plan {p:?}"))?,
                None => Plan::Scale,
            };
            let (user_id, org_id, slug) = match control::user_by_email(&pg, &email).await.map_err(app_err)? {
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
                    (user.id, org_id, slug)
                }
                None => {
                    let hash = auth::hash_password(&password);
                    let (user, org) = control::create_user(&pg, &email, &name, hash, plan)
                        .await
                        .map_err(app_err)?;
                    (user.id, org.id, org.slug)
                }
            };
            let scopes = vec![SCOPE_READ.to_string(), SCOPE_WRITE.to_string()];
            let (view, raw) = control::create_api_key(&pg, &redis, user_id, org_id, "bootstrap", &scopes)
                .await
                .map_err(app_err)?;
            println!(
                "{}",
                json!({"user_email": email, "org_slug": slug, "key_id": view.id, "api_key": raw})
            );
            Ok(())
        }
        Some("set-plan") => {
            let slug = flag(args, "--org").context("--org is required")?;
            let plan = flag(args, "--plan").context("--plan is required")?;
            let plan = Plan::parse(&plan).with_context(|| format!("unknown plan {plan:?}"))?;
            let limit = flag(args, "--monthly-span-limit")
                .map(|l| l.parse::<i64>())
                .transpose()
                .context("--monthly-span-limit must be a whole number")?;
            let org = control::org_by_slug(&pg, &slug)
                .await
                .map_err(app_err)?
                .with_context(|| format!("no organization {slug:?}"))?;
            control::set_plan(&pg, &redis, org.id, plan, limit)
                .await
                .map_err(app_err)?;
            println!("{}", json!({"org_slug": slug, "plan": plan.as_str(), "monthly_span_limit": limit}));
            Ok(())
        }
        Some("set-price") => {
            let slug = flag(args, "--org").context("--org is required")?;
            let model = flag(args, "--model").context("--model is required")?;
            let input = flag(args, "--input").context("--input (USD per million tokens) is required")?;
            let output = flag(args, "--output").context("--output (USD per million tokens) is required")?;
            let cached = flag(args, "--cached-input").unwrap_or_else(|| input.clone());
            let org = control::org_by_slug(&pg, &slug)
                .await
                .map_err(app_err)?
                .with_context(|| format!("no organization {slug:?}"))?;
            control::set_price(&pg, &redis, org.id, &model, &input, &output, &cached)
                .await
                .map_err(app_err)?;
            println!("{}", json!({"org_slug": slug, "model": model, "input": input, "output": output, "cached_input": cached}));
            Ok(())
        }
        _ => bail!("usage: query-api admin bootstrap --email E --password P [--name N] [--plan P] | set-plan --org SLUG --plan P [--monthly-span-limit N] | set-price --org SLUG --model M --input USD --output USD [--cached-input USD]"),
    }
}
