//! The `azure-vmss` target: a pool is one Azure virtual machine scale set.
//!
//! Why the scale set's own capacity and not VMs of our own: the scale set
//! is the truth and the unit Azure scales, heals and bills. A restarted
//! host, a second replica or the portal see the same pool by listing the
//! set's instances. Scale-out raises `sku.capacity` by what is missing,
//! counted against the capacity Azure reports (which includes instances
//! stopping or deallocating that the pool does not count). New instances
//! are listed at once, so a host killed half-way through a scale-up and
//! started again finds the instances it asked for and launches nothing
//! twice. Scale-in deletes chosen instances
//! by the removal score (`POST .../delete` with their instance ids), which
//! lowers the capacity with them; a delete of an instance already gone is
//! harmless. Failed and deallocated instances (a Spot eviction) are not
//! counted as capacity: the next scale deletes them, and a scale-up
//! replaces them.
//!
//! Both follow ARM's long-running operation to its end ([`arm`]): a pool
//! waits for its scale set's operation, as `az vmss scale` does, since the
//! set takes one change at a time. A quota or allocation refusal keeps what
//! exists and holds the pool at its size for `quota_cooldown` (the decision
//! shows `limited` and why) instead of asking again every tick.
//!
//! Spot: a scale set's priority (Regular or Spot) is part of its model, not
//! of a call, so the cost rules' placement is not applied; run a Spot scale
//! set as its own pool.
//!
//! Everything the code asks of ARM is listed in [`API_USE`]; the end-to-end
//! test holds the stand-in's log of requests to exactly that list.

pub mod arm;
pub mod identity;

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

use crate::targets::hold::ScaleUpHold;
use crate::targets::{Headroom, Member, MemberState, PoolState, ProviderError, ScaleOutcome, Target, pick_victims};
use arm::{Arm, ArmError};

/// Every request the target makes: method and path under the scale set
/// (`{vmss}` = `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}`),
/// besides polling the operation URLs ARM hands back and the token endpoints.
pub const API_USE: &[(&str, &str)] = &[
    // Virtual Machine Scale Sets - Get: `sku.capacity`, as Azure counts it.
    ("GET", "{vmss}"),
    // Virtual Machine Scale Sets - Update: `{"sku": {"capacity": N}}`.
    ("PATCH", "{vmss}"),
    // Virtual Machine Scale Set VMs - List, `$expand=instanceView`, by `nextLink`.
    ("GET", "{vmss}/virtualMachines"),
    // Virtual Machine Scale Sets - Delete Instances: `{"instanceIds": [...]}`.
    ("POST", "{vmss}/delete"),
];

#[derive(Debug, Clone)]
pub struct VmssConfig {
    pub pool: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    /// Pages of instances read at most (ARM pages hold up to 1000 or so).
    pub max_pages: usize,
    pub quota_cooldown: Duration,
}

pub struct VmssTarget {
    arm: Arm,
    config: VmssConfig,
    /// When a refusal last stopped a scale-up: until when, at what size, why.
    hold: ScaleUpHold,
}

impl VmssTarget {
    pub fn new(arm: Arm, config: VmssConfig) -> Self {
        Self { arm, config, hold: ScaleUpHold::default() }
    }

    fn path(&self, tail: &str) -> String {
        let c = &self.config;
        format!("/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/{}{tail}", c.subscription_id, c.resource_group, c.name)
    }

    fn what(&self) -> String {
        format!("scale set {}/{}", self.config.resource_group, self.config.name)
    }

    /// Every instance of the set, over all pages.
    async fn instances(&self) -> Result<Vec<Member>, ArmError> {
        let mut url = self.arm.url(&self.path("/virtualMachines"), "&$expand=instanceView");
        let mut out = Vec::new();
        for _ in 0..self.config.max_pages {
            let (_, _, page) = self.arm.send(Method::GET, &url, None).await?;
            out.extend(page["value"].as_array().into_iter().flatten().filter_map(member));
            match page["nextLink"].as_str() {
                Some(next) if !next.is_empty() => url = next.to_owned(),
                _ => return Ok(out),
            }
        }
        tracing::warn!(pool = %self.config.pool, pages = self.config.max_pages, "the scale set has more instance pages than read");
        Ok(out)
    }

    /// The set's `sku.capacity`: what Azure counts, which includes
    /// instances stopping or deallocated that the pool does not.
    async fn capacity(&self) -> Result<u32, ArmError> {
        let url = self.arm.url(&self.path(""), "");
        let (_, _, v) = self.arm.send(Method::GET, &url, None).await?;
        v["sku"]["capacity"].as_u64().map(|c| c as u32).ok_or_else(|| ArmError { status: None, code: "BadResponse".into(), message: "the scale set has no sku.capacity".into() })
    }

    async fn set_capacity(&self, capacity: u32) -> Result<(), ArmError> {
        let url = self.arm.url(&self.path(""), "");
        let (status, headers, _) = self.arm.send(Method::PATCH, &url, Some(&json!({ "sku": { "capacity": capacity } }))).await?;
        self.arm.follow(status, &headers).await
    }

    async fn delete(&self, ids: &[String]) -> Result<(), ArmError> {
        let url = self.arm.url(&self.path("/delete"), "");
        let (status, headers, _) = self.arm.send(Method::POST, &url, Some(&json!({ "instanceIds": ids }))).await?;
        self.arm.follow(status, &headers).await
    }

    fn read_error(&self, e: ArmError) -> ProviderError {
        ProviderError::Read(format!("{}: {e}", self.what()))
    }
}

/// One instance of `GET .../virtualMachines?$expand=instanceView` as a member.
fn member(vm: &Value) -> Option<Member> {
    let id = vm["instanceId"].as_str()?;
    let p = &vm["properties"];
    let provisioning = p["provisioningState"].as_str().unwrap_or("");
    let codes: Vec<&str> = p["instanceView"]["statuses"].as_array().into_iter().flatten().filter_map(|s| s["code"].as_str()).collect();
    let power = codes.iter().find_map(|c| c.strip_prefix("PowerState/")).unwrap_or("");
    // A failed or deallocated instance (a Spot eviction) is not capacity:
    // Azure never brings it back by itself, so it is `stopped`, and the next
    // scale deletes it and asks for a replacement. An instance being updated
    // (an extension, a model change) serves on.
    let state = match (provisioning, power) {
        ("Deleting", _) | (_, "stopping" | "deallocating") => MemberState::Draining,
        ("Failed", _) | (_, "stopped" | "deallocated") => MemberState::Stopped,
        ("Succeeded" | "Updating", "running") => MemberState::Active,
        _ => MemberState::Starting,
    };
    let mut m = Member::new(id, state, p["timeCreated"].as_str().and_then(rfc3339_ms).unwrap_or(0));
    if state == MemberState::Stopped {
        m.healthy = false;
        m.last_error = Some(format!("provisioning {provisioning}, power {}", if power.is_empty() { "unknown" } else { power }));
    }
    Some(m)
}

/// Milliseconds since the epoch of an RFC 3339 time (`2026-12-01T10:00:00.1234567+00:00`).
fn rfc3339_ms(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, mo, da) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, offset) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut t = hms.split(':');
    let (h, mi) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let sec: f64 = t.next().unwrap_or("0").parse().ok()?;
    let off_min = match offset.chars().next() {
        Some(sign @ ('+' | '-')) => {
            let (oh, om) = offset[1..].split_once(':').unwrap_or((&offset[1..], "0"));
            let m = oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().ok()?;
            if sign == '-' { -m } else { m }
        }
        _ => 0,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + da - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 - off_min * 60) * 1000 + (sec * 1000.0) as i64)
}

#[async_trait]
impl Target for VmssTarget {
    fn kind(&self) -> &'static str {
        "azure-vmss"
    }

    async fn reconcile(&self) -> Result<PoolState, ProviderError> {
        let state = self.state().await?;
        tracing::info!(pool = %self.config.pool, running = state.running(), booting = state.booting(), "found the scale set's instances");
        Ok(state)
    }

    async fn state(&self) -> Result<PoolState, ProviderError> {
        let members = self.instances().await.map_err(|e| self.read_error(e))?;
        Ok(PoolState { members: members.into() })
    }

    async fn scale_to(&self, desired: u32) -> Result<ScaleOutcome, ProviderError> {
        let members = self.instances().await.map_err(|e| self.read_error(e))?;
        let dead: Vec<String> = members.iter().filter(|m| m.state == MemberState::Stopped).map(|m| m.id.to_string()).collect();
        let live: Vec<Member> = members.into_iter().filter(|m| !matches!(m.state, MemberState::Draining | MemberState::Stopped)).collect();
        let have = live.len() as u32;
        let mut outcome = ScaleOutcome { capacity: have, ..Default::default() };
        if !dead.is_empty() && desired != have {
            // Failed and deallocated instances go first: a scale-up replaces
            // them, a scale-in has no use for them.
            self.delete(&dead).await.map_err(|e| ProviderError::Remove { member: dead.join(", "), detail: format!("{}: {e}", self.what()) })?;
            outcome.removed.extend(dead);
        }
        if desired > have {
            // Relative to what Azure counts, so instances it still counts and
            // the pool does not (stopping, deallocating) are not cut. Still
            // safe to send twice: new instances are listed at once, so a
            // restarted host finds `have` already at `desired`.
            let grown = match self.capacity().await {
                Ok(c) => self.set_capacity(c + (desired - have)).await,
                Err(e) => Err(e),
            };
            if let Err(e) = grown {
                let launched = self.instances().await.map(|m| m.iter().filter(|m| !matches!(m.state, MemberState::Draining | MemberState::Stopped)).count() as u32).unwrap_or(have);
                if e.is_quota() || e.status.is_some_and(|s| (400..500).contains(&s) && s != 429) {
                    let cooldown = if e.is_quota() { self.config.quota_cooldown } else { self.config.quota_cooldown.min(Duration::from_secs(60)) };
                    self.hold.set(cooldown, launched, e.to_string());
                }
                return Err(ProviderError::Launch(format!("{}: capacity {have} → {desired} stopped at {launched}: {e}", self.what())));
            }
            outcome.capacity = desired;
            outcome.launched = vec![format!("capacity {have} → {desired}")];
        } else if desired < have {
            let ids = pick_victims(&live, (have - desired) as usize);
            self.delete(&ids).await.map_err(|e| ProviderError::Remove { member: ids.join(", "), detail: format!("{}: {e}", self.what()) })?;
            outcome.capacity -= ids.len() as u32;
            outcome.removed.extend(ids);
        }
        Ok(outcome)
    }

    async fn headroom(&self, state: &PoolState) -> Option<Headroom> {
        self.hold.headroom(state, "Azure refused more instances", false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_views_map_to_member_states() {
        let vm = |prov: &str, power: Option<&str>| {
            let mut statuses = vec![json!({"code": format!("ProvisioningState/{}", prov.to_lowercase())})];
            if let Some(p) = power {
                statuses.push(json!({"code": format!("PowerState/{p}")}));
            }
            json!({"instanceId": "3", "name": "web_3", "properties": {"provisioningState": prov, "timeCreated": "2026-12-01T10:00:00.5+00:00", "instanceView": {"statuses": statuses}}})
        };
        let m = member(&vm("Succeeded", Some("running"))).unwrap();
        assert_eq!((&*m.id, m.state, m.healthy, m.started_at), ("3", MemberState::Active, true, 1_796_119_200_500));
        assert_eq!(member(&vm("Creating", None)).unwrap().state, MemberState::Starting);
        assert_eq!(member(&vm("Succeeded", Some("starting"))).unwrap().state, MemberState::Starting);
        assert_eq!(member(&vm("Deleting", Some("running"))).unwrap().state, MemberState::Draining);
        let failed = member(&vm("Failed", Some("running"))).unwrap();
        assert_eq!((failed.state, failed.healthy), (MemberState::Stopped, false));
        assert!(failed.last_error.unwrap().contains("provisioning Failed"));
        assert_eq!(member(&vm("Succeeded", Some("deallocated"))).unwrap().state, MemberState::Stopped, "an evicted Spot instance is not capacity");
        assert_eq!(member(&vm("Updating", Some("running"))).unwrap().state, MemberState::Active, "an instance being updated serves on");
        assert!(member(&json!({"name": "no id"})).is_none());
    }

    #[test]
    fn rfc3339_times_with_offsets() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms("2026-12-01T10:00:00.5+00:00"), Some(1_796_119_200_500));
        assert_eq!(rfc3339_ms("2026-12-01T11:00:00.5+01:00"), Some(1_796_119_200_500));
        assert_eq!(rfc3339_ms("2000-02-29T00:00:00.1234567Z"), Some(951_782_400_123));
        assert_eq!(rfc3339_ms("not a time"), None);
    }
}
