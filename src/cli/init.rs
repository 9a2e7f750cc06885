//! `unroot init`: the profiles in force, the plan decided through the port, checked, and
//! written where the operator asked (never over an existing file without --force).

use std::path::PathBuf;

use crate::docker::DockerPort;
use crate::engine::init;
use crate::error::Error;
use crate::model::plan::Plan;
use crate::model::profiles::Profiles;

use super::Ended;
use super::output::Output;

/// Options of `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub out: Option<PathBuf>,
    pub force: bool,
    pub profiles: Option<PathBuf>,
    pub name: Option<String>,
    pub json: bool,
    pub filters: Vec<crate::engine::audit::Filter>,
}

/// The built-in profiles extended by `--profiles`.
///
/// Errors: the file cannot be read or does not parse (exit 2).
pub fn profiles(file: Option<&std::path::Path>) -> Result<Profiles, Error> {
    let mut profiles = Profiles::builtin();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(Error::io(format!("cannot read {}", path.display())))?;
        profiles.extend(Profiles::parse(&path.display().to_string(), &text)?);
    }
    Ok(profiles)
}

/// What `init` checks before it asks the daemon anything: an existing --out without
/// --force, and the profiles file. Returns the profiles in force.
///
/// Errors: either of those (exit 2); nothing is written.
pub fn prepare(opts: &InitOptions) -> Result<Profiles, Error> {
    if let Some(out) = opts.out.as_ref().filter(|o| !opts.force && std::fs::symlink_metadata(o).is_ok()) {
        return Err(Error::Usage(format!("{} exists; nothing was written (--force overwrites it)", out.display())));
    }
    profiles(opts.profiles.as_deref())
}

/// Runs `init` with the profiles [`prepare`] returned, its output to `out`.
///
/// Errors: an unreachable daemon; a generated plan that does not pass `check` is a bug and
/// says so. Nothing is written then.
pub async fn init(
    port: &impl DockerPort,
    profiles: &Profiles,
    opts: &InitOptions,
    out: &Output,
) -> Result<Ended, Error> {
    let plan = init::run(port, profiles, &opts.filters, opts.name.as_deref()).await?;
    if !plan.services.iter().any(|d| d.placement != init::Placement::Unplaced) {
        out.json(opts.json).init_nothing(&plan);
        return Ok(Ended::Done);
    }
    let text = init::toml(&plan);
    if let Err(e) = Plan::parse("the generated plan", &text) {
        return Err(Error::Usage(format!(
            "the plan init wrote does not pass check (a bug in unroot; please report it): {e}"
        )));
    }
    if let Some(out) = &opts.out {
        super::write_out(out, &text, opts.force)?;
    }
    out.json(opts.json).init(&plan, &text, opts.out.as_deref());
    Ok(Ended::Done)
}
