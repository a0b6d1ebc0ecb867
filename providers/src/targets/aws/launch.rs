//! One launch intent, made safe to retry.
//!
//! A RunInstances call whose answer is lost (a dropped connection, a
//! timeout, a 5xx after the work was done) may or may not have launched.
//! Sending it again is only safe if the endpoint honours the client token;
//! not every one does. So each intent gets its own id, sent as the client
//! token *and* written as the `scalewise:launch` tag on every instance it
//! starts, and before any retry the launch looks that tag up: if the
//! earlier try landed, its instances are the answer and nothing is sent
//! again. If the look-up itself cannot be made, the launch gives up rather
//! than risk a second fleet; the next decision starts from what
//! DescribeInstances shows then.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_ec2::types::{
    InstanceMarketOptionsRequest, InstanceType, LaunchTemplateSpecification, MarketType, ResourceType, Tag, TagSpecification,
};

use super::retry::{CallError, classify};
use super::{Ec2Target, LAUNCH_TAG, MARKET_TAG, POOL_TAG};

/// A launch id unique to this process and pool: pool, start time, counter.
fn launch_id(pool: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    // Client tokens may be at most 64 ASCII characters.
    let mut id = format!("{}-{:x}-{n}", pool, crate::now_ms());
    if id.len() > 64 {
        id = id.split_off(id.len() - 64);
    }
    id
}

impl Ec2Target {
    /// Launch `count` instances (spot or on demand, of `kind` if the cost
    /// rules named one); the ids launched, or why not.
    pub(super) async fn launch(&self, count: u32, spot: bool, kind: Option<&str>) -> Result<Vec<String>, CallError> {
        let id = launch_id(&self.config.pool);
        let mut attempt = 0;
        loop {
            if attempt > 0 {
                // Did an earlier try land after all?
                let landed = self.describe((LAUNCH_TAG, &id)).await.map_err(|e| CallError {
                    message: format!("cannot tell whether launch {id} landed, so it is not sent again: {}", e.message),
                    ..e
                })?;
                if !landed.is_empty() {
                    tracing::info!(pool = %self.config.pool, launch = %id, found = landed.len(), "an earlier try of this launch landed; not sending it again");
                    return Ok(landed.iter().filter_map(|i| i.instance_id().map(str::to_owned)).collect());
                }
            }
            match self.run_instances(&id, count, spot, kind).await {
                Ok(ids) => return Ok(ids),
                Err(e) => self.back_off(classify(&e), &mut attempt, &format!("RunInstances (launch {id})")).await?,
            }
        }
    }

    async fn run_instances(
        &self,
        id: &str,
        count: u32,
        spot: bool,
        kind: Option<&str>,
    ) -> Result<Vec<String>, aws_sdk_ec2::error::SdkError<aws_sdk_ec2::operation::run_instances::RunInstancesError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>>
    {
        let s = &self.config.spec;
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(tag(POOL_TAG, &self.config.pool))
            .tags(tag(LAUNCH_TAG, id))
            .tags(tag(MARKET_TAG, if spot { "spot" } else { "on-demand" }))
            .tags(tag("Name", &format!("scalewise-{}", self.config.pool)))
            .build();
        let mut req = self
            .client
            .run_instances()
            .client_token(id)
            .min_count(count as i32)
            .max_count(count as i32)
            .tag_specifications(tags)
            .set_image_id(s.image_id.clone())
            .set_subnet_id(s.subnet_id.clone())
            .set_key_name(s.key_name.clone());
        if !s.security_group_ids.is_empty() {
            req = req.set_security_group_ids(Some(s.security_group_ids.clone()));
        }
        if let Some(t) = kind.or(s.instance_type.as_deref()) {
            req = req.instance_type(InstanceType::from(t));
        }
        if s.launch_template_id.is_some() || s.launch_template_name.is_some() {
            req = req.launch_template(
                LaunchTemplateSpecification::builder()
                    .set_launch_template_id(s.launch_template_id.clone())
                    .set_launch_template_name(s.launch_template_name.clone())
                    .set_version(s.launch_template_version.clone())
                    .build(),
            );
        }
        if spot {
            req = req.instance_market_options(InstanceMarketOptionsRequest::builder().market_type(MarketType::Spot).build());
        }
        let out = req.send().await?;
        Ok(out.instances().iter().filter_map(|i| i.instance_id().map(str::to_owned)).collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn launch_ids_are_unique_and_fit_a_client_token() {
        let a = super::launch_id("web");
        let b = super::launch_id("web");
        assert_ne!(a, b);
        let long = super::launch_id(&"p".repeat(100));
        assert!(long.len() <= 64, "{}", long.len());
    }
}
