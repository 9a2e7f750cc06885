//! `unroot man`: a man page per command. The main page lists the subcommands as
//! `unroot-NAME(1)`, and each of those pages exists: `unroot man NAME` prints it, `unroot man
//! --dir DIR` writes them all (what the Debian package installs).

use std::path::Path;

use clap::CommandFactory;

use super::Cli;
use crate::cli::output::Output;
use crate::error::Error;

/// Every page: `unroot`, then `unroot-NAME` for each subcommand, as (file stem, command).
pub fn pages() -> Vec<(String, clap::Command)> {
    let main = Cli::command();
    let mut out = vec![("unroot".to_string(), main.clone())];
    for sub in main.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("unroot-{}", sub.get_name());
        // clap names a command with a 'static str: the few page names live as long as unroot.
        let title: &'static str = Box::leak(name.clone().into_boxed_str());
        let page = sub.clone().name(title).display_name(title).bin_name(format!("unroot {}", sub.get_name()));
        out.push((name, page));
    }
    out
}

/// The roff of one page.
pub fn render(cmd: clap::Command) -> Vec<u8> {
    let mut buf = Vec::new();
    // Rendering into memory cannot fail but for a bug in clap_mangen.
    clap_mangen::Man::new(cmd).render(&mut buf).expect("a man page renders");
    buf
}

/// `unroot man [SUBCOMMAND] [--dir DIR]`.
///
/// Errors: an unknown subcommand ([`Error::Usage`]); DIR cannot be written.
pub fn man(out: &Output, subcommand: Option<&str>, dir: Option<&Path>) -> Result<(), Error> {
    let pages = pages();
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("cannot create {}", dir.display())))?;
        for (name, cmd) in pages {
            let path = dir.join(format!("{name}.1"));
            std::fs::write(&path, render(cmd)).map_err(Error::io(format!("cannot write {}", path.display())))?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(());
    }
    let wanted = subcommand.map_or("unroot".to_string(), |s| format!("unroot-{s}"));
    let (_, cmd) = pages.into_iter().find(|(name, _)| *name == wanted).ok_or_else(|| {
        Error::Usage(format!("`{}` is not a subcommand; `unroot --help` lists them", subcommand.unwrap_or_default()))
    })?;
    out.json(false).man(&render(cmd));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_the_main_page_names_is_made() {
        let pages = pages();
        let main = String::from_utf8(render(pages[0].1.clone())).unwrap();
        for (name, cmd) in &pages[1..] {
            assert!(main.contains(&format!("{}(1)", name.replace('-', "\\-"))), "{name} named in the main page");
            let page = String::from_utf8(render(cmd.clone())).unwrap();
            assert!(page.contains(&format!(".TH {name} 1")), "{name}'s page: {page}");
        }
        assert!(pages.iter().any(|(n, _)| n == "unroot-apply"));
    }
}
