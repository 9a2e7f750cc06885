//! A [`DockerPort`] decorator that adds up the time spent waiting on Docker: every call, and
//! every wait on an event stream. The day's wall time minus this is unroot's own overhead.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::Stream;
use serde_json::Value;

use super::swarm::{NodeRef, ServiceInspect, ServiceRef, SwarmMembership, SwarmPort, TaskRef};
use super::{
    ContainerEvent, ContainerRef, DaemonInfo, DockerError, DockerPort, EventStream, Finished, Inspect, Process, Removal,
};

/// Wraps a port and counts the nanoseconds spent in it.
pub struct Timed<P> {
    inner: P,
    nanos: Arc<AtomicU64>,
}

impl<P: DockerPort> Timed<P> {
    pub fn new(inner: P) -> Timed<P> {
        Timed { inner, nanos: Arc::new(AtomicU64::new(0)) }
    }

    /// The counter of nanoseconds spent in Docker (summed over concurrent calls).
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.nanos.clone()
    }

    async fn time<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let out = f.await;
        self.nanos.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        out
    }
}

/// An event stream whose waits are counted.
struct TimedStream {
    inner: EventStream,
    nanos: Arc<AtomicU64>,
    waiting_since: Option<Instant>,
}

impl Stream for TimedStream {
    type Item = Result<ContainerEvent, DockerError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            ready => {
                self.nanos.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
                self.waiting_since = None;
                ready
            }
        }
    }
}

impl<P: DockerPort> DockerPort for Timed<P> {
    fn daemon(&self) -> &DaemonInfo {
        self.inner.daemon()
    }
    async fn ping(&self) -> Result<(), DockerError> {
        self.time(self.inner.ping()).await
    }
    async fn list_containers(&self) -> Result<Vec<ContainerRef>, DockerError> {
        self.time(self.inner.list_containers()).await
    }
    async fn inspect_container(&self, id: &str) -> Result<Inspect, DockerError> {
        self.time(self.inner.inspect_container(id)).await
    }
    async fn top(&self, id: &str) -> Result<Vec<Process>, DockerError> {
        self.time(self.inner.top(id)).await
    }
    async fn read_archive(&self, id: &str, path: &str, limit: usize) -> Result<Vec<u8>, DockerError> {
        self.time(self.inner.read_archive(id, path, limit)).await
    }
    async fn upload_archive(&self, id: &str, path: &str, tar: Vec<u8>) -> Result<(), DockerError> {
        self.time(self.inner.upload_archive(id, path, tar)).await
    }
    async fn inspect_image(&self, name: &str) -> Result<Value, DockerError> {
        self.time(self.inner.inspect_image(name)).await
    }
    async fn create_container(&self, name: &str, body: Value) -> Result<String, DockerError> {
        self.time(self.inner.create_container(name, body)).await
    }
    async fn start_container(&self, id: &str) -> Result<(), DockerError> {
        self.time(self.inner.start_container(id)).await
    }
    async fn stop_container(&self, id: &str, timeout_secs: u64) -> Result<(), DockerError> {
        self.time(self.inner.stop_container(id, timeout_secs)).await
    }
    async fn rename_container(&self, id: &str, new_name: &str) -> Result<(), DockerError> {
        self.time(self.inner.rename_container(id, new_name)).await
    }
    async fn set_restart_policy(&self, id: &str, policy: Value) -> Result<(), DockerError> {
        self.time(self.inner.set_restart_policy(id, policy)).await
    }
    async fn remove_container(&self, id: &str, what: Removal) -> Result<(), DockerError> {
        self.time(self.inner.remove_container(id, what)).await
    }
    async fn connect_network(&self, network: &str, id: &str, endpoint: Value) -> Result<(), DockerError> {
        self.time(self.inner.connect_network(network, id, endpoint)).await
    }
    async fn container_events(&self, id: &str) -> Result<EventStream, DockerError> {
        let inner = self.time(self.inner.container_events(id)).await?;
        Ok(Box::pin(TimedStream { inner, nanos: self.nanos.clone(), waiting_since: None }))
    }
    async fn exec(&self, id: &str, cmd: &[String], limit: std::time::Duration) -> Result<Finished, DockerError> {
        self.time(self.inner.exec(id, cmd, limit)).await
    }
    async fn wait_container(&self, id: &str) -> Result<Finished, DockerError> {
        self.time(self.inner.wait_container(id)).await
    }
    async fn logs(&self, id: &str, lines: usize) -> Result<Vec<u8>, DockerError> {
        self.time(self.inner.logs(id, lines)).await
    }
    async fn changes(&self, id: &str) -> Result<Vec<String>, DockerError> {
        self.time(self.inner.changes(id)).await
    }
}

impl<P: DockerPort + SwarmPort> SwarmPort for Timed<P> {
    async fn membership(&self) -> Result<SwarmMembership, DockerError> {
        self.time(self.inner.membership()).await
    }
    async fn list_services(&self) -> Result<Vec<ServiceRef>, DockerError> {
        self.time(self.inner.list_services()).await
    }
    async fn inspect_service(&self, id: &str) -> Result<ServiceInspect, DockerError> {
        self.time(self.inner.inspect_service(id)).await
    }
    async fn update_service(&self, id: &str, version: u64, spec: Value) -> Result<(), DockerError> {
        self.time(self.inner.update_service(id, version, spec)).await
    }
    async fn create_service(&self, spec: Value) -> Result<String, DockerError> {
        self.time(self.inner.create_service(spec)).await
    }
    async fn remove_service(&self, id: &str) -> Result<(), DockerError> {
        self.time(self.inner.remove_service(id)).await
    }
    async fn list_tasks(&self, service_id: &str) -> Result<Vec<TaskRef>, DockerError> {
        self.time(self.inner.list_tasks(service_id)).await
    }
    async fn list_nodes(&self) -> Result<Vec<NodeRef>, DockerError> {
        self.time(self.inner.list_nodes()).await
    }
    async fn task_logs(&self, task_id: &str) -> Result<Finished, DockerError> {
        self.time(self.inner.task_logs(task_id)).await
    }
    async fn create_config(
        &self,
        name: &str,
        labels: std::collections::BTreeMap<String, String>,
        data: &[u8],
    ) -> Result<String, DockerError> {
        self.time(self.inner.create_config(name, labels, data)).await
    }
    async fn remove_config(&self, id: &str) -> Result<(), DockerError> {
        self.time(self.inner.remove_config(id)).await
    }
    async fn list_objects(
        &self,
        kind: super::swarm::ObjectKind,
    ) -> Result<Vec<super::swarm::SwarmObject>, DockerError> {
        self.time(self.inner.list_objects(kind)).await
    }
}
