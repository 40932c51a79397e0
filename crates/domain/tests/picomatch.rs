//! Differential test of scope globs against picomatch, the matcher
//! Infisical uses: over a generated corpus of glob/path pairs (stars,
//! globstars, `?`, classes, negated classes, ranges, braces, escapes, dots
//! and literal metacharacters), every disagreement must be one of the two
//! deviations DESIGN.md documents: a glob ending in `/**` also matches its
//! root, and hidden (dot) folders are ordinary folders.
//!
//! picomatch comes from `tests/glob` (`make tools` runs `npm ci` there).

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use latchkey_domain::path::SecretPath;
use latchkey_domain::scope::PathGlob;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Pairs the comparison must cover at least.
const MIN_PAIRS: usize = 40_000;

/// Pieces of a glob segment.
const GLOB_PIECES: &[&str] = &[
    "a", "b", "ab", "x1", ".", ".h", "-", "_", "a.b", "+", "@", "!", "$", "^", "=", "~", "%", ",",
    "*", "*", "?", "[ab]", "[^a]", "[^b]", "[a-c]", "[^a-c]", "[.a]", "[a!]", "[a+]", "[a-]",
    "{a,b}", "{a*,b}", "{x,b?}", "{.h,a}", "\\*", "\\?", "\\[", "\\{", "\\,", "\\a",
];

/// Pieces of a path segment: names, and the same metacharacters as text.
const PATH_PIECES: &[&str] = &[
    "a", "b", "ab", "abc", "x1", "x", "c", "1", "2", ".h", ".a", ".", "a.b", "-", "_", "+", "@",
    "!", "$", "^", "=", "~", "%", ",", "*", "?", "[", "]", "{", "}", "a,b", "{a,b}", "[ab]",
    "[a!]",
];

fn glob_segment(rng: &mut StdRng) -> String {
    if rng.gen_ratio(1, 6) {
        return "**".to_owned();
    }
    (0..rng.gen_range(1..=3))
        .map(|_| GLOB_PIECES[rng.gen_range(0..GLOB_PIECES.len())])
        .collect()
}

fn path_segment(rng: &mut StdRng) -> String {
    let s: String = (0..rng.gen_range(1..=3))
        .map(|_| PATH_PIECES[rng.gen_range(0..PATH_PIECES.len())])
        .collect();
    // Normalised paths hold no "." or ".." segment.
    if s == "." || s == ".." {
        "a".to_owned()
    } else {
        s
    }
}

/// A path shaped like `glob`: wildcards replaced by likely matches, so
/// that a good share of pairs match and the interesting cases get tested.
fn path_like(glob: &str, rng: &mut StdRng) -> String {
    let mut segments = Vec::new();
    for g in glob.split('/').filter(|s| !s.is_empty()) {
        if g == "**" {
            for _ in 0..rng.gen_range(0..=2) {
                segments.push(path_segment(rng));
            }
            continue;
        }
        let mut s = String::new();
        let mut chars = g.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if rng.gen_bool(0.5) {
                        s.push_str(&path_segment(rng));
                    }
                }
                '?' => s.push(['a', 'b', '.', 'x'][rng.gen_range(0..4)]),
                '\\' => s.extend(chars.next()),
                '[' => {
                    let class: String = chars.by_ref().take_while(|c| *c != ']').collect();
                    s.push(class.chars().last().unwrap_or('a'));
                }
                '{' => {
                    let alts: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    let choice = alts.split(',').nth(rng.gen_range(0..2)).unwrap_or("a");
                    s.push_str(&choice.replace(['*', '?'], "a"));
                }
                other => s.push(other),
            }
        }
        if s.is_empty() || s == "." || s == ".." {
            s = "a".to_owned();
        }
        segments.push(s);
    }
    format!("/{}", segments.join("/"))
}

fn random_path(rng: &mut StdRng) -> String {
    let depth = rng.gen_range(0..=4);
    let segments: Vec<String> = (0..depth).map(|_| path_segment(rng)).collect();
    format!("/{}", segments.join("/"))
}

/// picomatch's answers, (defaults, dot: true), for each pair.
fn picomatch(pairs: &[(String, String)]) -> Vec<(bool, bool)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/glob");
    assert!(
        dir.join("node_modules/picomatch").exists(),
        "picomatch is not installed in {}: run `make tools` (make test does)",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg(dir.join("picomatch.js"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run node");
    let input: String = pairs.iter().map(|(g, p)| format!("{g}\t{p}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "node failed");
    let answers: Vec<(bool, bool)> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (plain, dot) = l.split_once(' ').unwrap();
            assert!(
                plain != "E" && dot != "E",
                "picomatch threw on a glob Latchkey accepts"
            );
            (plain == "1", dot == "1")
        })
        .collect();
    assert_eq!(answers.len(), pairs.len());
    answers
}

/// The roots a glob's trailing `/**` segments stand for (`/a/**/**` gives
/// `/a/**` and `/a`).
fn roots(glob: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut g = glob;
    while let Some(root) = g.strip_suffix("/**") {
        g = if root.is_empty() { "/" } else { root };
        out.push(g.to_owned());
    }
    out
}

#[test]
fn scope_globs_agree_with_picomatch_but_for_the_two_documented_deviations() {
    let mut rng = StdRng::seed_from_u64(0x01a7_c4e7);
    let mut pairs = Vec::new();
    let mut refused = 0;
    while pairs.len() < MIN_PAIRS {
        let depth = rng.gen_range(0..=4);
        let glob = format!(
            "/{}",
            (0..depth)
                .map(|_| glob_segment(&mut rng))
                .collect::<Vec<_>>()
                .join("/")
        );
        if PathGlob::parse(&glob).is_err() {
            refused += 1;
            continue;
        }
        for _ in 0..6 {
            pairs.push((glob.clone(), path_like(&glob, &mut rng)));
        }
        for _ in 0..4 {
            pairs.push((glob.clone(), random_path(&mut rng)));
        }
    }
    // The root of each `/**` glob, asked of picomatch to classify disagreements.
    let root_pairs: Vec<(String, String)> = pairs
        .iter()
        .flat_map(|(g, p)| roots(g).into_iter().map(|r| (r, p.clone())))
        .collect();
    let answers = picomatch(&pairs);
    let root_answers = picomatch(&root_pairs);
    let root_matches: std::collections::HashSet<(&str, &str)> = root_pairs
        .iter()
        .zip(&root_answers)
        .filter(|(_, (_, dot))| *dot)
        .map(|((g, p), _)| (g.as_str(), p.as_str()))
        .collect();

    let (mut matched, mut dot_deviations, mut root_deviations) = (0, 0, 0);
    let mut unexplained = Vec::new();
    for ((glob, path), (plain, dot)) in pairs.iter().zip(&answers) {
        let ours = PathGlob::parse(glob)
            .unwrap()
            .matches(&SecretPath::parse(path).unwrap_or_else(|e| panic!("{path:?}: {e:?}")));
        matched += usize::from(ours);
        if ours == *plain {
            continue;
        }
        if ours == *dot {
            dot_deviations += 1;
        } else if ours
            && roots(glob)
                .iter()
                .any(|r| root_matches.contains(&(r.as_str(), path.as_str())))
        {
            root_deviations += 1;
        } else {
            unexplained.push(format!(
                "{glob} vs {path}: latchkey {ours}, picomatch {plain} (dot: {dot})"
            ));
        }
    }

    eprintln!(
        "{} pairs ({matched} matching), {refused} globs refused; deviations: {dot_deviations} dot folders, {root_deviations} /** roots",
        pairs.len()
    );
    assert!(
        matched > pairs.len() / 10,
        "too few matching pairs to be telling"
    );
    assert!(
        dot_deviations > 0 && root_deviations > 0,
        "the corpus exercises both deviations"
    );
    assert!(
        unexplained.is_empty(),
        "{} unexplained disagreements, e.g.:\n{}",
        unexplained.len(),
        unexplained
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
