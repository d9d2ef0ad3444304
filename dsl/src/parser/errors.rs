//! Turning pest's parse errors into friendly diagnostics: what was found at the error position
//! (`unexpected `)``, `unexpected end of file`) and what was expected, in words rather than
//! grammar rule names.

use pest::error::{Error, ErrorVariant, InputLocation};

use super::Rule;
use crate::source::{Diagnostic, FileId, Span};

/// The reserved words of the language: they can never be used as names.
pub const RESERVED_WORDS: &[&str] = &[
    "import", "fn", "block", "model", "param", "let", "for", "in", "loop", "return", "next", "emit", "if", "else",
    "true", "false", "None", "entry", "repeat",
];

/// How an expected rule is shown to the user, and in which group it is listed (words first,
/// then keywords, then punctuation). `None` leaves the rule out (operators, which would only be
/// noise after a complete operand, and rules that are always reported by their parent).
fn describe(rule: Rule) -> Option<(u8, &'static str)> {
    use Rule::*;
    let word = |s| Some((0, s));
    let kw = |s| Some((1, s));
    let punct = |s| Some((2, s));
    match rule {
        ident | binding | arg_name => word("a name"),
        expr | if_expr | or_expr | and_expr | cmp_expr | add_expr | mul_expr | unary | power | postfix | paren
        | list | int | float | lit_true | lit_false | lit_none | slice_end | slice_step | range | ret_item | arg => {
            word("an expression")
        }
        ty | tensor_ty | scalar_ty | dtype => word("a type"),
        param => word("a parameter"),
        pattern => word("a pattern"),
        stmt => word("a statement"),
        member => word("a member (`param`, `let`, `fn`, `entry` or `name = Block(...)`)"),
        item | file => word("an item (`import`, `fn`, `block` or `model`)"),
        index_item => word("an index"),
        string => word("a file name in quotes"),
        kw_import => kw("`import`"),
        kw_fn => kw("`fn`"),
        kw_block => kw("`block`"),
        kw_model => kw("`model`"),
        kw_param => kw("`param`"),
        kw_let => kw("`let`"),
        kw_for => kw("`for`"),
        kw_in | loop_range => kw("`in`"),
        kw_loop => kw("`loop`"),
        kw_return => kw("`return`"),
        kw_next => kw("`next`"),
        kw_emit => kw("`emit`"),
        kw_if | cond => kw("`if`"),
        kw_else => kw("`else`"),
        kw_entry => kw("`entry`"),
        kw_repeat | repeat_count => kw("`repeat`"),
        kw_std | std_path => kw("`std`"),
        kw_max | loop_max => kw("`max`"),
        kw_carry | loop_carry => kw("`carry`"),
        kw_until | loop_until => kw("`until`"),
        kw_shares | shares => kw("`shares`"),
        lparen | params | ret_tuple | block_args | tuple_pat => punct("`(`"),
        rparen => punct("`)`"),
        dims => punct("`[`"),
        rbracket => punct("`]`"),
        lbrace | body | else_arm => punct("`{`"),
        rbrace => punct("`}`"),
        comma | tcomma => punct("`,`"),
        colon | slice_tail => punct("`:`"),
        eq | fn_short | param_init => punct("`=`"),
        dotdot => punct("`..`"),
        arrow | ret_ty => punct("`->`"),
        ellipsis => punct("`...`"),
        wild => punct("`_`"),
        import_names => punct("`.{`"),
        _ => None,
    }
}

/// The token at byte offset `pos` as the user would name it, and where it ends; `None` at the end
/// of the input.
fn token_at(text: &str, pos: usize) -> Option<(String, usize)> {
    let rest = text.get(pos..)?;
    let c = rest.chars().next()?;
    let len = if c.is_ascii_alphanumeric() || c == '_' {
        rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len())
    } else {
        const MULTI: &[&str] = &["...", "**", "==", "!=", "<=", ">=", "->", "..", "/*", "//"];
        MULTI
            .iter()
            .find(|m| rest.starts_with(**m))
            .map_or(c.len_utf8(), |m| m.len())
    };
    let tok = &rest[..len];
    let shown = if c.is_control() || c.is_whitespace() {
        format!("{:?}", c)
    } else {
        tok.to_string()
    };
    Some((shown, pos + len))
}

/// Converts a pest error into a diagnostic at the error position.
pub(super) fn syntax_error(text: &str, file: FileId, err: Error<Rule>) -> Diagnostic {
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
    .min(text.len());
    // `x / * ...`: an unterminated block comment that was read as a division.
    if pos > 0 && text[..pos].ends_with('/') && text[pos..].starts_with('*') {
        return Diagnostic::new(Span::new(file, pos - 1, pos + 1), "unterminated comment `/*`");
    }
    let found = token_at(text, pos);
    let span = Span::new(file, pos, found.as_ref().map_or(pos, |f| f.1));
    let positives = match err.variant {
        ErrorVariant::ParsingError { positives, .. } => positives,
        ErrorVariant::CustomError { message } => {
            let message = match message.as_str() {
                "stack limit reached" => "the program is nested too deeply to parse".to_string(),
                "call limit reached" => "the program is too complex to parse".to_string(),
                _ => message,
            };
            return Diagnostic::new(span, message);
        }
    };
    let mut expected: Vec<(u8, &str)> = Vec::new();
    for (rank, word) in positives.into_iter().filter_map(describe) {
        if !expected.iter().any(|e| e.1 == word) {
            expected.push((rank, word));
        }
    }
    // A name is an expression too; listing both would only confuse.
    if expected.iter().any(|e| e.1 == "an expression") {
        expected.retain(|e| e.1 != "a name");
    }
    expected.sort_by_key(|e| e.0);

    let wants_name = expected
        .iter()
        .any(|e| matches!(e.1, "a name" | "an expression" | "a pattern" | "a parameter"));
    let message = match &found {
        None => "unexpected end of file".to_string(),
        Some((tok, _)) if wants_name && RESERVED_WORDS.contains(&tok.as_str()) => {
            format!("`{tok}` is a reserved word and cannot be a name")
        }
        Some((tok, _)) if tok == "\"" && !text[pos + 1..].lines().next().unwrap_or("").contains('"') => {
            return Diagnostic::new(span, "unterminated string").note("expected a closing `\"` on the same line");
        }
        Some((tok, _)) if tok == "\"" => "unexpected `\"` (strings are only used in imports)".to_string(),
        Some((tok, _)) if tok == "/*" => return Diagnostic::new(span, "unterminated comment `/*`"),
        Some((tok, _)) if is_word(tok) && expected.iter().any(|e| e.1 == "a type") => {
            return Diagnostic::new(span, format!("unknown type `{tok}`"))
                .note("expected a tensor type such as `f32[B, d]` (dtypes: f32, f16, bf16, i32, i64, bool), or int, float, bool");
        }
        Some((tok, end))
            if is_word(tok) && expected.iter().any(|e| e.1 == "a statement") && is_assignment(&text[*end..]) =>
        {
            return Diagnostic::new(span, format!("`{tok} = ...` needs `let`")).note(format!(
                "expected a statement: `let {tok} = ...` binds (or rebinds) a name"
            ));
        }
        Some((tok, _)) => format!("unexpected `{tok}`"),
    };
    let mut diag = Diagnostic::new(span, message);
    if !expected.is_empty() {
        let words: Vec<&str> = expected.iter().map(|e| e.1).collect();
        diag = diag.note(format!("expected: {}", words.join(", ")));
    }
    // A missing closer: point out the bracket left open on an earlier line.
    if let Some((open, at)) = unclosed(&text[..pos])
        && expected.iter().any(|e| e.1 == closer_word(open))
        && text[at..pos].contains('\n')
    {
        let line = text[..at].matches('\n').count() + 1;
        let col = text[..at].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        diag = diag.note(format!(
            "the `{open}` opened at line {line}, column {col} is not closed"
        ));
    }
    diag
}

/// A name-like token (not punctuation, not a reserved word).
fn is_word(tok: &str) -> bool {
    tok.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && !RESERVED_WORDS.contains(&tok)
}

/// Whether `rest` (the text after a name) starts with `=` but not `==`.
fn is_assignment(rest: &str) -> bool {
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.starts_with('=') && !rest.starts_with("==")
}

/// How the closer of an opening bracket is listed among the expected tokens.
fn closer_word(open: char) -> &'static str {
    match open {
        '(' => "`)`",
        '[' => "`]`",
        _ => "`}`",
    }
}

/// The innermost bracket left open in `text` (comments and strings skipped), with its offset.
fn unclosed(text: &str) -> Option<(char, usize)> {
    let mut stack: Vec<(char, usize)> = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' if text[i..].starts_with("//") => while chars.next_if(|&(_, c)| c != '\n').is_some() {},
            '/' if text[i..].starts_with("/*") => {
                let end = text[i + 2..].find("*/").map_or(text.len(), |e| i + 2 + e + 2);
                while chars.next_if(|&(j, _)| j < end).is_some() {}
            }
            '"' => {
                while chars.next_if(|&(_, c)| c != '"' && c != '\n').is_some() {}
                chars.next_if(|&(_, c)| c == '"');
            }
            '(' | '[' | '{' => stack.push((c, i)),
            ')' | ']' | '}' => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.pop()
}
