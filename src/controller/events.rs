//! Events are handed over, not awaited: a reconcile queues them and one task publishes them in
//! order, as client-go's event broadcaster does. A relabel that reaches many data centres so
//! writes every status before the Events that explain it, instead of one status and its Events
//! after the other: the task holds each Event back until no status has been written for `QUIET`
//! (`HOLD_AT_MOST` after it was queued, at most), so that Events, two or three per changed
//! verdict, do not compete at the API server with the verdicts themselves. Events are best
//! effort: a full queue drops one with a warning in the log, and a replica that loses its lease
//! drops those it still holds.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Writer;

/// Events waiting to be published; a burst of a thousand data centres turning Violated at once
/// fits.
const QUEUE: usize = 4096;

/// Status writes are over once none has been in flight for this long: relabels made one after
/// the other by a script count as one run.
const QUIET: Duration = Duration::from_millis(500);

/// An Event waits for status writes to be over for this long at most after it was queued, so a
/// long run of status writes (a thousand data centres converging) delays Events only so much.
const HOLD_AT_MOST: Duration = Duration::from_secs(30);

/// The status writes in flight and when the last one ended.
#[derive(Clone)]
pub struct StatusWrites(Arc<watch::Sender<Burst>>);

#[derive(Clone, Copy, Default)]
struct Burst {
    in_flight: usize,
    last_end: Option<Instant>,
}

impl Default for StatusWrites {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(Burst::default())))
    }
}

impl StatusWrites {
    /// Counts a status write as in flight until the returned guard is dropped.
    pub fn begin(&self) -> StatusWrite<'_> {
        self.0.send_modify(|burst| burst.in_flight += 1);
        StatusWrite(self)
    }

    /// Returns once no status write has been in flight for `QUIET`, or at `until`.
    async fn over(&self, until: Instant) {
        let mut changes = self.0.subscribe();
        loop {
            let burst = *changes.borrow_and_update();
            let quiet_at = match (burst.in_flight, burst.last_end) {
                (0, None) => return,
                (0, Some(end)) => end + QUIET,
                _ => until,
            };
            let wake = quiet_at.min(until);
            if Instant::now() >= wake {
                return;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

/// A status write in flight.
pub struct StatusWrite<'a>(&'a StatusWrites);

impl Drop for StatusWrite<'_> {
    fn drop(&mut self) {
        self.0.0.send_modify(|burst| {
            burst.in_flight = burst.in_flight.saturating_sub(1);
            burst.last_end = Some(Instant::now());
        });
    }
}

/// The reconciles' end of the queue.
pub struct Announcer {
    queue: mpsc::Sender<(Event, ObjectReference, Instant)>,
}

impl Announcer {
    /// Starts the task that publishes what is announced; it ends once every `Announcer` is
    /// dropped and the queue is empty, or when its `Publisher` is dropped.
    pub fn start(writer: Writer, recorder: Recorder) -> (Self, Publisher) {
        let (queue, mut queued) = mpsc::channel::<(Event, ObjectReference, Instant)>(QUEUE);
        let task = tokio::spawn(async move {
            while let Some((event, regarding, at)) = queued.recv().await {
                writer.status_writes().over(at + HOLD_AT_MOST).await;
                if let Err(err) = writer.publish(&recorder, &event, &regarding).await {
                    tracing::warn!(
                        regarding = %describe(&regarding),
                        reason = %event.reason,
                        error = %err,
                        "cannot publish an event"
                    );
                }
            }
        });
        (Self { queue }, Publisher(task))
    }

    /// Queues `event` about `regarding`; returns at once.
    pub fn announce(&self, event: Event, regarding: ObjectReference) {
        let (why, (event, regarding, _)) =
            match self.queue.try_send((event, regarding, Instant::now())) {
                Ok(()) => return,
                Err(TrySendError::Full(queued)) => {
                    ("as many are waiting as the queue holds", queued)
                }
                Err(TrySendError::Closed(queued)) => ("events are no longer published", queued),
            };
        tracing::warn!(
            regarding = %describe(&regarding),
            reason = %event.reason,
            "event dropped: {why}"
        );
    }
}

/// The publishing task. Dropping it stops the task at once: a replica that lost the lease sends
/// no Event after its controller was dropped.
pub struct Publisher(JoinHandle<()>);

impl Publisher {
    /// Waits, for `within` at most, until every Event queued has been published; says whether
    /// they all were.
    pub async fn drain(mut self, within: Duration) -> bool {
        tokio::time::timeout(within, &mut self.0).await.is_ok()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn describe(regarding: &ObjectReference) -> String {
    format!(
        "{}/{}",
        regarding.namespace.as_deref().unwrap_or_default(),
        regarding.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn events_wait_for_status_writes_to_be_over() {
        let writes = StatusWrites::default();
        let start = Instant::now();
        writes.over(start + HOLD_AT_MOST).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "no status write yet");

        let write = writes.begin();
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(write);
        let ended = Instant::now();
        writes.over(start + HOLD_AT_MOST).await;
        assert_eq!(
            ended.elapsed(),
            QUIET,
            "held until none was in flight for QUIET"
        );

        // Another write starts while an Event waits: it waits for that one too.
        let waiting = tokio::spawn({
            let writes = writes.clone();
            async move { writes.over(Instant::now() + HOLD_AT_MOST).await }
        });
        let write = writes.begin();
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(write);
        let ended = Instant::now();
        waiting.await.expect("the waiting task ends");
        assert_eq!(ended.elapsed(), QUIET);
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_waits_no_longer_than_its_hold() {
        let writes = StatusWrites::default();
        let _endless = writes.begin();
        let start = Instant::now();
        writes.over(start + HOLD_AT_MOST).await;
        assert_eq!(start.elapsed(), HOLD_AT_MOST);
    }
}
