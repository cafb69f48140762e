//! Which exercises a learner has not done yet: the `todo!("exercise N.M: ...")` calls
//! still in their code. Book: "Check your work".
//!
//! The source is parsed, not searched line by line: rustfmt splits a long `todo!(` call
//! over several lines, and a learner may format their code however they like.

use std::path::Path;

use anyhow::{Context, Result};
use proc_macro2::TokenTree;
use syn::visit::Visit;

use crate::exercises::Number;

/// A `todo!()` that names an exercise, and the 1-based line where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Todo {
    pub number: Number,
    pub line: usize,
}

/// The `todo!()`s in `source` whose message starts with "exercise N.M:", in order.
pub fn find(source: &str) -> syn::Result<Vec<Todo>> {
    let file = syn::parse_file(source)?;
    let mut finder = TodoFinder::default();
    finder.visit_file(&file);
    Ok(finder.found)
}

/// The same for a file on disk; the error names the file.
pub fn find_in_file(path: &Path) -> Result<Vec<Todo>> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {path:?}"))?;
    find(&source).map_err(|error| {
        let at = error.span().start();
        anyhow::anyhow!(
            "cannot parse {}:{}:{}: {error}; fix the code there, then check again",
            path.display(),
            at.line,
            at.column + 1
        )
    })
}

#[derive(Default)]
struct TodoFinder {
    found: Vec<Todo>,
}

impl<'ast> Visit<'ast> for TodoFinder {
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let is_todo = mac.path.segments.last().is_some_and(|s| s.ident == "todo");
        if let Some(number) = is_todo.then(|| exercise_named(mac)).flatten() {
            let line = mac.path.segments[0].ident.span().start().line;
            self.found.push(Todo { number, line });
        }
        syn::visit::visit_macro(self, mac);
    }
}

/// The exercise a `todo!("exercise N.M: ...", ...)` names, from its first argument.
fn exercise_named(mac: &syn::Macro) -> Option<Number> {
    let first = mac.tokens.clone().into_iter().next()?;
    let TokenTree::Literal(literal) = first else {
        return None;
    };
    let message = syn::parse2::<syn::LitStr>(TokenTree::Literal(literal).into())
        .ok()?
        .value();
    let rest = message.strip_prefix("exercise ")?;
    let (number, _) = rest.split_once(':')?;
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(source: &str) -> Vec<(String, usize)> {
        find(source)
            .unwrap()
            .into_iter()
            .map(|todo| (todo.number.to_string(), todo.line))
            .collect()
    }

    #[test]
    fn a_todo_split_over_lines_by_rustfmt_is_found_at_its_first_line() {
        let source = "fn f() -> u8 {\n    todo!(\n        \"exercise 2.1: a long title (book section 2.1)\"\n    )\n}\n";
        assert_eq!(numbers(source), [("2.1".to_string(), 2)]);
    }

    #[test]
    fn only_todos_that_name_an_exercise_count() {
        let source = "fn a() { todo!() }\nfn b() { todo!(\"later\") }\nfn c() { unimplemented!(\"exercise 1.1: x\") }\nfn d() { std::todo!(\"exercise 1.2: y {}\", 1) }\n";
        assert_eq!(numbers(source), [("1.2".to_string(), 4)]);
    }

    #[test]
    fn a_comment_or_a_string_that_mentions_an_exercise_is_not_a_todo() {
        let source =
            "// todo!(\"exercise 1.1: x\")\nconst S: &str = \"todo!(\\\"exercise 1.1: x\\\")\";\n";
        assert!(numbers(source).is_empty());
    }

    #[test]
    fn todos_inside_nested_items_and_closures_are_found() {
        let source = "mod m {\n    impl X {\n        fn f() {\n            let g = || todo!(\"exercise 3.10: z\");\n        }\n    }\n}\n";
        assert_eq!(numbers(source), [("3.10".to_string(), 4)]);
    }
}
