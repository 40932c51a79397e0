//! The folder-glob matcher behind [`crate::scope::PathGlob`].
//!
//! A glob is matched folder by folder: the normalised glob and path are each
//! split at `/`, and every glob segment but `**` must match exactly one path
//! segment. So no wildcard, class, brace alternative or escape can ever match
//! `/`, and `**` (a whole segment) matches any run of folders, none
//! included, which is the rule "a glob ending in `/**` also matches its
//! root", applied to the parsed pattern.
//!
//! As in picomatch, a glob that *starts* with `**` and goes on (`/**/config`)
//! needs at least one folder before the rest (`/x/config`, not `/config`):
//! the leading run of `**` reads as `*/**`.
//!
//! Inside a segment: `*` any run of characters (`**` inside a segment is `*`,
//! as in picomatch), `?` one character, `[abc]`, `[a-z]` and `[^a]` classes,
//! `{a,b}` alternatives of such patterns, `\x` a literal `x`. Constructs
//! whose picomatch meaning Latchkey does not reproduce are refused rather
//! than read another way: `[!a]` (a class of `!` and `a` to picomatch, a
//! negation to shells: write `[^a]`), parentheses and `|` (picomatch's groups
//! and extglobs), nested braces, braces with fewer than two alternatives or
//! an empty one, POSIX classes, a class starting with `]`, unmatched brackets
//! and a dangling `\`.

/// Alternatives one segment may expand to, at most.
const MAX_ALTERNATIVES: usize = 256;

/// A compiled glob: its segments.
#[derive(Debug, Clone)]
pub(crate) struct Compiled(Vec<Segment>);

#[derive(Debug, Clone)]
enum Segment {
    /// `**`: any number of folders.
    Globstar,
    /// One folder, matched by any of these token lists.
    One(Vec<Vec<Token>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyChar,
    Star,
    /// `[...]`; picomatch also lets a class free of regex characters match
    /// its own text (`[ab]` matches the name `[ab]`), kept in `literal`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
        literal: Option<Vec<char>>,
    },
}

/// The segments a glob means: a leading run of `**` followed by anything
/// else becomes `*`, `**` (one folder or more), as picomatch reads it.
pub(crate) fn effective_segments<'a>(segments: &[&'a str]) -> Vec<&'a str> {
    let leading = segments.iter().take_while(|s| **s == "**").count();
    if leading == 0 || leading == segments.len() {
        return segments.to_vec();
    }
    let mut out = vec!["*", "**"];
    out.extend_from_slice(&segments[leading..]);
    out
}

impl Compiled {
    /// Compiles the segments of a normalised glob (the text between its `/`s).
    pub(crate) fn new(segments: &[&str]) -> Result<Self, String> {
        effective_segments(segments)
            .iter()
            .map(|s| {
                if *s == "**" {
                    Ok(Segment::Globstar)
                } else {
                    alternatives(s).map(Segment::One)
                }
            })
            .collect::<Result<_, _>>()
            .map(Compiled)
    }

    /// True when the glob matches the path with these segments (none for `/`).
    pub(crate) fn matches(&self, path: &[&str]) -> bool {
        // Greedy matching with backtracking to the last `**`: each other
        // segment consumes exactly one folder.
        let (mut g, mut p) = (0, 0);
        let mut resume: Option<(usize, usize)> = None;
        while p < path.len() {
            match self.0.get(g) {
                Some(Segment::Globstar) => {
                    resume = Some((g, p));
                    g += 1;
                    continue;
                }
                Some(Segment::One(alts)) if segment_matches(alts, path[p]) => {
                    g += 1;
                    p += 1;
                    continue;
                }
                _ => {}
            }
            match resume {
                Some((star, from)) => {
                    g = star + 1;
                    p = from + 1;
                    resume = Some((star, from + 1));
                }
                None => return false,
            }
        }
        self.0[g..].iter().all(|s| matches!(s, Segment::Globstar))
    }
}

fn segment_matches(alternatives: &[Vec<Token>], name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    alternatives
        .iter()
        .any(|tokens| tokens_match(tokens, &chars))
}

/// Whether `tokens` match all of `text`: dynamic programming over (token,
/// character) positions, linear in their product whatever the stars.
fn tokens_match(tokens: &[Token], text: &[char]) -> bool {
    let n = text.len();
    // rest[j]: tokens[i+1..] match text[j..]; computed from the last token back.
    let mut rest = vec![false; n + 1];
    rest[n] = true;
    for token in tokens.iter().rev() {
        let mut here = vec![false; n + 1];
        for j in (0..=n).rev() {
            here[j] = match token {
                Token::Star => rest[j] || (j < n && here[j + 1]),
                Token::Class {
                    literal: Some(lit), ..
                } if text[j..].starts_with(lit) && rest[j + lit.len()] => true,
                other => j < n && other.matches(text[j]) && rest[j + 1],
            };
        }
        rest = here;
    }
    rest[0]
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyChar | Token::Star => true,
            Token::Class {
                negated, ranges, ..
            } => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated,
        }
    }
}

/// A segment's brace alternatives, each a token list.
fn alternatives(segment: &str) -> Result<Vec<Vec<Token>>, String> {
    let chars: Vec<char> = segment.chars().collect();
    let mut expansions: Vec<Vec<Token>> = vec![Vec::new()];
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' => {
                let (choices, next) = braces(&chars, i)?;
                if expansions.len() * choices.len() > MAX_ALTERNATIVES {
                    return Err(format!(
                        "expands to more than {MAX_ALTERNATIVES} alternatives"
                    ));
                }
                expansions = expansions
                    .iter()
                    .flat_map(|prefix| {
                        choices.iter().map(move |choice| {
                            let mut joined = prefix.clone();
                            joined.extend(choice.iter().cloned());
                            joined
                        })
                    })
                    .collect();
                i = next;
            }
            _ => {
                let (token, next) = token(&chars, i)?;
                for e in &mut expansions {
                    e.push(token.clone());
                }
                i = next;
            }
        }
        if matches!(chars.get(i.wrapping_sub(1)), Some(']' | '}')) && chars.get(i) == Some(&'+') {
            return Err(
                "has '+' after a class or braces, which picomatch reads as \"one or more\": escape it as \\+"
                    .to_owned(),
            );
        }
    }
    Ok(expansions
        .into_iter()
        .map(|mut tokens| {
            tokens.dedup_by(|a, b| *a == Token::Star && *b == Token::Star);
            tokens
        })
        .collect())
}

/// The alternatives of the `{...}` opening at `start`, and the index after it.
fn braces(chars: &[char], start: usize) -> Result<(Vec<Vec<Token>>, usize), String> {
    let mut choices = vec![Vec::new()];
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err("has a '{' without its '}'".to_owned()),
            Some('{') => {
                return Err("nests braces, which Latchkey does not support".to_owned());
            }
            Some('}') => {
                i += 1;
                break;
            }
            Some(',') => {
                choices.push(Vec::new());
                i += 1;
            }
            Some(_) => {
                let (token, next) = token(chars, i)?;
                if let Some(last) = choices.last_mut() {
                    last.push(token);
                }
                i = next;
            }
        }
    }
    if choices.len() < 2 {
        return Err(
            "has braces with one alternative: write {a,b}, or \\{ and \\} for literal braces"
                .to_owned(),
        );
    }
    if choices.iter().any(Vec::is_empty) {
        return Err("has an empty brace alternative".to_owned());
    }
    Ok((choices, i))
}

/// The one token at `i` (not a brace), and the index after it.
fn token(chars: &[char], i: usize) -> Result<(Token, usize), String> {
    match chars[i] {
        '*' => Ok((Token::Star, i + 1)),
        '?' => Ok((Token::AnyChar, i + 1)),
        '[' => class(chars, i),
        '\\' => match chars.get(i + 1) {
            Some(c) => Ok((Token::Literal(*c), i + 2)),
            None => Err("ends with a dangling '\\'".to_owned()),
        },
        '(' | ')' | '|' => Err(format!(
            "holds {:?}, which picomatch reads as a group or extglob; escape it as \\{}",
            chars[i], chars[i]
        )),
        ']' => Err("has a ']' without its '[': escape it as \\]".to_owned()),
        '}' => Err("has a '}' without its '{': escape it as \\}".to_owned()),
        c => Ok((Token::Literal(c), i + 1)),
    }
}

/// The class `[...]` opening at `start`, and the index after it.
fn class(chars: &[char], start: usize) -> Result<(Token, usize), String> {
    let mut i = start + 1;
    if chars.get(i) == Some(&'!') {
        return Err(
            "has [!...], a negation to shells but not to picomatch: write [^...] to negate, \
             or put the '!' later for a literal one"
                .to_owned(),
        );
    }
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        return Err("has a class starting with ']', which picomatch reads otherwise".to_owned());
    }
    let content_start = i;
    let mut ranges = Vec::new();
    loop {
        let lo = match chars.get(i) {
            None => return Err("has a '[' without its ']'".to_owned()),
            Some(']') => break,
            Some('[') => {
                return Err("has '[' inside a class (POSIX classes are not supported)".to_owned());
            }
            Some('\\') => {
                return Err("has '\\' inside a class, which picomatch reads otherwise".to_owned());
            }
            Some(c) => *c,
        };
        i += 1;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| !matches!(c, ']' | '\\'))
        {
            let hi = chars[i + 1];
            i += 2;
            if hi < lo {
                return Err(format!("has the reversed range {lo}-{hi}"));
            }
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
    let content = &chars[content_start..i];
    // picomatch's fallback: a class with no regex character also matches its text.
    let literal = (!negated && !content.iter().any(|c| "-*+?.^${}()|[]".contains(*c)))
        .then(|| chars[start..=i].to_vec());
    Ok((
        Token::Class {
            negated,
            ranges,
            literal,
        },
        i + 1,
    ))
}

#[cfg(test)]
mod tests;
