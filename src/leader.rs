//! Leader election on a `coordination.k8s.io` Lease: only the holder reconciles, and a holder
//! that cannot renew in time stops at once, before another replica may take over.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

/// Where the lease lives and who this replica is.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub duration: Duration,
    /// How often the holder renews, and a candidate retries.
    pub retry: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: String, name: String, identity: String) -> Self {
        Self {
            namespace,
            name,
            identity,
            duration: Duration::from_secs(15),
            retry: Duration::from_secs(2),
        }
    }
}

/// What a replica may do with the lease as it finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Free, expired or released: take it.
    Acquire,
    /// Already ours: renew it.
    Renew,
    /// Another replica holds it and has renewed it in time.
    Wait,
}

/// Decides from the lease's spec at `now`. An expired lease is free: its holder stopped writing
/// before the expiry, because a holder that cannot renew stops itself.
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Acquire;
    };
    match spec.holder_identity.as_deref() {
        None | Some("") => Decision::Acquire,
        Some(holder) if holder == identity => Decision::Renew,
        Some(_) => {
            let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0));
            let expires = spec
                .renew_time
                .as_ref()
                .map(|t| t.0 + SignedDuration::from_secs(seconds));
            if expires.is_none_or(|expires| expires <= now) {
                Decision::Acquire
            } else {
                Decision::Wait
            }
        }
    }
}

fn held_spec(previous: Option<&LeaseSpec>, config: &LeaseConfig, now: Timestamp) -> LeaseSpec {
    let ours =
        previous.and_then(|s| s.holder_identity.as_deref()) == Some(config.identity.as_str());
    let transitions = previous.and_then(|s| s.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(config.duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: if ours {
            previous.and_then(|s| s.acquire_time.clone())
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if ours || previous.is_none() {
            transitions
        } else {
            transitions + 1
        }),
        ..Default::default()
    }
}

/// One attempt to take or renew the lease. Ok(true) when this replica holds it afterwards.
/// Writes carry the resourceVersion that was read, so two candidates never both win.
async fn try_hold(api: &Api<Lease>, config: &LeaseConfig) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let current = api.get_opt(&config.name).await?;
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    if decide(spec, &config.identity, now) == Decision::Wait {
        return Ok(false);
    }
    let mut lease = current.clone().unwrap_or_default();
    lease.metadata.name = Some(config.name.clone());
    lease.metadata.namespace = Some(config.namespace.clone());
    lease.spec = Some(held_spec(spec, config, now));
    let written = match current {
        Some(_) => {
            api.replace(&config.name, &PostParams::default(), &lease)
                .await
        }
        None => api.create(&PostParams::default(), &lease).await,
    };
    match written {
        Ok(_) => Ok(true),
        // Another candidate wrote first.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(err) => Err(err),
    }
}

/// Waits until this replica holds the lease.
pub async fn acquire(client: Client, config: &LeaseConfig) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    loop {
        match try_hold(&api, config).await {
            Ok(true) => {
                tracing::info!(lease = %config.name, identity = %config.identity, "became the leader");
                return;
            }
            Ok(false) => tracing::debug!(lease = %config.name, "another replica leads; waiting"),
            Err(err) => {
                tracing::warn!(lease = %config.name, error = %err, "cannot read or take the lease")
            }
        }
        tokio::time::sleep(config.retry).await;
    }
}

/// Renews the lease until it cannot: returns when another replica holds it or when no renewal
/// succeeded for most of the lease's duration, early enough that this replica stops before the
/// lease expires and another one may start.
pub async fn hold(client: Client, config: &LeaseConfig) -> anyhow::Error {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let deadline_after_renewal = config.duration.saturating_sub(config.retry * 2);
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(config.retry).await;
        match try_hold(&api, config).await {
            Ok(true) => last_renewal = tokio::time::Instant::now(),
            Ok(false) => {
                return anyhow::anyhow!("lease {} is held by another replica", config.name);
            }
            Err(err) => {
                tracing::warn!(lease = %config.name, error = %err, "cannot renew the lease")
            }
        }
        if last_renewal.elapsed() >= deadline_after_renewal {
            return anyhow::anyhow!(
                "lease {} was not renewed for {:?}",
                config.name,
                last_renewal.elapsed()
            );
        }
    }
}

/// Gives the lease up on a clean shutdown, so a standby replica takes over at once.
pub async fn release(client: Client, config: &LeaseConfig) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let Ok(Some(mut lease)) = api.get_opt(&config.name).await else {
        return;
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    match api
        .replace(&lease.name_any(), &PostParams::default(), &lease)
        .await
    {
        Ok(_) => tracing::info!(lease = %config.name, "released the lease"),
        Err(err) => tracing::warn!(lease = %config.name, error = %err, "cannot release the lease"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("a valid time")
    }

    fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(at(renewed))),
            ..Default::default()
        }
    }

    #[test]
    fn a_missing_or_released_lease_is_taken() {
        assert_eq!(decide(None, "a", at(0)), Decision::Acquire);
        let released = LeaseSpec {
            holder_identity: None,
            ..held_by("b", 0)
        };
        assert_eq!(decide(Some(&released), "a", at(1)), Decision::Acquire);
    }

    #[test]
    fn our_own_lease_is_renewed() {
        assert_eq!(
            decide(Some(&held_by("a", 0)), "a", at(100)),
            Decision::Renew
        );
    }

    #[test]
    fn another_holders_lease_is_respected_until_it_expires() {
        let lease = held_by("b", 0);
        assert_eq!(decide(Some(&lease), "a", at(14)), Decision::Wait);
        assert_eq!(decide(Some(&lease), "a", at(15)), Decision::Acquire);
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let config = LeaseConfig::new("ns".to_owned(), "lease".to_owned(), "a".to_owned());
        let previous = LeaseSpec {
            lease_transitions: Some(2),
            ..held_by("b", 0)
        };
        let taken = held_spec(Some(&previous), &config, at(20));
        assert_eq!(taken.lease_transitions, Some(3));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(20))));
        let renewed = held_spec(Some(&taken), &config, at(25));
        assert_eq!(renewed.lease_transitions, Some(3));
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(20))));
        assert_eq!(renewed.renew_time, Some(MicroTime(at(25))));
    }
}
