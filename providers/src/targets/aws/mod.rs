//! The `aws-ec2` target: a pool is the set of EC2 instances tagged with its
//! id.
//!
//! Why tags and not a local list: the account is the truth. A restarted
//! host, a second replica or an operator's console all see the same pool by
//! asking DescribeInstances for `scalewise:pool = <id>`, pending instances
//! included, so reconciling after a crash is one paginated read.
//!
//! Launches follow the cost rules' placement (how many on demand, how many
//! spot, which instance type) and are made retry-safe in [`launch`]. A
//! quota error stops the scale-up where it is: what was launched stays
//! launched and counted, and [`Target::headroom`] holds the pool at that
//! size for `quota_cooldown` so the control loop does not ask again every
//! tick. Any other launch error EC2 will not change its mind about (an
//! instance spec it rejects, missing permissions) holds scale-ups the same
//! way for a minute (at most `quota_cooldown`): asking again each tick would
//! only spend the account's API rate.

mod launch;
pub mod retry;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};
use scalewise_sdk::Placement;

use crate::targets::hold::ScaleUpHold;
use crate::targets::{Headroom, Member, MemberState, PoolState, ProviderError, ScaleOutcome, Target, pick_victims};
use retry::{Backoff, CallError, classify};

/// The tag that names an instance's pool.
pub const POOL_TAG: &str = "scalewise:pool";
/// The tag that names the launch (one RunInstances intent) an instance came from.
pub const LAUNCH_TAG: &str = "scalewise:launch";
/// `spot` or `on-demand`.
pub const MARKET_TAG: &str = "scalewise:market";

/// How instances are launched.
#[derive(Debug, Clone, Default)]
pub struct InstanceSpec {
    pub launch_template_id: Option<String>,
    pub launch_template_name: Option<String>,
    pub launch_template_version: Option<String>,
    pub image_id: Option<String>,
    /// Used when the cost rules name no kind.
    pub instance_type: Option<String>,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Ec2Config {
    pub pool: String,
    /// Default: the standard chain (AWS_REGION, profile, IMDS).
    pub region: Option<String>,
    /// An EC2-compatible endpoint (a VPC endpoint, a test server).
    pub endpoint_url: Option<String>,
    pub spec: InstanceSpec,
    pub backoff: Backoff,
    /// How long a quota error holds the pool at its size.
    pub quota_cooldown: Duration,
    /// Instances per DescribeInstances page (5..=1000).
    pub page_size: i32,
}

/// One instance of the pool, as read.
#[derive(Debug, Clone)]
struct PoolInstance {
    member: Member,
    spot: bool,
}

pub struct Ec2Target {
    client: aws_sdk_ec2::Client,
    config: Ec2Config,
    /// When a launch error last stopped a scale-up: until when, at what
    /// size, and why.
    hold: ScaleUpHold,
}

impl Ec2Target {
    /// Build the client: credentials from the standard chain, our own
    /// retries (the SDK's are off, see [`retry`]), ring-based TLS.
    pub async fn connect(config: Ec2Config) -> Result<Self, ProviderError> {
        use aws_config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
        use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
        let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .build(),
            );
        if let Some(r) = &config.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(e) = &config.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(ProviderError::Other(format!(
                "pool `{}`: no AWS region; set `region` in the pool's provider or AWS_REGION",
                config.pool
            )));
        }
        Ok(Self { client: aws_sdk_ec2::Client::new(&sdk), config, hold: ScaleUpHold::default() })
    }

    /// Run an idempotent call with retries; each retry is logged.
    async fn retrying<T, E, F, Fut>(&self, what: &str, mut call: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, aws_sdk_ec2::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>>>,
        E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) => self.back_off(classify(&e), &mut attempt, what).await?,
            }
        }
    }

    /// After a failed try: give up (`Err`) if the error is not worth
    /// another or the tries are spent; else log, wait, and return.
    async fn back_off(&self, error: CallError, attempt: &mut u32, what: &str) -> Result<(), CallError> {
        let b = self.config.backoff;
        *attempt += 1;
        if !error.retryable || *attempt >= b.attempts {
            return Err(error);
        }
        let wait = b.wait(*attempt - 1);
        tracing::warn!(pool = %self.config.pool, call = what, attempt = *attempt, ?wait, "EC2 {error}; retrying");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Every instance with `tag`, not yet terminated, over all pages.
    async fn describe(&self, tag: (&str, &str)) -> Result<Vec<Instance>, CallError> {
        self.retrying("DescribeInstances", || {
            let filters = vec![
                Filter::builder().name(format!("tag:{}", tag.0)).values(tag.1).build(),
                Filter::builder().name("instance-state-name").set_values(Some(
                    ["pending", "running", "shutting-down", "stopping"].map(String::from).to_vec(),
                )).build(),
            ];
            let pages = self.client.describe_instances().set_filters(Some(filters)).into_paginator().page_size(self.config.page_size).send();
            async move {
                let pages: Vec<_> = pages.collect::<Result<Vec<_>, _>>().await?;
                Ok(pages.into_iter().flat_map(|p| p.reservations.unwrap_or_default()).flat_map(|r| r.instances.unwrap_or_default()).collect())
            }
        })
        .await
    }

    async fn instances(&self) -> Result<Vec<PoolInstance>, ProviderError> {
        let found = self.describe((POOL_TAG, &self.config.pool)).await.map_err(|e| ProviderError::Read(format!("DescribeInstances: {e}")))?;
        Ok(found.iter().map(pool_instance).collect())
    }

    async fn terminate(&self, ids: &[String]) -> Result<(), CallError> {
        for chunk in ids.chunks(1000) {
            self.retrying("TerminateInstances", || self.client.terminate_instances().set_instance_ids(Some(chunk.to_vec())).send()).await?;
        }
        Ok(())
    }

    /// After a launch failed with `e` at `size` members: hold scale-ups
    /// there for a while unless another try could go differently.
    fn hold_after(&self, size: u32, e: &CallError) {
        if e.retryable {
            return;
        }
        let quota = matches!(e.code.as_str(), "InstanceLimitExceeded" | "VcpuLimitExceeded" | "MaxSpotInstanceCountExceeded" | "InsufficientInstanceCapacity");
        let how_long = if quota { self.config.quota_cooldown } else { self.config.quota_cooldown.min(Duration::from_secs(60)) };
        self.hold.set(how_long, size, e.to_string());
    }
}

fn pool_instance(i: &Instance) -> PoolInstance {
    let tag = |k: &str| i.tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_owned);
    let state = match i.state().and_then(|s| s.name()) {
        Some(InstanceStateName::Running) => MemberState::Active,
        Some(InstanceStateName::Pending) => MemberState::Starting,
        _ => MemberState::Draining,
    };
    let started = i.launch_time().map_or(0, |t| t.to_millis().unwrap_or(0));
    let spot = tag(MARKET_TAG).as_deref() == Some("spot") || i.instance_lifecycle().is_some_and(|l| l.as_str() == "spot");
    PoolInstance { member: Member::new(i.instance_id().unwrap_or_default(), state, started), spot }
}

/// Which instances to terminate to go from the live ones down by `n`: spot
/// instances beyond the placement's spot count first, then the usual order
/// (not serving, idle, unhealthy, oldest).
fn victims(live: &[PoolInstance], n: usize, placement: Option<&Placement>) -> Vec<String> {
    let spot_now = live.iter().filter(|i| i.spot).count();
    let spot_excess = placement.map_or(0, |p| spot_now.saturating_sub(p.spot as usize)).min(n);
    let od_excess = placement.map_or(0, |p| (live.len() - spot_now).saturating_sub(p.on_demand as usize)).min(n - spot_excess);
    let members = |spot: bool| live.iter().filter(|i| i.spot == spot).map(|i| i.member.clone()).collect::<Vec<_>>();
    let mut out = pick_victims(&members(true), spot_excess);
    out.extend(pick_victims(&members(false), od_excess));
    let rest: Vec<Member> = live.iter().filter(|i| !out.iter().any(|o| *o == *i.member.id)).map(|i| i.member.clone()).collect();
    out.extend(pick_victims(&rest, n - out.len()));
    out
}

#[async_trait]
impl Target for Ec2Target {
    fn kind(&self) -> &'static str {
        "aws-ec2"
    }

    async fn reconcile(&self) -> Result<PoolState, ProviderError> {
        let state = self.state().await?;
        tracing::info!(pool = %self.config.pool, running = state.running(), booting = state.booting(), "found the pool's EC2 instances");
        Ok(state)
    }

    async fn state(&self) -> Result<PoolState, ProviderError> {
        Ok(PoolState { members: self.instances().await?.into_iter().map(|i| i.member).collect() })
    }

    async fn scale_to(&self, desired: u32) -> Result<ScaleOutcome, ProviderError> {
        self.scale_placed(desired, None).await
    }

    async fn scale_placed(&self, desired: u32, placement: Option<&Placement>) -> Result<ScaleOutcome, ProviderError> {
        let all = self.instances().await?;
        let live: Vec<PoolInstance> = all.into_iter().filter(|i| i.member.state != MemberState::Draining).collect();
        let have = live.len() as u32;
        let mut outcome = ScaleOutcome { capacity: have, ..Default::default() };
        if desired > have {
            let need = desired - have;
            let spot_now = live.iter().filter(|i| i.spot).count() as u32;
            let spot = placement.map_or(0, |p| p.spot.saturating_sub(spot_now)).min(need);
            let kind = placement.and_then(|p| p.kind.clone());
            for (count, is_spot) in [(need - spot, false), (spot, true)] {
                if count == 0 {
                    continue;
                }
                match self.launch(count, is_spot, kind.as_deref()).await {
                    Ok(ids) => {
                        outcome.capacity += ids.len() as u32;
                        outcome.launched.extend(ids);
                    }
                    Err(e) => {
                        self.hold_after(outcome.capacity, &e);
                        return Err(ProviderError::Launch(format!(
                            "launched {} of {need} instance(s) [{}], then RunInstances failed: {e}",
                            outcome.launched.len(),
                            outcome.launched.join(", ")
                        )));
                    }
                }
            }
        } else if desired < have {
            let ids = victims(&live, (have - desired) as usize, placement);
            self.terminate(&ids).await.map_err(|e| ProviderError::Remove { member: ids.join(", "), detail: e.to_string() })?;
            outcome.capacity -= ids.len() as u32;
            outcome.removed = ids;
        }
        Ok(outcome)
    }

    async fn headroom(&self, state: &PoolState) -> Option<Headroom> {
        self.hold.headroom(state, "EC2 refused more instances", false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, spot: bool, at: i64) -> PoolInstance {
        PoolInstance { member: Member::new(id, MemberState::Active, at), spot }
    }

    #[test]
    fn scale_in_removes_spot_beyond_the_placement_first() {
        let live = vec![inst("od-old", false, 1), inst("spot-a", true, 5), inst("spot-b", true, 6), inst("od-new", false, 9)];
        let p = Placement { kind: None, on_demand: 2, spot: 0 };
        let got = victims(&live, 2, Some(&p));
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|v| v.starts_with("spot")), "{got:?}");
        // Without a placement: the oldest go first.
        assert_eq!(victims(&live, 1, None), ["od-old"]);
        // The placement asks for more spot than there is: on demand goes.
        let p = Placement { kind: None, on_demand: 1, spot: 2 };
        assert_eq!(victims(&live, 1, Some(&p)), ["od-old"]);
    }
}
