//! Events are handed over, not awaited: a reconcile queues them and one task publishes them in
//! order, as client-go's event broadcaster does. A relabel that reaches many data centres so
//! writes every status before the Events that explain it, instead of one status and its Events
//! after the other. Events are best effort: a full queue drops one with a warning in the log.

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
    /// dropped and the queue is empty.
    pub fn start(writer: Writer, recorder: Recorder) -> (Self, JoinHandle<()>) {
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
        (Self { queue }, task)
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

fn describe(regarding: &ObjectReference) -> String {
    format!(
        "{}/{}",
        regarding.namespace.as_deref().unwrap_or_default(),
        regarding.name.as_deref().unwrap_or_default()
    )
}
