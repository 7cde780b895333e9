//! The globs of `[project] include` and `exclude`, matched against names.
//!
//! Hand-written on purpose, for bytes. These globs used to be `globset`'s,
//! which compiles every pattern to a regular expression: `regex-automata`
//! and `regex-syntax` came with it, and leaving them out made the static
//! binary (`packaging/build-static.sh`, whose 6 MiB budget had 2 KB left)
//! 445 KB smaller (6,289,488 → 5,844,496 bytes), for a few patterns over
//! short variable names. What is here is the same language, byte for
//! byte, in some 300 lines of code: `globset` 0.4's parser,
//! ported, and the regular expression it would compile (`(?-u)` over the
//! name's UTF-8 bytes, `.` matching any byte, default options:
//! case-sensitive, `*` and `?` match `/`, `\` escapes) run as a set of
//! positions, so a match costs at most (tokens × name length²) steps
//! whatever the pattern. A property test checks it against `globset`
//! itself, a dev-dependency only.
//!
//! The syntax:
//!
//! - `?` one byte; `*` any run of bytes, `/` included;
//! - `[abc]`, `[a-z]`, `[!a-z]` or `[^a-z]` one byte in (or not in) the
//!   class; a `]` or `-` first in the class, or a `-` last, is literal;
//!   inside a class `\` is literal;
//! - `{A,B}` either branch (nested groups too; an empty branch is
//!   dropped, as in `globset`);
//! - `**` as a path component (`**/X`, `X/**`, `X/**/Y`) spans `/`; alone
//!   it matches every name; elsewhere it is `*` twice;
//! - `\` takes the next character literally.
//!
//! Invalid patterns are refused with `globset`'s messages: an unclosed
//! class, a reversed range, an unopened or unclosed `{`, a dangling `\`.

use thiserror::Error;

/// Why a pattern is not a glob (the messages are `globset`'s).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GlobError {
    /// `[` without its `]`.
    #[error("unclosed character class; missing ']'")]
    UnclosedClass,
    /// `[z-a]`.
    #[error("invalid range; '{0}' > '{1}'")]
    InvalidRange(char, char),
    /// `}` without its `{`.
    #[error("unopened alternate group; missing '{{' (maybe escape '}}' with '[}}]'?)")]
    UnopenedAlternates,
    /// `{` without its `}`.
    #[error("unclosed alternate group; missing '}}' (maybe escape '{{' with '[{{]'?)")]
    UnclosedAlternates,
    /// `\` at the end.
    #[error("dangling '\\'")]
    DanglingEscape,
}

/// Patterns of which a name must match at least one.
#[derive(Debug, Clone)]
pub struct GlobSet {
    globs: Vec<Glob>,
}

impl GlobSet {
    /// Parses every pattern; the first invalid one is the error.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<GlobSet, GlobError> {
        let globs = patterns
            .into_iter()
            .map(Glob::new)
            .collect::<Result<_, _>>()?;
        Ok(GlobSet { globs })
    }

    /// Whether any of the patterns matches all of `name`.
    pub fn is_match(&self, name: &str) -> bool {
        self.globs.iter().any(|g| g.is_match(name.as_bytes()))
    }
}

/// One parsed pattern, in the form it is matched in.
#[derive(Debug, Clone)]
struct Glob {
    /// `**` alone (or `**/`, `**/**`): every name.
    everything: bool,
    nodes: Vec<Node>,
}

/// What the parser reads (`globset`'s tokens).
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    Any,
    ZeroOrMore,
    RecursivePrefix,
    RecursiveSuffix,
    RecursiveZeroOrMore,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Alternates(Vec<Vec<Token>>),
}

/// What is matched: a token as its regular expression means it, over bytes.
#[derive(Debug, Clone)]
enum Node {
    /// These bytes.
    Bytes(Vec<u8>),
    /// `.`: one byte.
    AnyByte,
    /// `.*`.
    AnyBytes,
    /// `(?:/?|.*/)`.
    RecursivePrefix,
    /// `/.*`.
    RecursiveSuffix,
    /// `(?:/|/.*/)`.
    RecursiveMiddle,
    /// A byte class, negation applied: `set[b]` says whether `b` matches.
    Class(Box<[bool; 256]>),
    /// `(?:A|B|…)`, without the branches that compile to nothing.
    Either(Vec<Vec<Node>>),
}

impl Glob {
    fn new(pattern: &str) -> Result<Glob, GlobError> {
        let mut p = Parser {
            chars: pattern.chars().peekable(),
            alternates_stack: Vec::new(),
            branches: vec![Vec::new()],
            prev: None,
            cur: None,
        };
        p.parse()?;
        if p.branches.len() > 1 {
            return Err(GlobError::UnclosedAlternates);
        }
        let tokens = p.branches.pop().unwrap_or_default();
        Ok(Glob {
            everything: tokens == [Token::RecursivePrefix],
            nodes: lower(&tokens),
        })
    }

    fn is_match(&self, name: &[u8]) -> bool {
        if self.everything {
            return true;
        }
        let mut start = vec![false; name.len() + 1];
        start[0] = true;
        run(&self.nodes, name, start)[name.len()]
    }
}

/// Whether tokens compile to an empty regular expression (only groups
/// whose branches all do): `globset` leaves such a branch out.
fn compiles_to_nothing(tokens: &[Token]) -> bool {
    tokens.iter().all(|t| match t {
        Token::Alternates(branches) => branches.iter().all(|b| compiles_to_nothing(b)),
        _ => false,
    })
}

fn lower(tokens: &[Token]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for t in tokens {
        let node = match t {
            Token::Literal(c) => {
                let mut buf = [0; 4];
                let bytes = c.encode_utf8(&mut buf).as_bytes();
                if let Some(Node::Bytes(last)) = nodes.last_mut() {
                    last.extend_from_slice(bytes);
                    continue;
                }
                Node::Bytes(bytes.to_vec())
            }
            Token::Any => Node::AnyByte,
            Token::ZeroOrMore => Node::AnyBytes,
            Token::RecursivePrefix => Node::RecursivePrefix,
            Token::RecursiveSuffix => Node::RecursiveSuffix,
            Token::RecursiveZeroOrMore => Node::RecursiveMiddle,
            Token::Class { negated, ranges } => Node::Class(class(*negated, ranges)),
            Token::Alternates(branches) => {
                let kept: Vec<Vec<Node>> = branches
                    .iter()
                    .filter(|b| !compiles_to_nothing(b))
                    .map(|b| lower(b))
                    .collect();
                if kept.is_empty() {
                    continue;
                }
                Node::Either(kept)
            }
        };
        nodes.push(node);
    }
    nodes
}

/// The byte class `globset` writes for these ranges: each character as its
/// UTF-8 bytes, so `[é]` is the two bytes of `é`, and a range `a-b` runs
/// from the last byte of `a` to the first byte of `b`.
fn class(negated: bool, ranges: &[(char, char)]) -> Box<[bool; 256]> {
    let mut set = Box::new([false; 256]);
    for &(a, b) in ranges {
        let (mut ba, mut bb) = ([0; 4], [0; 4]);
        let a = a.encode_utf8(&mut ba).as_bytes();
        let b = b.encode_utf8(&mut bb).as_bytes();
        if a == b {
            a.iter().for_each(|&x| set[usize::from(x)] = true);
            continue;
        }
        let (a_last, a_rest) = a.split_last().unwrap_or((&0, &[]));
        let (b_first, b_rest) = b.split_first().unwrap_or((&0, &[]));
        a_rest
            .iter()
            .chain(b_rest)
            .for_each(|&x| set[usize::from(x)] = true);
        (*a_last..=*b_first).for_each(|x| set[usize::from(x)] = true);
    }
    if negated {
        set.iter_mut().for_each(|x| *x = !*x);
    }
    set
}

/// The positions of `s` reachable after `nodes`, from the positions in
/// `at` (`at[i]`: the first `i` bytes are matched).
fn run(nodes: &[Node], s: &[u8], mut at: Vec<bool>) -> Vec<bool> {
    let n = s.len();
    for node in nodes {
        let mut next = vec![false; n + 1];
        let Some(first) = at.iter().position(|&x| x) else {
            return at;
        };
        let slash_at = |i: usize| s.get(i) == Some(&b'/');
        match node {
            Node::Bytes(bytes) => {
                for p in (first..=n).filter(|&p| at[p]) {
                    if s[p..].starts_with(bytes) {
                        next[p + bytes.len()] = true;
                    }
                }
            }
            Node::AnyByte => (first..n)
                .filter(|&p| at[p])
                .for_each(|p| next[p + 1] = true),
            Node::AnyBytes => next[first..].iter_mut().for_each(|x| *x = true),
            Node::Class(set) => (first..n)
                .filter(|&p| at[p] && set[usize::from(s[p])])
                .for_each(|p| next[p + 1] = true),
            Node::RecursivePrefix => {
                // `/?` (nothing, or one `/`), or `.*/` (up to any later `/`).
                next.copy_from_slice(&at);
                (first..n)
                    .filter(|&q| slash_at(q))
                    .for_each(|q| next[q + 1] = true);
            }
            Node::RecursiveSuffix => {
                if let Some(p) = (first..n).find(|&p| at[p] && slash_at(p)) {
                    next[p + 1..].iter_mut().for_each(|x| *x = true);
                }
            }
            Node::RecursiveMiddle => {
                // `/`, or `/.*/`: from a `/` here to just past it or past
                // any later `/`.
                if let Some(p) = (first..n).find(|&p| at[p] && slash_at(p)) {
                    (p..n)
                        .filter(|&q| slash_at(q))
                        .for_each(|q| next[q + 1] = true);
                }
            }
            Node::Either(branches) => {
                for branch in branches {
                    let reached = run(branch, s, at.clone());
                    next.iter_mut().zip(reached).for_each(|(x, r)| *x |= r);
                }
            }
        }
        at = next;
    }
    at
}

/// `globset`'s parser (`glob.rs`, 0.4), with its default options.
struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    /// Where in `branches` each open `{` started.
    alternates_stack: Vec<usize>,
    /// The branches being parsed; tokens go to the last one.
    branches: Vec<Vec<Token>>,
    prev: Option<char>,
    cur: Option<char>,
}

impl Parser<'_> {
    fn parse(&mut self) -> Result<(), GlobError> {
        while let Some(c) = self.bump() {
            match c {
                '?' => self.push(Token::Any)?,
                '*' => self.parse_star()?,
                '[' => self.parse_class()?,
                '{' => {
                    self.alternates_stack.push(self.branches.len());
                    self.branches.push(Vec::new());
                }
                '}' => {
                    let start = self
                        .alternates_stack
                        .pop()
                        .ok_or(GlobError::UnopenedAlternates)?;
                    let alternates = Token::Alternates(self.branches.drain(start..).collect());
                    self.push(alternates)?;
                }
                ',' if !self.alternates_stack.is_empty() => self.branches.push(Vec::new()),
                '\\' => {
                    let c = self.bump().ok_or(GlobError::DanglingEscape)?;
                    self.push(Token::Literal(c))?;
                }
                c => self.push(Token::Literal(c))?,
            }
        }
        Ok(())
    }

    fn branch(&mut self) -> Result<&mut Vec<Token>, GlobError> {
        self.branches
            .last_mut()
            .ok_or(GlobError::UnopenedAlternates)
    }

    fn push(&mut self, token: Token) -> Result<(), GlobError> {
        self.branch()?.push(token);
        Ok(())
    }

    fn parse_star(&mut self) -> Result<(), GlobError> {
        let prev = self.prev;
        if self.chars.peek() != Some(&'*') {
            return self.push(Token::ZeroOrMore);
        }
        self.bump();
        let twice = |p: &mut Self| {
            p.push(Token::ZeroOrMore)?;
            p.push(Token::ZeroOrMore)
        };
        if self.branch()?.is_empty() {
            if self.chars.peek().is_some_and(|&c| c != '/') {
                return twice(self);
            }
            self.bump();
            return self.push(Token::RecursivePrefix);
        }
        if prev != Some('/')
            && (self.branches.len() <= 1 || (prev != Some(',') && prev != Some('{')))
        {
            return twice(self);
        }
        let is_suffix = match self.chars.peek() {
            None => true,
            Some(',' | '}') if self.branches.len() >= 2 => true,
            Some('/') => {
                self.bump();
                false
            }
            _ => return twice(self),
        };
        let token = match self.branch()?.pop() {
            Some(Token::RecursivePrefix) => Token::RecursivePrefix,
            Some(Token::RecursiveSuffix) => Token::RecursiveSuffix,
            _ if is_suffix => Token::RecursiveSuffix,
            _ => Token::RecursiveZeroOrMore,
        };
        self.push(token)
    }

    fn parse_class(&mut self) -> Result<(), GlobError> {
        let mut ranges: Vec<(char, char)> = Vec::new();
        let negated = matches!(self.chars.peek(), Some('!' | '^'));
        if negated {
            self.bump();
        }
        let mut first = true;
        let mut in_range = false;
        loop {
            let c = self.bump().ok_or(GlobError::UnclosedClass)?;
            match (c, ranges.last_mut()) {
                (']', _) if !first => break,
                (c, Some(last)) if in_range => {
                    // `globset`'s `add_to_last_range`: `c` ends the range.
                    last.1 = c;
                    if last.1 < last.0 {
                        return Err(GlobError::InvalidRange(last.0, last.1));
                    }
                    in_range = false;
                }
                ('-', Some(_)) if !first => in_range = true,
                (c, _) => ranges.push((c, c)),
            }
            first = false;
        }
        if in_range {
            ranges.push(('-', '-'));
        }
        self.push(Token::Class { negated, ranges })
    }

    fn bump(&mut self) -> Option<char> {
        self.prev = self.cur;
        self.cur = self.chars.next();
        self.cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> GlobSet {
        GlobSet::new(patterns.iter().copied()).unwrap()
    }

    fn matches(pattern: &str, name: &str) -> bool {
        set(&[pattern]).is_match(name)
    }

    fn error(pattern: &str) -> String {
        GlobSet::new([pattern]).unwrap_err().to_string()
    }

    #[test]
    fn star_matches_any_run() {
        assert!(matches("PROD_*", "PROD_DB"));
        assert!(matches("PROD_*", "PROD_"));
        assert!(!matches("PROD_*", "DEV_PROD_DB"));
        assert!(matches("*_TEST", "A_TEST"));
        assert!(!matches("*_TEST", "A_TEST_B"));
        assert!(matches("*", ""));
        assert!(matches("A*B*C", "AxxBxxC"));
        assert!(matches("A*B*C", "ABC"));
        assert!(!matches("A*B*C", "ACB"));
        // `*` crosses `/` (`globset`'s default, no literal separator).
        assert!(matches("A*", "A/B"));
    }

    #[test]
    fn question_mark_is_one_byte() {
        assert!(matches("DB_?", "DB_1"));
        assert!(!matches("DB_?", "DB_"));
        assert!(!matches("DB_?", "DB_12"));
        assert!(matches("DB_??", "DB_12"));
        // One byte, not one character: `é` is two.
        assert!(!matches("?", "é"));
        assert!(matches("??", "é"));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(matches("DB_[0-9]", "DB_7"));
        assert!(!matches("DB_[0-9]", "DB_X"));
        assert!(matches("[AB]_X", "B_X"));
        assert!(!matches("[AB]_X", "C_X"));
        assert!(matches("[!AB]_X", "C_X"));
        assert!(!matches("[!AB]_X", "A_X"));
        assert!(matches("[^AB]_X", "C_X"));
        assert!(!matches("[^AB]_X", "B_X"));
        // `]` first and `-` first or last are literal; `\` is literal inside.
        assert!(matches("[]]", "]"));
        assert!(matches("[!]]", "A"));
        assert!(!matches("[!]]", "]"));
        assert!(matches("[-A]", "-"));
        assert!(matches("[A-]", "-"));
        assert!(matches("[\\]", "\\"));
        assert!(matches("[*?{]", "{"));
        assert!(!matches("[A-C]", "D"));
        assert!(matches("[A-CX-Z]", "Y"));
    }

    #[test]
    fn escapes_take_the_next_character() {
        assert!(matches("A\\*", "A*"));
        assert!(!matches("A\\*", "AB"));
        assert!(matches("\\?", "?"));
        assert!(!matches("\\?", "X"));
        assert!(matches("\\[X\\]", "[X]"));
        assert!(matches("\\{A,B\\}", "{A,B}"));
        assert!(matches("\\\\", "\\"));
    }

    #[test]
    fn alternates() {
        assert!(matches("{PROD,STAGE}_DB", "PROD_DB"));
        assert!(matches("{PROD,STAGE}_DB", "STAGE_DB"));
        assert!(!matches("{PROD,STAGE}_DB", "DEV_DB"));
        assert!(matches("{A,{B,C}}", "C"));
        // An empty branch is dropped, as `globset` does.
        assert!(!matches("A{,B}", "A"));
        assert!(matches("A{,B}", "AB"));
        assert!(matches("A{}B", "AB"));
        // A comma outside a group is literal.
        assert!(matches("A,B", "A,B"));
    }

    #[test]
    fn double_star() {
        assert!(matches("**", ""));
        assert!(matches("**", "ANYTHING/AT/ALL"));
        assert!(matches("**/X", "X"));
        assert!(matches("**/X", "A/B/X"));
        assert!(!matches("**/X", "AX"));
        assert!(matches("A/**", "A/B"));
        assert!(!matches("A/**", "A"));
        assert!(matches("A/**/B", "A/B"));
        assert!(matches("A/**/B", "A/X/Y/B"));
        assert!(!matches("A/**/B", "AB"));
        assert!(matches("A**B", "AXYB"));
        assert!(matches("**A", "XA"));
    }

    #[test]
    fn case_sensitive_and_whole_name() {
        assert!(!matches("prod_*", "PROD_DB"));
        assert!(!matches("DB", "DB_X"));
        assert!(!matches("DB", "X_DB"));
        assert!(matches("", ""));
        assert!(!matches("", "X"));
    }

    #[test]
    fn a_set_matches_when_any_pattern_does() {
        let s = set(&["PROD_*", "*_KEY"]);
        assert!(s.is_match("PROD_DB"));
        assert!(s.is_match("STRIPE_KEY"));
        assert!(!s.is_match("DEV_DB"));
        assert!(!set(&[]).is_match("X"));
    }

    #[test]
    fn invalid_patterns_are_refused_with_globsets_messages() {
        assert_eq!(error("SECRET["), "unclosed character class; missing ']'");
        assert_eq!(error("[]"), "unclosed character class; missing ']'");
        assert_eq!(error("[!"), "unclosed character class; missing ']'");
        assert_eq!(error("[z-a]"), "invalid range; 'z' > 'a'");
        assert_eq!(
            error("A}"),
            "unopened alternate group; missing '{' (maybe escape '}' with '[}]'?)"
        );
        assert_eq!(
            error("{A,B"),
            "unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)"
        );
        assert_eq!(error("A\\"), "dangling '\\'");
        // The first invalid pattern of a set is the error.
        assert_eq!(
            GlobSet::new(["OK_*", "[", "}"]).unwrap_err(),
            GlobError::UnclosedClass
        );
    }

    #[test]
    fn no_pattern_is_exponential() {
        let name = "A".repeat(5000);
        assert!(!matches("*A*A*A*A*A*A*A*A*A*A*B", &name));
        assert!(matches("{*A,*A}{*A,*A}{*A,*A}*", &name));
    }

    /// `globset` itself, the reference (a dev-dependency only).
    fn reference(pattern: &str) -> Result<globset::GlobSet, String> {
        let glob = globset::Glob::new(pattern).map_err(|e| e.kind().to_string())?;
        globset::GlobSetBuilder::new()
            .add(glob)
            .build()
            .map_err(|e| e.kind().to_string())
    }

    /// Whether `globset` and this module agree on `pattern`: the same
    /// error, or the same answer for every name.
    fn agree(pattern: &str, names: &[String]) -> Result<(), proptest::test_runner::TestCaseError> {
        let ours = GlobSet::new([pattern]).map_err(|e| e.to_string());
        match (ours, reference(pattern)) {
            (Ok(ours), Ok(theirs)) => {
                for name in names {
                    proptest::prop_assert_eq!(
                        ours.is_match(name),
                        theirs.is_match(name),
                        "pattern {:?}, name {:?}",
                        pattern,
                        name
                    );
                }
            }
            (Err(ours), Err(theirs)) => proptest::prop_assert_eq!(ours, theirs),
            (ours, theirs) => proptest::prop_assert!(
                false,
                "pattern {:?}: ours {:?}, globset {:?}",
                pattern,
                ours.map(|_| ()),
                theirs.map(|_| ())
            ),
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        #[test]
        fn same_language_as_globset(
            pattern in "[AB/_é*?\\[\\]!^{},\\\\-]{0,10}",
            names in proptest::collection::vec("[AB/_é*?\\[\\]{},\\\\-]{0,8}", 8),
        ) {
            agree(&pattern, &names)?;
        }

        #[test]
        fn same_matches_for_derived_names(
            pattern in "[A-Z_*?]{0,4}(\\[[!^]?[A-Z0-9]-?[A-Z0-9]\\])?[A-Z_*]{0,4}",
            names in proptest::collection::vec("[A-Z0-9_]{0,12}", 8),
        ) {
            agree(&pattern, &names)?;
        }
    }
}
