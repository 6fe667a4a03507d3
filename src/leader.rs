//! Leader election on a `coordination.k8s.io` Lease: only the holder reconciles, and a holder
//! that cannot renew in time stops at once, before another replica may take over.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

/// The longest lease a standby honours, whatever the lease says: a lease written with a duration
/// of a year (by mistake, or by someone who wants no operator to run) holds it off a minute.
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(60);

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

/// What a candidate last saw of another replica's lease, and when by its own clock. Whether that
/// lease expired is judged from this moment, as client-go does, never from the renewTime in the
/// lease: that is the holder's wall clock, which may run ahead of or behind this replica's.
#[derive(Clone, Debug, PartialEq)]
struct Observed {
    holder: String,
    renew_time: Option<MicroTime>,
    transitions: Option<i32>,
    at: Instant,
}

/// One replica's view of the lease over time.
#[derive(Debug)]
pub struct Candidate {
    identity: String,
    duration: Duration,
    observed: Option<Observed>,
}

impl Candidate {
    pub fn new(identity: String, duration: Duration) -> Self {
        Self {
            identity,
            duration,
            observed: None,
        }
    }

    /// Decides from the lease's spec as read at `now` (this replica's monotonic clock). Another
    /// holder's lease is expired only after it stayed unchanged for its whole duration as this
    /// replica saw it; its holder, unable to renew, stopped writing before that.
    pub fn decide(&mut self, spec: Option<&LeaseSpec>, now: Instant) -> Decision {
        let Some(spec) = spec else {
            return Decision::Acquire;
        };
        let holder = match spec.holder_identity.as_deref() {
            None | Some("") => return Decision::Acquire,
            Some(holder) if holder == self.identity => return Decision::Renew,
            Some(holder) => holder,
        };
        let seen = Observed {
            holder: holder.to_owned(),
            renew_time: spec.renew_time.clone(),
            transitions: spec.lease_transitions,
            at: now,
        };
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.duration, Duration::from_secs)
            .min(MAX_LEASE_DURATION);
        match &self.observed {
            Some(last)
                if last.holder == seen.holder
                    && last.renew_time == seen.renew_time
                    && last.transitions == seen.transitions =>
            {
                if now.saturating_duration_since(last.at) >= duration {
                    Decision::Acquire
                } else {
                    Decision::Wait
                }
            }
            _ => {
                self.observed = Some(seen);
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

/// One attempt to take or renew the lease: the lease as written when this replica holds it
/// afterwards. Writes carry the resourceVersion that was read, so two candidates never both win.
async fn try_hold(
    api: &Api<Lease>,
    config: &LeaseConfig,
    candidate: &mut Candidate,
) -> Result<Option<Lease>, kube::Error> {
    let current = api.get_opt(&config.name).await?;
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    if candidate.decide(spec, Instant::now()) == Decision::Wait {
        return Ok(None);
    }
    let mut lease = current.clone().unwrap_or_default();
    lease.metadata.name = Some(config.name.clone());
    lease.metadata.namespace = Some(config.namespace.clone());
    // The label that puts the lease under the chart's managed-objects admission policy.
    lease.labels_mut().insert(
        "app.kubernetes.io/managed-by".to_owned(),
        "domicile".to_owned(),
    );
    lease.spec = Some(held_spec(spec, config, Timestamp::now()));
    let written = match current {
        Some(_) => {
            api.replace(&config.name, &PostParams::default(), &lease)
                .await
        }
        None => api.create(&PostParams::default(), &lease).await,
    };
    match written {
        Ok(written) => Ok(Some(written)),
        // Another candidate wrote first.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
        Err(err) => Err(err),
    }
}

/// The holder's renewal without reading first, as client-go does: the lease this replica last
/// wrote, with a new renewTime and that write's resourceVersion. None when the lease changed
/// since (409), and the full read-and-decide path must judge.
async fn renew(
    api: &Api<Lease>,
    config: &LeaseConfig,
    mut last: Lease,
) -> Result<Option<Lease>, kube::Error> {
    last.spec = Some(held_spec(last.spec.as_ref(), config, Timestamp::now()));
    match api
        .replace(&config.name, &PostParams::default(), &last)
        .await
    {
        Ok(written) => Ok(Some(written)),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
        Err(err) => Err(err),
    }
}

/// Waits until this replica holds the lease.
pub async fn acquire(client: Client, config: &LeaseConfig) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut candidate = Candidate::new(config.identity.clone(), config.duration);
    loop {
        match try_hold(&api, config, &mut candidate).await {
            Ok(Some(_)) => {
                tracing::info!(lease = %config.name, identity = %config.identity, "became the leader");
                return;
            }
            Ok(None) => tracing::debug!(lease = %config.name, "another replica leads; waiting"),
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
    let mut candidate = Candidate::new(config.identity.clone(), config.duration);
    // The lease as this replica last wrote it: renewed with one request, no read.
    let mut held: Option<Lease> = None;
    loop {
        tokio::time::sleep(config.retry).await;
        let attempt = match held.take() {
            Some(last) => match renew(&api, config, last).await {
                Ok(None) => try_hold(&api, config, &mut candidate).await,
                renewed => renewed,
            },
            None => try_hold(&api, config, &mut candidate).await,
        };
        match attempt {
            Ok(Some(written)) => {
                held = Some(written);
                last_renewal = tokio::time::Instant::now();
            }
            Ok(None) => {
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

    fn candidate(identity: &str) -> Candidate {
        Candidate::new(identity.to_owned(), Duration::from_secs(15))
    }

    #[test]
    fn a_missing_or_released_lease_is_taken() {
        let now = Instant::now();
        assert_eq!(candidate("a").decide(None, now), Decision::Acquire);
        let released = LeaseSpec {
            holder_identity: None,
            ..held_by("b", 0)
        };
        assert_eq!(
            candidate("a").decide(Some(&released), now),
            Decision::Acquire
        );
    }

    #[test]
    fn our_own_lease_is_renewed() {
        assert_eq!(
            candidate("a").decide(Some(&held_by("a", 0)), Instant::now()),
            Decision::Renew
        );
    }

    #[test]
    fn another_holders_lease_expires_a_full_duration_after_we_saw_it_last_change() {
        let start = Instant::now();
        let mut a = candidate("a");
        // A renewTime long past by any clock does not make the lease expired on first sight.
        let lease = held_by("b", -3600);
        assert_eq!(a.decide(Some(&lease), start), Decision::Wait);
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(a.decide(Some(&lease), at(14)), Decision::Wait);
        // Renewed: the count starts again.
        let renewed = held_by("b", -3590);
        assert_eq!(a.decide(Some(&renewed), at(14)), Decision::Wait);
        assert_eq!(a.decide(Some(&renewed), at(28)), Decision::Wait);
        assert_eq!(a.decide(Some(&renewed), at(29)), Decision::Acquire);
    }

    #[test]
    fn a_lease_of_a_year_holds_a_standby_off_a_minute_at_most() {
        let start = Instant::now();
        let mut a = candidate("a");
        let forged = LeaseSpec {
            lease_duration_seconds: Some(365 * 24 * 3600),
            ..held_by("nobody", 0)
        };
        assert_eq!(a.decide(Some(&forged), start), Decision::Wait);
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(a.decide(Some(&forged), at(59)), Decision::Wait);
        assert_eq!(
            a.decide(Some(&forged), at(MAX_LEASE_DURATION.as_secs())),
            Decision::Acquire
        );
    }

    /// A replica in the simulation: its view of the lease, and since when it leads.
    struct Replica {
        config: LeaseConfig,
        candidate: Candidate,
        /// Seconds of its wall clock ahead of the simulation's.
        skew: i64,
        last_renewal: Option<u64>,
        leading: bool,
    }

    impl Replica {
        fn new(identity: &str, skew: i64) -> Self {
            let config = LeaseConfig::new("ns".into(), "l".into(), identity.into());
            Self {
                candidate: Candidate::new(identity.into(), config.duration),
                config,
                skew,
                last_renewal: None,
                leading: false,
            }
        }

        /// One pass of acquire()/hold() at second `t`: take or renew, or stop leading when
        /// another holds the lease or no renewal succeeded for too long.
        fn attempt(&mut self, lease: &mut Option<LeaseSpec>, start: Instant, t: u64) {
            let now = start + Duration::from_secs(t);
            if self.candidate.decide(lease.as_ref(), now) == Decision::Wait {
                self.leading = false;
            } else {
                let wall = at(self.skew + i64::try_from(t).expect("small"));
                *lease = Some(held_spec(lease.as_ref(), &self.config, wall));
                self.last_renewal = Some(t);
                self.leading = true;
            }
            let deadline = self.config.duration - self.config.retry * 2;
            if self
                .last_renewal
                .is_some_and(|r| Duration::from_secs(t - r) >= deadline)
            {
                self.leading = false;
            }
        }
    }

    /// Two replicas share one lease; B's wall clock runs `skew` seconds ahead of A's (negative:
    /// behind). Each tries every 2 s, A on even seconds, B on odd ones; A dies at `a_dies`.
    /// Returns whether both ever led at once, and when B first took the lease.
    fn simulate(skew: i64, a_dies: u64) -> (bool, Option<u64>) {
        let start = Instant::now();
        let mut lease = None;
        let (mut a, mut b) = (Replica::new("a", 0), Replica::new("b", skew));
        let (mut both, mut b_took) = (false, None);
        for t in 0..120 {
            if t >= a_dies {
                a.leading = false;
            } else if t % 2 == 0 {
                a.attempt(&mut lease, start, t);
            }
            if t % 2 == 1 {
                b.attempt(&mut lease, start, t);
                if b.leading {
                    b_took.get_or_insert(t);
                }
            }
            both |= a.leading && b.leading;
        }
        (both, b_took)
    }

    #[test]
    fn two_replicas_with_thirty_seconds_of_clock_skew_never_both_lead() {
        for skew in [30, -30, 3600] {
            let (both, b_took) = simulate(skew, u64::MAX);
            assert!(!both, "both led with B's clock {skew} s off");
            assert_eq!(
                b_took, None,
                "B took a lease A kept renewing (skew {skew} s)"
            );
        }
    }

    #[test]
    fn a_standby_takes_over_a_lease_duration_after_the_leader_stops_whatever_the_skew() {
        for skew in [30, -30] {
            let (both, b_took) = simulate(skew, 10);
            assert!(!both, "both led with B's clock {skew} s off");
            let took = b_took.expect("B takes over");
            // A renewed last at 8 s; B saw that renewal at 9 s and waits 15 s by its own clock.
            assert!(
                (23..=26).contains(&took),
                "B took over at {took} s (skew {skew} s)"
            );
        }
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
