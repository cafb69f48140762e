//! Renaming the reference crate in the learner's copy: `solution01` becomes `chapter01`
//! where the code names it (`use solution01::trace;`), and nowhere else.
//!
//! Comments and strings keep the reference's name: they talk about the reference crate
//! (`// later chapters re-export solution01`), and a learner's chapter 2 really does
//! build on `solution01`, not on their own `chapter01`.

use anyhow::{anyhow, Result};
use proc_macro2::{TokenStream, TokenTree};

/// `source` with every identifier `from` written as `to`.
pub fn rename_identifier(source: &str, from: &str, to: &str) -> Result<String> {
    let tokens: TokenStream = source
        .parse()
        .map_err(|error| anyhow!("cannot split the code into tokens: {error}"))?;
    let mut places = Vec::new();
    collect_identifiers(tokens, from, &mut places);
    let mut renamed = source.to_string();
    // From the end, so each replacement leaves the offsets before it where they were.
    for offset in places.into_iter().rev() {
        renamed.replace_range(offset..offset + from.len(), to);
    }
    Ok(renamed)
}

/// The byte offsets in the source of the identifier tokens equal to `name`, in order.
fn collect_identifiers(tokens: TokenStream, name: &str, places: &mut Vec<usize>) {
    for token in tokens {
        match token {
            TokenTree::Ident(ident) if ident == name => {
                places.push(ident.span().byte_range().start);
            }
            TokenTree::Group(group) => collect_identifiers(group.stream(), name, places),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rename_identifier;

    fn rename(source: &str) -> String {
        rename_identifier(source, "solution01", "chapter01").unwrap()
    }

    #[test]
    fn code_that_names_the_crate_is_renamed() {
        let source = "pub use solution01::*;\nfn f() { solution01::trace::on(); }\n";
        let expected = "pub use chapter01::*;\nfn f() { chapter01::trace::on(); }\n";
        assert_eq!(rename(source), expected);
    }

    #[test]
    fn comments_and_strings_keep_the_reference_name() {
        let source = "//! Later chapters re-export `solution01`.\n/// See solution01.\n// solution01 here\nconst S: &str = \"solution01\";\n/* solution01 */\n";
        assert_eq!(rename(source), source);
    }

    #[test]
    fn a_longer_name_that_contains_it_is_left_alone() {
        let source = "use solution01_extra::x;\nlet solution011 = 1;\n";
        assert_eq!(rename(source), source);
    }

    #[test]
    fn offsets_after_non_ascii_text_are_right() {
        let source = "// é, ü and 한글 before it\nuse solution01::x; // solution01\n";
        let expected = "// é, ü and 한글 before it\nuse chapter01::x; // solution01\n";
        assert_eq!(rename(source), expected);
    }
}
