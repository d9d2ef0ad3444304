//! Loading a program: the root file, the files and standard-library modules it imports
//! (transitively), and the scope of item names visible in each file.
//!
//! Every file is read and parsed once (files are identified by their canonical path, standard
//! library modules by name). Loading goes on after an error so that one run reports as many
//! problems as it can: syntax errors in several files, missing files, unknown modules or names,
//! duplicate definitions, conflicting imports and recursive imports.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::ast::{self, ImportTarget, Item};
use crate::parser::parse_file;
use crate::source::{Diagnostic, FileId, SourceMap, Span, render_all};

/// The embedded standard library: `import std.NAME` loads the text of `dsl/std/NAME.dsl`, shown
/// as `std/NAME.dsl` in diagnostics.
pub const STD_MODULES: &[(&str, &str)] = &[
    ("math", include_str!("../std/math.dsl")),
    ("nn", include_str!("../std/nn.dsl")),
    ("attention", include_str!("../std/attention.dsl")),
    ("llama", include_str!("../std/llama.dsl")),
];

/// Where a top-level item is defined: `program.file(file).items[index]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemRef {
    pub file: FileId,
    pub index: usize,
}

/// A loaded program: every file it consists of, parsed, and the names each file can see.
#[derive(Clone, Debug)]
pub struct Program {
    /// The text of every file, for diagnostics.
    pub sources: SourceMap,
    /// Every parsed file, ordered by [`FileId`]; the root first.
    pub files: Vec<(FileId, ast::File)>,
    /// The file that was loaded first.
    pub root: FileId,
    /// For each file, every item name visible in it (its own `fn`/`block`/`model` items and the
    /// imported ones) with its definition. Imported names are not re-exported.
    pub scopes: HashMap<FileId, BTreeMap<String, ItemRef>>,
}

impl Program {
    /// The parsed file `id`.
    pub fn file(&self, id: FileId) -> Option<&ast::File> {
        self.files.iter().find(|(f, _)| *f == id).map(|(_, file)| file)
    }

    /// The item an [`ItemRef`] points at.
    pub fn item(&self, r: ItemRef) -> Option<&ast::Item> {
        self.file(r.file)?.items.get(r.index)
    }

    /// The definition that `name` refers to in `file`, if any.
    pub fn lookup(&self, file: FileId, name: &str) -> Option<ItemRef> {
        self.scopes.get(&file)?.get(name).copied()
    }
}

/// Why a program could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The root file could not be read.
    #[error("cannot read `{}`: {message}", path.display())]
    Io { path: PathBuf, message: String },
    /// Errors in the program; `sources` is needed to render them.
    #[error("{} error(s) in the program", diagnostics.len())]
    Diagnostics {
        sources: SourceMap,
        diagnostics: Vec<Diagnostic>,
    },
}

impl LoadError {
    /// The error as a user should see it: `error: cannot read ...`, or every diagnostic in the
    /// `file:line:col: error: ...` form with source lines and carets.
    pub fn render(&self) -> String {
        match self {
            LoadError::Io { .. } => format!("error: {self}\n"),
            LoadError::Diagnostics { sources, diagnostics } => render_all(diagnostics, sources),
        }
    }

    /// The diagnostics, if this is [`LoadError::Diagnostics`].
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Io { .. } => &[],
            LoadError::Diagnostics { diagnostics, .. } => diagnostics,
        }
    }
}

/// Loads the program whose root file is `path`, with all its imports.
pub fn load_file(path: &Path) -> Result<Program, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Loader::default().run(path.display().to_string(), Some(canonical), text)
}

/// Loads a program from text (tests, tools); relative file imports resolve against the current
/// directory.
pub fn load_source(name: &str, text: &str) -> Result<Program, LoadError> {
    Loader::default().run(name.to_string(), None, text.to_string())
}

/// How a loaded file is identified, so that it is parsed once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Path(PathBuf),
    Std(&'static str),
}

#[derive(Default)]
struct Loader {
    sources: SourceMap,
    keys: HashMap<Key, FileId>,
    /// Files that parsed.
    parsed: BTreeMap<FileId, ast::File>,
    /// `(importing file, item index of the import)` → the imported file.
    resolved: HashMap<(FileId, usize), FileId>,
    /// The files being loaded, outermost first (to detect recursive imports).
    stack: Vec<FileId>,
    /// For each file in `stack`, the span of the import it is following.
    following: Vec<Span>,
    diags: Vec<Diagnostic>,
}

impl Loader {
    fn run(mut self, name: String, path: Option<PathBuf>, text: String) -> Result<Program, LoadError> {
        let root = self.sources.add(name, path.clone(), text);
        if let Some(p) = path {
            self.keys.insert(Key::Path(p), root);
        }
        self.visit(root);
        let scopes = self.scopes();
        if !self.diags.is_empty() {
            return Err(LoadError::Diagnostics {
                sources: self.sources,
                diagnostics: self.diags,
            });
        }
        Ok(Program {
            sources: self.sources,
            files: self.parsed.into_iter().collect(),
            root,
            scopes,
        })
    }

    /// Parses a file and loads its imports, depth first.
    fn visit(&mut self, id: FileId) {
        let file = match parse_file(&self.sources, id) {
            Ok(f) => f,
            Err(d) => {
                self.diags.push(d);
                return;
            }
        };
        self.stack.push(id);
        for (index, item) in file.items.iter().enumerate() {
            if let Item::Import(import) = item {
                self.following.push(import.span);
                let target = self.import(id, import);
                self.following.pop();
                if let Some(target) = target {
                    self.resolved.insert((id, index), target);
                }
            }
        }
        self.stack.pop();
        self.parsed.insert(id, file);
    }

    /// Finds (loading it if new) the file an import points at; reports what goes wrong.
    fn import(&mut self, importer: FileId, import: &ast::Import) -> Option<FileId> {
        let (key, name, path, text) = match &import.target {
            ImportTarget::Std(parts) => {
                let module = parts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(".");
                let Some(&(found, text)) = STD_MODULES.iter().find(|(m, _)| *m == module) else {
                    let span = match (parts.first(), parts.last()) {
                        (Some(a), Some(b)) => a.span.to(b.span),
                        _ => import.span,
                    };
                    let available: Vec<String> = STD_MODULES.iter().map(|(m, _)| format!("std.{m}")).collect();
                    self.diags.push(
                        Diagnostic::new(span, format!("unknown standard library module `std.{module}`"))
                            .note(format!("available: {}", available.join(", "))),
                    );
                    return None;
                };
                (Key::Std(found), format!("std/{found}.dsl"), None, text.to_string())
            }
            ImportTarget::File(rel) => {
                let from = self.sources.file(importer);
                // Shown relative to the importing file's name; read relative to its real location.
                let (name, dir) = match &from.path {
                    Some(p) => {
                        let shown_dir = Path::new(&from.name).parent().unwrap_or(Path::new(""));
                        let real_dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
                        (shown_dir.join(rel).display().to_string(), real_dir)
                    }
                    None => (rel.clone(), std::env::current_dir().unwrap_or_default()),
                };
                let full = dir.join(rel);
                let canonical = match std::fs::canonicalize(&full) {
                    Ok(c) => c,
                    Err(e) => {
                        self.diags.push(
                            Diagnostic::new(import.span, format!("cannot find imported file `{rel}`"))
                                .note(format!("looked for `{name}`: {e}")),
                        );
                        return None;
                    }
                };
                let key = Key::Path(canonical.clone());
                if let Some(&existing) = self.keys.get(&key) {
                    return self.check_recursion(existing, import.span);
                }
                match std::fs::read_to_string(&canonical) {
                    Ok(text) => (key, name, Some(canonical), text),
                    Err(e) => {
                        self.diags.push(Diagnostic::new(
                            import.span,
                            format!("cannot read imported file `{rel}`: {e}"),
                        ));
                        return None;
                    }
                }
            }
        };
        if let Some(&existing) = self.keys.get(&key) {
            return self.check_recursion(existing, import.span);
        }
        let id = self.sources.add(name, path, text);
        self.keys.insert(key, id);
        self.visit(id);
        Some(id)
    }

    /// An import of a file loaded before: fine, unless that file is still being loaded. The
    /// error points at the import in `target` that starts the cycle (in the root file when the
    /// cycle goes through it); `span` is the import that closes it.
    fn check_recursion(&mut self, target: FileId, span: Span) -> Option<FileId> {
        let Some(pos) = self.stack.iter().position(|&f| f == target) else {
            return Some(target);
        };
        let chain: Vec<&str> = self.stack[pos..]
            .iter()
            .chain(std::iter::once(&target))
            .map(|&f| self.sources.file(f).name.as_str())
            .collect();
        let start = self.following.get(pos).copied().unwrap_or(span);
        let mut d = Diagnostic::new(start, format!("recursive import: {}", chain.join(" -> ")));
        if start != span {
            d = d.note(format!(
                "`{}` imports `{}` again at {}",
                self.sources.file(span.file).name,
                self.sources.file(target).name,
                self.sources.location(span)
            ));
        }
        d = d.note("expected imports without cycles: move the shared items into a file both can import");
        self.diags.push(d);
        None
    }

    /// The scope of every parsed file; reports duplicates, unknown and conflicting names.
    fn scopes(&mut self) -> HashMap<FileId, BTreeMap<String, ItemRef>> {
        let mut scopes = HashMap::new();
        for (&id, file) in &self.parsed {
            let mut scope: BTreeMap<String, ItemRef> = BTreeMap::new();
            // Where each imported name came from, for messages.
            let mut origin: HashMap<String, Span> = HashMap::new();
            for (name, r) in own_items(id, file) {
                if let Some(prev) = scope.get(&name.name) {
                    let first = item_name(file, prev.index).map(|n| self.sources.location(n.span));
                    let mut d = Diagnostic::new(name.span, format!("`{}` is defined twice in this file", name.name));
                    if let Some(first) = first {
                        d = d.note(format!("first defined at {first}"));
                    }
                    self.diags.push(d);
                } else {
                    scope.insert(name.name.clone(), r);
                }
            }
            for (index, item) in file.items.iter().enumerate() {
                let Item::Import(import) = item else { continue };
                let Some(target) = self.resolved.get(&(id, index)) else {
                    continue;
                };
                let Some(target_file) = self.parsed.get(target) else {
                    continue;
                };
                let exported: BTreeMap<String, ItemRef> = own_items(*target, target_file)
                    .into_iter()
                    .map(|(n, r)| (n.name, r))
                    .collect();
                let target_name = &self.sources.file(*target).name;
                let wanted: Vec<(String, ItemRef, Span, bool)> = match &import.names {
                    None => exported
                        .iter()
                        .map(|(n, r)| (n.clone(), *r, import.span, false))
                        .collect(),
                    Some(names) => {
                        let mut out = Vec::new();
                        for n in names {
                            match exported.get(&n.name) {
                                Some(r) => out.push((n.name.clone(), *r, n.span, true)),
                                None => {
                                    let have: Vec<&str> = exported.keys().map(String::as_str).collect();
                                    let note = if have.is_empty() {
                                        format!("`{target_name}` defines no items")
                                    } else {
                                        format!("`{target_name}` defines: {}", have.join(", "))
                                    };
                                    self.diags.push(
                                        Diagnostic::new(
                                            n.span,
                                            format!("`{target_name}` has no item named `{}`", n.name),
                                        )
                                        .note(note),
                                    );
                                }
                            }
                        }
                        out
                    }
                };
                for (name, r, span, explicit) in wanted {
                    match scope.get(&name) {
                        None => {
                            scope.insert(name.clone(), r);
                            origin.insert(name, span);
                        }
                        Some(prev) if *prev == r => {}
                        Some(prev) if prev.file == id => {
                            // A local item shadows a whole-module import, but not a named one.
                            if explicit {
                                self.diags.push(
                                    Diagnostic::new(
                                        span,
                                        format!("`{name}` is imported here but also defined in this file"),
                                    )
                                    .note(format!("imported from `{target_name}`")),
                                );
                            }
                        }
                        Some(prev) => {
                            let prev_name = &self.sources.file(prev.file).name;
                            let mut d = Diagnostic::new(
                                span,
                                format!("`{name}` is imported from both `{prev_name}` and `{target_name}`"),
                            );
                            if let Some(first) = origin.get(&name) {
                                d = d.note(format!("first imported at {}", self.sources.location(*first)));
                            }
                            self.diags.push(d);
                        }
                    }
                }
            }
            scopes.insert(id, scope);
        }
        scopes
    }
}

/// The name of a `fn`/`block`/`model` item.
fn item_name(file: &ast::File, index: usize) -> Option<&ast::Ident> {
    match file.items.get(index)? {
        Item::Fn(f) => Some(&f.name),
        Item::Block(b) => Some(&b.name),
        Item::Import(_) => None,
    }
}

/// The items a file defines itself, in order.
fn own_items(id: FileId, file: &ast::File) -> Vec<(ast::Ident, ItemRef)> {
    (0..file.items.len())
        .filter_map(|index| item_name(file, index).map(|n| (n.clone(), ItemRef { file: id, index })))
        .collect()
}
