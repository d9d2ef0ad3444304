//! A character scanner over IR text: whitespace, comments, names, strings, numbers, raw runs.
//! Every method works on char boundaries and reports errors as [`ParseError`]s; none panics.

use super::ParseError;

pub(super) type PResult<T> = Result<T, ParseError>;

/// A position in the source text with the scanning primitives of the parser.
pub(super) struct Cursor<'a> {
    src: &'a str,
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(src: &'a str) -> Cursor<'a> {
        Cursor { src, pos: 0 }
    }

    /// The unread text.
    pub(super) fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(super) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    pub(super) fn at_eof(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// An error at byte offset `pos`, converted to a 1-based line and column (in chars).
    pub(super) fn error_at<T>(&self, pos: usize, message: impl Into<String>) -> PResult<T> {
        Err(self.err_at(pos, message))
    }

    /// The error value of [`Cursor::error_at`].
    pub(super) fn err_at(&self, pos: usize, message: impl Into<String>) -> ParseError {
        let pos = pos.min(self.src.len());
        let before = self.src.get(..pos).unwrap_or(self.src);
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseError {
            line,
            col,
            message: message.into(),
        }
    }

    /// An error at the current position, naming what was found there.
    pub(super) fn error<T>(&self, expected: &str) -> PResult<T> {
        let found: String = self
            .rest()
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(20)
            .collect();
        let found = if self.at_eof() {
            "the end of the text".to_string()
        } else if found.is_empty() {
            "a line break".to_string()
        } else {
            format!("`{found}`")
        };
        self.error_at(self.pos, format!("expected {expected}, found {found}"))
    }

    /// Skips spaces and tabs (not line breaks).
    pub(super) fn hws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
            self.bump();
        }
    }

    /// Skips whitespace, line breaks and comments (`# ...`, `// ...`).
    pub(super) fn ws(&mut self) {
        loop {
            self.hws();
            if self.rest().starts_with('\n') {
                self.bump();
            } else if self.rest().starts_with('#') || self.rest().starts_with("//") {
                self.skip_line();
            } else {
                return;
            }
        }
    }

    /// Advances to the next line break (not consuming it), returning the skipped text.
    pub(super) fn skip_line(&mut self) -> &'a str {
        let start = self.pos;
        let end = self.rest().find('\n').map_or(self.src.len(), |i| self.pos + i);
        self.pos = end;
        &self.src[start..end]
    }

    /// Consumes `s` if the unread text starts with it (no whitespace skipped).
    pub(super) fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Skips whitespace, then requires `s`.
    pub(super) fn expect(&mut self, s: &str) -> PResult<()> {
        self.ws();
        if self.eat(s) {
            Ok(())
        } else {
            self.error(&format!("`{s}`"))
        }
    }

    /// Skips whitespace, then reads an identifier `[A-Za-z_][A-Za-z0-9_.]*`.
    pub(super) fn ident(&mut self) -> PResult<&'a str> {
        match self.scan_ident() {
            Some(w) => Ok(w),
            None => self.error("a name"),
        }
    }

    /// [`Cursor::ident`] without the error: `None` (nothing consumed but whitespace) if no name
    /// starts here. Lookahead uses this, because an error costs a scan of the text before it
    /// (for its line number) and lookahead fails at most statements.
    fn scan_ident(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.pos;
        if !self.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            self.bump();
        }
        Some(&self.src[start..self.pos])
    }

    /// Skips whitespace, then requires the keyword `kw`.
    pub(super) fn keyword(&mut self, kw: &str) -> PResult<()> {
        self.ws();
        let start = self.pos;
        match self.scan_ident() {
            Some(w) if w == kw => Ok(()),
            _ => {
                self.pos = start;
                self.error(&format!("`{kw}`"))
            }
        }
    }

    /// True (consuming it) if the next word is the keyword `kw`.
    pub(super) fn eat_keyword(&mut self, kw: &str) -> bool {
        self.ws();
        let start = self.pos;
        match self.scan_ident() {
            Some(w) if w == kw => true,
            _ => {
                self.pos = start;
                false
            }
        }
    }

    /// A name: an identifier or a quoted string.
    pub(super) fn name(&mut self) -> PResult<String> {
        self.ws();
        if self.peek() == Some('"') {
            self.string()
        } else {
            Ok(self.ident()?.to_string())
        }
    }

    /// Skips whitespace, then reads a quoted string with escapes.
    pub(super) fn string(&mut self) -> PResult<String> {
        self.ws();
        if !self.eat("\"") {
            return self.error("a quoted string");
        }
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None | Some('\n') => return self.error_at(at, "unterminated string"),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some('u') if self.eat("{") => {
                        let hex = self.raw_until(&['}']);
                        let c = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                        match c {
                            Some(c) if self.eat("}") => out.push(c),
                            _ => return self.error_at(at, "bad `\\u{...}` escape"),
                        }
                    }
                    _ => return self.error_at(at, "unknown escape in string"),
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// Skips whitespace, then reads an unsigned decimal number.
    pub(super) fn number<T: std::str::FromStr>(&mut self, what: &str) -> PResult<T> {
        self.ws();
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let text = &self.src[start..self.pos];
        match text.parse() {
            Ok(v) => Ok(v),
            Err(_) if text.is_empty() => self.error(what),
            Err(_) => self.error_at(start, format!("{what} `{text}` is out of range")),
        }
    }

    /// Reads up to (not including) `stop` or a line break.
    pub(super) fn until_char(&mut self, stop: char) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|c| c != stop && c != '\n') {
            self.bump();
        }
        &self.src[start..self.pos]
    }

    /// Reads up to (not including) the first of `stops`, or a line break, outside brackets.
    pub(super) fn raw_until(&mut self, stops: &[char]) -> &'a str {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            if c == '\n' || (depth == 0 && stops.contains(&c)) {
                break;
            }
            match c {
                '[' | '(' => depth += 1,
                ']' | ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.bump();
        }
        &self.src[start..self.pos]
    }
}
