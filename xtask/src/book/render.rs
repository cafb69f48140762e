//! `cargo xtask book --render`: every page of the built book opened in headless
//! Chromium, in a light theme and a dark one, and checked: the page loads, the theme is
//! the one asked for, and every picture on it loaded (a picture that is missing, or an
//! SVG the browser cannot read, has no width). Book: "How this kit is built".
//!
//! The browser is told what to do by a small script added to a copy of each page: it
//! sets mdBook's theme before the page reads it, and after the load writes what it
//! found into an attribute that `--dump-dom` prints.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use regex::Regex;

/// The browser: Debian's `chromium-headless-shell` (or a full Chromium).
const BROWSERS: [&str; 2] = ["chromium-headless-shell", "chromium"];

/// mdBook's light theme and one of its dark ones.
const THEMES: [&str; 2] = ["light", "navy"];

/// What a page says about itself once loaded.
#[derive(Debug, PartialEq, Eq)]
pub struct Rendered {
    pub theme: String,
    pub pictures: usize,
    pub loaded: usize,
}

pub fn check(build: &Path) -> Result<()> {
    let browser = BROWSERS.iter().find(|name| found(name)).context(
        "no headless Chromium to render the book with: apt-get install \
             chromium-headless-shell",
    )?;
    sees_a_missing_picture(browser)?;
    let pages = html_pages(build)?;
    let mut problems = Vec::new();
    let mut pictures = 0;
    for theme in THEMES {
        let copy = tempfile::Builder::new().prefix("byoc-render-").tempdir()?;
        copy_tree(build, copy.path())?;
        for page in &pages {
            let path = copy.path().join(page);
            let text = fs::read_to_string(&path)?;
            fs::write(&path, with_probe(&text, theme))?;
            match open(browser, &path).and_then(|dom| read_probe(&dom)) {
                Ok(rendered) => {
                    pictures += rendered.pictures;
                    problems.extend(judge(page, theme, &rendered));
                }
                Err(error) => problems.push(format!("{}: {error:#}", page.display())),
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} problems rendering the book:\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    println!(
        "rendered {} pages in {} and {} themes with headless Chromium: {} pictures, all \
         loaded",
        pages.len(),
        THEMES[0],
        THEMES[1],
        pictures
    );
    Ok(())
}

/// Before the book: a page with one picture that loads and one that is missing must be
/// seen as such, or the check would pass anything.
fn sees_a_missing_picture(browser: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let good = r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>"#;
    fs::write(dir.path().join("good.svg"), good)?;
    let page = r#"<html class="light"><head></head><body><img src="good.svg"><img src="gone.svg"></body></html>"#;
    let path = dir.path().join("page.html");
    fs::write(&path, with_probe(page, "light"))?;
    let rendered = read_probe(&open(browser, &path)?)?;
    if (rendered.loaded, rendered.pictures) != (1, 2) {
        bail!(
            "{browser} saw {} of 2 pictures load on a page where one is missing: the \
             render check cannot tell, so it would pass anything",
            rendered.loaded
        );
    }
    Ok(())
}

/// What is wrong with a page that rendered as `rendered`, asked for `theme`.
pub fn judge(page: &Path, theme: &str, rendered: &Rendered) -> Vec<String> {
    let mut problems = Vec::new();
    if rendered.theme != theme {
        problems.push(format!(
            "{}: rendered in the {} theme, not {theme}",
            page.display(),
            rendered.theme
        ));
    }
    if rendered.loaded != rendered.pictures {
        problems.push(format!(
            "{} ({theme}): {} of its {} pictures did not load",
            page.display(),
            rendered.pictures - rendered.loaded,
            rendered.pictures
        ));
    }
    problems
}

/// The page with the probe: the theme set before mdBook reads it, and after the load,
/// what was found written into `data-probe` on the body.
pub fn with_probe(page: &str, theme: &str) -> String {
    let set_theme =
        format!("<script>try {{ localStorage.setItem('mdbook-theme', '{theme}'); }} catch (e) {{}}</script>");
    let probe = "<script>window.addEventListener('load', function () {\
        var all = Array.from(document.images);\
        var loaded = all.filter(function (i) { return i.complete && i.naturalWidth > 0; });\
        var theme = ['light', 'rust', 'coal', 'navy', 'ayu'].find(function (t) {\
            return document.documentElement.classList.contains(t); }) || 'none';\
        document.body.setAttribute('data-probe', theme + ' ' + loaded.length + ' ' + all.length);\
        });</script>";
    page.replacen("<head>", &format!("<head>{set_theme}"), 1)
        .replacen("</body>", &format!("{probe}</body>"), 1)
}

/// What the probe wrote, from the page's DOM.
pub fn read_probe(dom: &str) -> Result<Rendered> {
    let probe = Regex::new(r#"data-probe="(\w+) (\d+) (\d+)""#)?;
    let found = probe
        .captures(dom)
        .context("the page did not finish loading (no probe in its DOM)")?;
    Ok(Rendered {
        theme: found[1].to_string(),
        loaded: found[2].parse()?,
        pictures: found[3].parse()?,
    })
}

/// The page's DOM once loaded and its scripts have run.
fn open(browser: &str, page: &Path) -> Result<String> {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .with_context(|| format!("cannot start {browser}"))?;
    if !out.status.success() {
        bail!(
            "{browser} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The book's pages, relative to the build: every `.html` but mdBook's own (the print
/// page repeats every other, the table of contents and 404 are its frame).
fn html_pages(build: &Path) -> Result<Vec<PathBuf>> {
    let mut pages = Vec::new();
    let mut pending = vec![build.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "html") {
                let relative = path.strip_prefix(build)?.to_path_buf();
                let own = ["print.html", "toc.html", "404.html"];
                if !own.iter().any(|name| relative == Path::new(name)) {
                    pages.push(relative);
                }
            }
        }
    }
    pages.sort();
    Ok(pages)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn found(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|out| out.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_read_back_and_judged() {
        let page = "<html><head><title>t</title></head><body>x</body></html>";
        let probed = with_probe(page, "navy");
        assert!(probed.contains("localStorage.setItem('mdbook-theme', 'navy')"));
        assert!(probed.contains("data-probe"));
        let dom = r#"<body data-probe="navy 2 3">"#;
        let rendered = read_probe(dom).unwrap();
        assert_eq!(
            rendered,
            Rendered {
                theme: "navy".to_string(),
                loaded: 2,
                pictures: 3
            }
        );
        let problems = judge(Path::new("ch09/layout.html"), "light", &rendered);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(read_probe("<body>").is_err());
    }
}
