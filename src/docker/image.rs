//! What unroot reads of an image: its own user, and the reference to recreate from.

use serde_json::Value;

use super::{DockerPort, Inspect};

/// An image's own `USER` (`Config.User`, empty for root), when the image is on this daemon.
pub async fn image_user(port: &impl DockerPort, image: &str) -> Option<String> {
    let i = port.inspect_image(image).await.ok()?;
    Some(i.pointer("/Config/User").and_then(Value::as_str).unwrap_or("").to_string())
}

/// The image reference to (re)create a container from: its own tag while that still names
/// the image it runs, else the image's id (the tag moved, or is gone).
pub async fn image_ref(port: &impl DockerPort, c: &Inspect) -> String {
    match port.inspect_image(c.image()).await {
        Ok(img) if img["Id"].as_str() == Some(c.image_id()) => c.image().to_string(),
        _ => c.image_id().to_string(),
    }
}
