//! Events are handed over, not awaited: a reconcile queues them and one task publishes them in
//! order, as client-go's event broadcaster does. A relabel that reaches many data centres so
//! writes every status before the Events that explain it, instead of one status and its Events
//! after the other. Events are best effort: a full queue drops one with a warning in the log.

use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use super::Writer;

/// Events waiting to be published; a burst of a thousand data centres turning Violated at once
/// fits.
const QUEUE: usize = 4096;

/// The reconciles' end of the queue.
pub struct Announcer {
    queue: mpsc::Sender<(Event, ObjectReference)>,
}

impl Announcer {
    /// Starts the task that publishes what is announced; it ends once every `Announcer` is
    /// dropped and the queue is empty, or when its `Publisher` is dropped.
    pub fn start(writer: Writer, recorder: Recorder) -> (Self, Publisher) {
        let (queue, mut queued) = mpsc::channel::<(Event, ObjectReference)>(QUEUE);
        let task = tokio::spawn(async move {
            while let Some((event, regarding)) = queued.recv().await {
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
        let (why, (event, regarding)) = match self.queue.try_send((event, regarding)) {
            Ok(()) => return,
            Err(TrySendError::Full(queued)) => ("as many are waiting as the queue holds", queued),
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
