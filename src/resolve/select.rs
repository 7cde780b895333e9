//! Matching a reference segment against what the server lists: an exact id,
//! else an exact name, else a unique case-insensitive name. Anything else is
//! an error that lists the candidates by name and id.

use super::Failure;

/// Something with an id and a name.
pub trait Candidate {
    /// Object id.
    fn id(&self) -> &str;
    /// Display name.
    fn name(&self) -> &str;
}

/// Largest number of candidates listed in an error.
const MAX_LISTED: usize = 12;

/// Picks the one candidate `segment` designates; `what` is "vault", "item" or "field".
pub fn select<'a, C: Candidate + 'a>(
    what: &'static str,
    segment: &str,
    candidates: impl IntoIterator<Item = &'a C> + Clone,
) -> Result<&'a C, Failure> {
    if let Some(c) = candidates.clone().into_iter().find(|c| c.id() == segment) {
        return Ok(c);
    }
    let exact: Vec<&C> = candidates
        .clone()
        .into_iter()
        .filter(|c| c.name() == segment)
        .collect();
    let matches = if exact.is_empty() {
        candidates
            .clone()
            .into_iter()
            .filter(|c| c.name().to_lowercase() == segment.to_lowercase())
            .collect()
    } else {
        exact
    };
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(Failure::NotFound {
            what,
            segment: segment.to_string(),
            candidates: list(candidates),
        }),
        many => Err(Failure::Ambiguous {
            what,
            segment: segment.to_string(),
            candidates: many.iter().map(|c| describe(*c)).collect(),
        }),
    }
}

fn describe<C: Candidate>(c: &C) -> String {
    format!("\"{}\" ({})", c.name(), c.id())
}

fn list<'a, C: Candidate + 'a>(candidates: impl IntoIterator<Item = &'a C>) -> Vec<String> {
    let mut all: Vec<String> = candidates.into_iter().map(describe).collect();
    all.sort();
    if all.len() > MAX_LISTED {
        let more = all.len() - MAX_LISTED;
        all.truncate(MAX_LISTED);
        all.push(format!("and {more} more"));
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct C(&'static str, &'static str);
    impl Candidate for C {
        fn id(&self) -> &str {
            self.0
        }
        fn name(&self) -> &str {
            self.1
        }
    }

    #[test]
    fn id_then_exact_then_unique_case_insensitive() {
        let cs = [
            C("1", "Prod"),
            C("2", "prod"),
            C("3", "Edge"),
            C("4", "Prod"),
        ];
        assert_eq!(select("vault", "3", &cs).unwrap().0, "3");
        assert_eq!(select("vault", "prod", &cs).unwrap().0, "2");
        assert_eq!(select("vault", "EDGE", &cs).unwrap().0, "3");
        match select("vault", "Prod", &cs) {
            Err(Failure::Ambiguous { candidates, .. }) => assert_eq!(candidates.len(), 2),
            other => panic!("{other:?}"),
        }
        match select("vault", "PROD", &cs) {
            Err(Failure::Ambiguous { candidates, .. }) => assert_eq!(candidates.len(), 3),
            other => panic!("{other:?}"),
        }
        match select("vault", "nope", &cs) {
            Err(Failure::NotFound { candidates, .. }) => {
                assert!(candidates.contains(&"\"Edge\" (3)".to_string()))
            }
            other => panic!("{other:?}"),
        }
    }
}
