//! Which entries a sync leaves out: `.gitignore` and `.coveignore` in every
//! directory, with git's rules.
//!
//! * A pattern in `sub/.gitignore` applies to paths under `sub/` only.
//! * A pattern without a `/` (`*.log`) matches a name at any depth; one with a
//!   `/` at the start or in the middle (`/top.txt`, `src/gen.py`) is anchored
//!   to its ignore file's directory. A trailing `/` matches directories only.
//! * `*` and `?` match within a name, `[a-z]`/`[!0-9]` one character of a
//!   class, `\x` the character `x`; a `**` component matches any number of
//!   directories (`**/cache`, `a/**/b`), a trailing `/**` everything inside.
//! * `!pattern` re-includes; the last matching pattern wins, deeper files'
//!   after shallower ones (`.coveignore` after `.gitignore` in a directory).
//!   A directory left out is not entered, so nothing under it comes back.
//! * `.git`, `__pycache__` and `.venv` are always left out.
//!
//! The Python SDK (`cove/sync.py`) implements the same rules; both are tested
//! against `sdk/python/tests/sync_ignore_cases.json`.

use std::path::Path;

use anyhow::{Context, Result};

/// Names never synced, whatever the patterns say.
pub const ALWAYS_SKIPPED: [&str; 3] = [".git", "__pycache__", ".venv"];
/// Ignore files read in every synced directory, in this order.
pub const IGNORE_FILES: [&str; 2] = [".gitignore", ".coveignore"];

/// One ignore pattern, scoped to the directory of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// The ignore file's directory, relative to the root (`""` at the top).
    base: String,
    /// The pattern's `/`-separated components.
    segments: Vec<String>,
    negated: bool,
    dir_only: bool,
    /// Matched against the path under `base` (else against the name).
    anchored: bool,
}

/// The patterns in force in a directory: its ignore files' and its ancestors'.
#[derive(Debug, Default, Clone)]
pub struct Ignore {
    rules: Vec<Rule>,
}

impl Ignore {
    /// Adds the patterns of `dir/.gitignore` and `dir/.coveignore` (missing ones
    /// are fine), scoped to `rel`, `dir`'s path under the root. Returns how many
    /// rules there were before, for [`Ignore::truncate`] when leaving `dir`.
    pub fn enter(&mut self, dir: &Path, rel: &str) -> Result<usize> {
        let before = self.rules.len();
        for name in IGNORE_FILES {
            let p = dir.join(name);
            match std::fs::read(&p) {
                Ok(b) => self.add(rel, &String::from_utf8_lossy(&b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
            }
        }
        Ok(before)
    }

    /// Drops the rules added since `len` (leaving a directory).
    pub fn truncate(&mut self, len: usize) {
        self.rules.truncate(len);
    }

    /// Adds the patterns of ignore-file `text` found in directory `base`.
    pub fn add(&mut self, base: &str, text: &str) {
        // Lines end at `\n`; trailing spaces, tabs and `\r` are dropped (the SDK does the same).
        for line in text.split('\n') {
            let mut line = line.trim_end_matches([' ', '\t', '\r']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let negated = line.starts_with('!');
            if negated {
                line = &line[1..];
            }
            let dir_only = line.ends_with('/');
            let line = line.trim_end_matches('/');
            let anchored = line.contains('/');
            let segments: Vec<String> = line
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if !segments.is_empty() {
                self.rules.push(Rule {
                    base: base.to_string(),
                    segments,
                    negated,
                    dir_only,
                    anchored,
                });
            }
        }
    }

    /// Whether `rel` (`/`-separated, under the root) is left out.
    pub fn ignored(&self, rel: &str, is_dir: bool) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if ALWAYS_SKIPPED.contains(&name) {
            return true;
        }
        let mut out = false;
        for r in &self.rules {
            if r.dir_only && !is_dir {
                continue;
            }
            let under = if r.base.is_empty() {
                Some(rel)
            } else {
                rel.strip_prefix(r.base.as_str())
                    .and_then(|s| s.strip_prefix('/'))
            };
            let Some(under) = under else { continue };
            let hit = if r.anchored {
                let parts: Vec<&str> = under.split('/').collect();
                match_segments(&r.segments, &parts)
            } else {
                glob(&r.segments[0], name)
            };
            if hit {
                out = !r.negated;
            }
        }
        out
    }
}

/// Pattern components against path components; `**` is any number of them
/// (at least one when it is the last component: "everything inside").
fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            if rest.is_empty() {
                return !path.is_empty();
            }
            (0..=path.len()).any(|i| match_segments(rest, &path[i..]))
        }
        Some((first, rest)) => {
            !path.is_empty() && glob(first, path[0]) && match_segments(rest, &path[1..])
        }
    }
}

/// One token of a name pattern.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
    /// `[...]`: negated, then single characters and ranges.
    Class(bool, Vec<(char, char)>),
}

fn tokens(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => out.push(Token::Star),
            '?' => out.push(Token::Any),
            '\\' if i + 1 < chars.len() => {
                i += 1;
                out.push(Token::Char(chars[i]));
            }
            '[' => match class(&chars, i + 1) {
                Some((tok, end)) => {
                    out.push(tok);
                    i = end;
                }
                None => out.push(Token::Char('[')),
            },
            c => out.push(Token::Char(c)),
        }
        i += 1;
    }
    out
}

/// The class starting after a `[` at `start`, and the index of its `]`
/// (`None`: no closing `]`, the `[` is literal).
fn class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let first = i;
    while i < chars.len() {
        let c = chars[i];
        if c == ']' && i > first {
            return Some((Token::Class(negated, ranges), i));
        }
        if i + 2 < chars.len() && chars[i + 1] == '-' && chars[i + 2] != ']' {
            ranges.push((c, chars[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    None
}

fn token_matches(t: &Token, c: char) -> bool {
    match t {
        Token::Char(p) => *p == c,
        Token::Any => true,
        Token::Star => false,
        Token::Class(neg, ranges) => ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *neg,
    }
}

/// A name against one pattern component (no `/` in either).
fn glob(pattern: &str, name: &str) -> bool {
    let p = tokens(pattern);
    let s: Vec<char> = name.chars().collect();
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == Token::Star {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && token_matches(&p[pi], s[si]) {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|t| *t == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_classes_escapes_and_stars() {
        assert!(glob("*.log", "a.log") && !glob("*.log", "a.log.x"));
        assert!(glob("x?.txt", "x1.txt") && !glob("x?.txt", "x12.txt"));
        assert!(glob("[abc].txt", "b.txt") && !glob("[abc].txt", "d.txt"));
        assert!(glob("f[!0-9]", "fx") && !glob("f[!0-9]", "f5"));
        assert!(glob("f[^0-9]", "fx") && glob("[a-]", "-"));
        assert!(glob("\\#notes", "#notes") && glob("a\\*", "a*") && !glob("a\\*", "ab"));
        assert!(glob("[unclosed", "[unclosed"));
        assert!(glob("**", "anything") && glob("a**b", "axxb"));
        assert!(glob("*é", "café"));
    }

    #[test]
    fn double_star_components() {
        let segs = |p: &str| p.split('/').map(str::to_string).collect::<Vec<_>>();
        let m = |p: &str, s: &str| match_segments(&segs(p), &s.split('/').collect::<Vec<_>>());
        assert!(m("**/cache", "cache") && m("**/cache", "a/b/cache"));
        assert!(m("a/**/b", "a/b") && m("a/**/b", "a/x/y/b") && !m("a/**/b", "b"));
        assert!(m("logs/**", "logs/x") && m("logs/**", "logs/x/y") && !m("logs/**", "logs"));
    }

    #[test]
    fn nested_rules_apply_under_their_directory_and_deeper_ones_win() {
        let mut ig = Ignore::default();
        ig.add("", "*.tmp\n/top\n");
        ig.add("sub", "!keep.tmp\n/only\n");
        assert!(ig.ignored("a.tmp", false) && ig.ignored("sub/a.tmp", false));
        assert!(!ig.ignored("sub/keep.tmp", false) && ig.ignored("keep.tmp", false));
        assert!(ig.ignored("sub/only", false) && !ig.ignored("only", false));
        assert!(!ig.ignored("sub/x/only", false) && !ig.ignored("subway/only", false));
        assert!(ig.ignored("top", true) && !ig.ignored("sub/top", true));
        for d in [".git", "__pycache__", ".venv", "a/__pycache__"] {
            assert!(ig.ignored(d, true), "{d}");
        }
    }
}
