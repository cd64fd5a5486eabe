//! `feedwatch feed add|remove|list`: the feeds in `config.toml`, edited in place.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;

use super::output::{UsageError, fit, print_json, width};
use super::probe::{Probe, existing, is_remote, probe, typed_url, unique_name};
use feedwatch::config::Config;
use feedwatch::config::edit::{ConfigDoc, NewFeed};
use feedwatch::fetch::Fetcher;

pub struct AddArgs {
    pub url: String,
    pub name: Option<String>,
    pub interval: Option<String>,
    pub tags: Vec<String>,
    /// Whether a page's feed link may be a local file.
    pub allow_local: bool,
}

pub async fn add(path: &Path, args: AddArgs) -> Result<ExitCode> {
    // The first `feed add` may create the config; one that exists must be valid.
    let config = if path.exists() {
        Config::load(path)?
    } else {
        Config::empty(path)
    };
    let mut url = typed_url(&args.url)?;
    refuse_duplicate(&config, &url)?;
    let fetcher = Fetcher::new(std::time::Duration::from_secs(30));
    let mut found = probe(&fetcher, &url, true).await?;
    if let Probe::Page(links) = &found {
        if let [only] = links.as_slice() {
            if !args.allow_local && !is_remote(&only.url) {
                return Err(UsageError(format!(
                    "{url} is a web page whose feed link {} is not an http(s) address; \
                     a page's link is followed to a local file only with --allow-local",
                    only.url
                ))
                .into());
            }
            println!("{url} is a web page; its feed is {}", only.url);
            url = only.url.clone();
            refuse_duplicate(&config, &url)?;
            found = probe(&fetcher, &url, false).await?;
        } else {
            let list: Vec<String> = links
                .iter()
                .map(|l| format!("  {}  ({}{})", l.url, l.kind, title_suffix(&l.title)))
                .collect();
            return Err(UsageError(format!(
                "{url} is a web page that links to {} feeds; add the one you want:\n{}",
                links.len(),
                list.join("\n")
            ))
            .into());
        }
    }
    let Probe::Feed(summary) = found else {
        anyhow::bail!("{url}: a page that only links to another page, not to a feed");
    };
    let taken: Vec<String> = config.feeds.iter().map(|f| f.name.clone()).collect();
    let name = match args.name {
        Some(name) if taken.contains(&name) => {
            return Err(UsageError(format!(
                "a feed named `{name}` is already in {}; choose another --name",
                path.display()
            ))
            .into());
        }
        Some(name) => name,
        None => unique_name(&summary.title, &url, &taken),
    };
    let mut doc = load_doc(path)?;
    doc.add_feeds(&[NewFeed {
        url: url.clone(),
        name: name.clone(),
        interval: args.interval,
        tags: args.tags,
    }])?;
    save(path, &doc)?;
    println!(
        "added `{name}`: {} — {} item(s) now\n  {url}",
        if summary.title.is_empty() {
            "(untitled)"
        } else {
            &summary.title
        },
        summary.items
    );
    Ok(ExitCode::SUCCESS)
}

pub fn remove(path: &Path, wanted: &str) -> Result<ExitCode> {
    let config = Config::load(path)?;
    // The URL may be given as the config resolves it (e.g. with a trailing slash).
    let resolved = typed_url(wanted).ok();
    let target = config
        .feeds
        .iter()
        .find(|f| f.name == wanted || Some(&f.url) == resolved.as_ref());
    let written = target.map_or(wanted, |f| f.name.as_str());
    let mut doc = load_doc(path)?;
    let removed = doc
        .remove_feed(written)
        .or_else(|_| doc.remove_feed(wanted))
        .map_err(|e| UsageError(e.to_string()))?;
    let unlinked = match target {
        Some(feed) => doc
            .unlink_feed_from_rules(&feed.name)
            .map_err(|e| UsageError(e.to_string()))?,
        None => Vec::new(),
    };
    save(path, &doc)?;
    println!(
        "removed `{}` ({}); its stored articles are kept",
        removed.name.as_deref().unwrap_or(&removed.url),
        removed.url
    );
    for rule in unlinked {
        println!("rule `{rule}` no longer lists it in `feeds`");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(path: &Path, as_json: bool) -> Result<ExitCode> {
    let config = Config::load(path)?;
    if as_json {
        let feeds: Vec<_> = config
            .feeds
            .iter()
            .map(|f| {
                json!({
                    "name": f.name,
                    "url": f.url,
                    "schedule": f.schedule.to_string(),
                    "tags": f.tags,
                })
            })
            .collect();
        print_json(&json!(feeds))?;
        return Ok(ExitCode::SUCCESS);
    }
    if config.feeds.is_empty() {
        println!("no feeds in {}", path.display());
    }
    let name_width = config
        .feeds
        .iter()
        .map(|f| f.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(30);
    let width = width();
    for f in &config.feeds {
        let tags = if f.tags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", f.tags.join(", "))
        };
        let line = format!(
            "{:<name_width$}  {}  ({}){tags}",
            fit(&f.name, name_width),
            f.url,
            f.schedule
        );
        println!("{}", fit(&line, width));
    }
    Ok(ExitCode::SUCCESS)
}

fn title_suffix(title: &Option<String>) -> String {
    title.as_ref().map(|t| format!(": {t}")).unwrap_or_default()
}

fn refuse_duplicate(config: &Config, url: &str) -> Result<()> {
    match existing(config, url) {
        Some(feed) => {
            Err(UsageError(format!("{url} is already in the config as `{}`", feed.name)).into())
        }
        None => Ok(()),
    }
}

pub fn load_doc(path: &Path) -> Result<ConfigDoc> {
    let text = if path.exists() {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?
    } else {
        String::new()
    };
    Ok(ConfigDoc::parse(&text, &path.display().to_string())?)
}

/// Writes the edited config if it is still valid, replacing the file in one step so that a
/// daemon reloading it never reads half a file.
pub fn save(path: &Path, doc: &ConfigDoc) -> Result<()> {
    let text = doc.to_string();
    Config::parse(&text, path)
        .context("the edited config would not be valid; nothing was written")?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.toml".into());
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create the folder for {}", path.display()))?;
    }
    let temp = path.with_file_name(format!(".{file_name}.feedwatch-new"));
    std::fs::write(&temp, text).with_context(|| format!("cannot write {}", temp.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        // Keep a private config private.
        std::fs::set_permissions(&temp, meta.permissions()).ok();
    }
    if let Err(e) = std::fs::rename(&temp, path) {
        std::fs::remove_file(&temp).ok();
        return Err(e).with_context(|| format!("cannot replace config file {}", path.display()));
    }
    Ok(())
}
