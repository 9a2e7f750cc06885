//! The refusal before a restore changes anything (exit 2): a name held by a container that
//! is not the run's, or a Swarm service someone else changed since unroot's last write.

use super::*;

/// Whether a restore may write over what others changed since unroot (`rollback --force`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse, naming what changed.
    Refuse,
    /// The operator asked for the originals anyway.
    Anyway,
}

/// Refuses (exit 2, nothing changed) when a service to restore has its name held by a
/// container that is neither its original nor this run's replacement or its successor, or
/// (unless `overwrite` says otherwise) is a Swarm service someone else changed since
/// unroot's last write to it.
pub(super) async fn refuse_foreign_holders(
    port: &(impl DockerPort + SwarmPort),
    view: &RunView,
    services: &[String],
    overwrite: Overwrite,
) -> Result<(), Error> {
    let ctx_dir = view.run_dir();
    let mut foreign = Vec::new();
    for name in services {
        let original = match crate::engine::load_original(&ctx_dir, name)? {
            None => continue,
            Some(Original::Service(service)) => {
                if overwrite == Overwrite::Refuse
                    && let Some(why) = foreign_service_change(port, view, name, service).await?
                {
                    foreign.push(why);
                }
                continue;
            }
            Some(Original::Container(c)) => c,
        };
        let expected = view.expected_user(name);
        match inspect_named(port, name).await {
            Ok(c) if classify_holder(&c, &original, &view.id, expected.as_deref()) == Holder::Foreign => {
                foreign.push(foreign_holder_message(name, &c));
            }
            Ok(_) | Err(DockerError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if foreign.is_empty() { Ok(()) } else { Err(Error::NameTaken(foreign.join("\n"))) }
}

/// What someone else changed in Swarm service `name` since run `view` last wrote it, as a
/// message for the refusal: its fields, or that it was removed and deployed again under its
/// name; `None` when it is as unroot left it, or gone (the restore recreates it).
async fn foreign_service_change(
    port: &impl SwarmPort,
    view: &RunView,
    name: &str,
    original: ServiceInspect,
) -> Result<Option<String>, Error> {
    let now = match port.inspect_service(original.id()).await {
        Ok(now) => now,
        Err(DockerError::NotFound(_)) => {
            return match crate::docker::swarm::inspect_service_named(port, name).await {
                Ok(other) => Ok(Some(format!(
                    "{name}: the Swarm service was removed and deployed again since unroot's last write to it (now {}); restoring would overwrite it. `unroot rollback {} --service {name} --force` puts the original back anyway",
                    other.id().chars().take(12).collect::<String>(),
                    view.id
                ))),
                Err(DockerError::NotFound(_)) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    let planned = view.run_dir().load_planned_spec(name)?;
    let Some(fields) =
        crate::engine::swarm::steps::foreign_change(original.spec(), planned.as_ref(), now.spec(), &view.id)
    else {
        return Ok(None);
    };
    Ok(Some(format!(
        "{name}: the Swarm service changed since unroot's last write to it (version {}): {}; restoring would overwrite that. `unroot rollback {} --service {name} --force` puts the original back anyway",
        now.version(),
        fields.join("; "),
        view.id
    )))
}
