//! The parser of the text form. It only reads and resolves names; types are taken as printed
//! (nodes are added with [`Graph::add_typed`]), so run the verifier on the result.

use std::collections::HashMap;

use super::ParseError;
use super::attrs::{build_op, loop_attrs, parse_attr_list};
use super::cursor::{Cursor, PResult};
use crate::dtype::DType;
use crate::graph::{Function, Graph, Init, Module, NodeId, Origin, ParamDecl, TensorType, Value};
use crate::op::{Literal, LiteralData, LoopOp, Op};
use crate::shape::Dim;

/// Loops nested deeper than this are rejected (it bounds the parser's recursion).
const MAX_DEPTH: usize = 64;

/// Parses a module printed by [`print_module`](super::print_module). Does not verify it: call
/// [`verify_module`](crate::verify_module) on the result.
pub fn parse_module(src: &str) -> Result<Module, ParseError> {
    let mut c = Cursor::new(src);
    c.keyword("module")?;
    let mut m = Module {
        name: c.name()?,
        ..Module::default()
    };
    loop {
        c.ws();
        if c.at_eof() {
            return Ok(m);
        }
        let at = c.pos;
        match c.ident() {
            Ok("param") => m.params.push(param_decl(&mut c)?),
            Ok("func") => m.functions.push(function(&mut c)?),
            _ => {
                c.pos = at;
                return c.error("`param` or `func`");
            }
        }
    }
}

/// A value reference as written: `%k#index`, at a position.
type Ref = (u64, u32, usize);

/// An entry of a signature: an input name or a value reference, with its type.
enum SigName {
    Name(String),
    Ref(Ref),
}

/// `item (, item)* close`, or just `close`.
fn comma_list<T>(
    c: &mut Cursor<'_>,
    close: &str,
    mut item: impl FnMut(&mut Cursor<'_>) -> PResult<T>,
) -> PResult<Vec<T>> {
    let mut out = Vec::new();
    c.ws();
    if c.eat(close) {
        return Ok(out);
    }
    loop {
        out.push(item(c)?);
        c.ws();
        if c.eat(close) {
            return Ok(out);
        }
        if !c.eat(",") {
            return c.error(&format!("`,` or `{close}`"));
        }
    }
}

/// `[a, b, ...]`, each element parsed from its raw text by `f`.
fn bracket_list<T>(c: &mut Cursor<'_>, f: impl Fn(&str) -> Result<T, String>) -> PResult<Vec<T>> {
    c.expect("[")?;
    comma_list(c, "]", |c| {
        c.ws();
        let at = c.pos;
        let raw = c.raw_until(&[',', ']']);
        f(raw.trim()).or_else(|e| c.error_at(at, e))
    })
}

fn dtype(c: &mut Cursor<'_>) -> PResult<DType> {
    c.ws();
    let at = c.pos;
    let d = c.ident()?;
    DType::from_name(d).map_or_else(|| c.error_at(at, format!("unknown dtype `{d}`")), Ok)
}

/// `f32[B, T, 64]`
fn tensor_type(c: &mut Cursor<'_>) -> PResult<TensorType> {
    let dtype = dtype(c)?;
    Ok(TensorType::new(dtype, bracket_list(c, Dim::parse)?))
}

fn static_dim(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("expected a static size, got `{s}`"))
}

fn param_decl(c: &mut Cursor<'_>) -> PResult<ParamDecl> {
    let name = c.name()?;
    c.expect(":")?;
    let dtype = dtype(c)?;
    let shape = bracket_list(c, static_dim)?;
    c.keyword("init")?;
    c.ws();
    let at = c.pos;
    let init = match c.ident()? {
        "zeros" => Init::Fill(0.0),
        "ones" => Init::Fill(1.0),
        kind @ ("normal" | "uniform" | "fill") => {
            c.expect("(")?;
            c.ws();
            let vat = c.pos;
            let v: f64 = match c.raw_until(&[')']).trim().parse() {
                Ok(v) => v,
                Err(_) => return c.error_at(vat, "expected a number"),
            };
            c.expect(")")?;
            match kind {
                "normal" => Init::Normal(v),
                "uniform" => Init::Uniform(v),
                _ => Init::Fill(v),
            }
        }
        other => {
            return c.error_at(
                at,
                format!("unknown init `{other}` (zeros, ones, normal, uniform, fill)"),
            );
        }
    };
    Ok(ParamDecl {
        name,
        dtype,
        shape,
        init,
    })
}

fn value_ref(c: &mut Cursor<'_>) -> PResult<Ref> {
    c.ws();
    let at = c.pos;
    if !c.eat("%") {
        return c.error("a value `%N`");
    }
    let k = c.number("a value number")?;
    let index = if c.eat("#") { c.number("a result index")? } else { 0 };
    Ok((k, index, at))
}

/// `name: type` or `%k: type` entries of a signature, up to the closing `)`.
fn signature(c: &mut Cursor<'_>) -> PResult<Vec<(SigName, TensorType, usize)>> {
    comma_list(c, ")", |c| {
        c.ws();
        let at = c.pos;
        let name = if c.peek() == Some('%') {
            SigName::Ref(value_ref(c)?)
        } else {
            SigName::Name(c.name()?)
        };
        c.expect(":")?;
        Ok((name, tensor_type(c)?, at))
    })
}

fn function(c: &mut Cursor<'_>) -> PResult<Function> {
    let name = c.name()?;
    c.expect("(")?;
    let sig = signature(c)?;
    c.expect("->")?;
    c.expect("(")?;
    let outs = comma_list(c, ")", |c| {
        c.ws();
        let at = c.pos;
        let name = c.name()?;
        c.expect(":")?;
        Ok((name, tensor_type(c)?, at))
    })?;
    c.expect("{")?;
    let graph = body(c, sig, "return", 0)?;
    c.expect("}")?;
    if outs.len() != graph.outputs.len() {
        return c.error_at(
            c.pos,
            format!(
                "`{name}` declares {} results but returns {}",
                outs.len(),
                graph.outputs.len()
            ),
        );
    }
    for ((o, ty, at), (r, v)) in outs.iter().zip(&graph.outputs) {
        if o != r || *ty != *graph.ty(*v) {
            return c.error_at(
                *at,
                format!("result `{o}: {ty}` does not match the returned `{r}: {}`", graph.ty(*v)),
            );
        }
    }
    Ok(Function { name, graph })
}

/// The nodes of one graph (a function body or a loop body) and their number → node map.
#[derive(Default)]
struct Scope {
    g: Graph,
    defs: HashMap<u64, (NodeId, usize)>,
    /// Input nodes in text order, by name, and whether a signature entry has claimed them.
    inputs: Vec<(String, NodeId, bool)>,
}

impl Scope {
    fn resolve(&self, c: &Cursor<'_>, (k, index, at): Ref) -> PResult<Value> {
        match self.defs.get(&k) {
            None => c.error_at(at, format!("`%{k}` is not defined (before this use)")),
            Some((_, n)) if index as usize >= *n => {
                c.error_at(at, format!("`%{k}` has {n} result(s); there is no `%{k}#{index}`"))
            }
            Some((node, _)) => Ok(Value { node: *node, index }),
        }
    }
}

/// Nodes up to `end` (`return` or `yield`) and its result list; the caller reads the `}`.
fn body(c: &mut Cursor<'_>, sig: Vec<(SigName, TensorType, usize)>, end: &str, depth: usize) -> PResult<Graph> {
    let mut s = Scope::default();
    while !c.eat_keyword(end) {
        c.ws();
        if c.peek() != Some('%') {
            return c.error(&format!("a node `%N = ...` or `{end}`"));
        }
        node(c, &mut s, depth)?;
    }
    c.ws();
    if c.peek() != Some('}') {
        loop {
            let name = c.name()?;
            c.expect("=")?;
            let r = value_ref(c)?;
            let v = s.resolve(c, r)?;
            s.g.outputs.push((name, v));
            c.ws();
            if !c.eat(",") {
                break;
            }
        }
    }
    for (entry, ty, at) in sig {
        let node = match entry {
            SigName::Name(name) => match s.inputs.iter_mut().find(|(n, _, used)| *n == name && !used) {
                Some((_, id, used)) => {
                    *used = true;
                    *id
                }
                None => return c.error_at(at, format!("no `input \"{name}\"` node for this signature entry")),
            },
            SigName::Ref(r) => s.resolve(c, r)?.node,
        };
        let actual = s.g.dag[node].outputs.first();
        if actual != Some(&ty) {
            let actual = actual.map_or("nothing".to_string(), |t| t.to_string());
            return c.error_at(at, format!("the signature says {ty} but the node has type {actual}"));
        }
        s.g.inputs.push(node);
    }
    Ok(s.g)
}

/// One node line: `%k[:n] = op(attrs) operands [{ body }] : types [# origin]`.
fn node(c: &mut Cursor<'_>, s: &mut Scope, depth: usize) -> PResult<()> {
    let at = c.pos;
    c.eat("%");
    let k: u64 = c.number("a value number")?;
    let n_out: usize = if c.eat(":") { c.number("a result count")? } else { 1 };
    if s.defs.contains_key(&k) {
        return c.error_at(at, format!("`%{k}` is defined twice"));
    }
    c.expect("=")?;
    c.ws();
    let mpos = c.pos;
    let m = c.ident()?;
    let mut op = match m {
        "input" => Op::Input { name: c.string()? },
        "param" => Op::Param { name: c.string()? },
        "const" => Op::Const(literal(c)?),
        _ => {
            c.hws();
            let attrs = if c.peek() == Some('(') {
                Some(parse_attr_list(c, mpos)?)
            } else {
                None
            };
            match (m, attrs) {
                ("loop", Some(a)) => {
                    let (trips, max_trips, n_carried, has_stop, n_emit) = loop_attrs(c, a)?;
                    Op::Loop(Box::new(LoopOp {
                        trips,
                        max_trips,
                        n_carried,
                        has_stop,
                        n_emit,
                        body: Graph::new(),
                    }))
                }
                (m, attrs) => build_op(c, m, mpos, attrs)?,
            }
        }
    };
    let mut operands = Vec::new();
    c.hws();
    if c.peek() == Some('%') {
        loop {
            let r = value_ref(c)?;
            operands.push(s.resolve(c, r)?);
            c.hws();
            if !c.eat(",") {
                break;
            }
        }
    }
    if let Op::Loop(l) = &mut op {
        if depth >= MAX_DEPTH {
            return c.error_at(mpos, format!("loops are nested more than {MAX_DEPTH} deep"));
        }
        c.expect("{")?;
        c.expect("^")?;
        c.expect("(")?;
        let sig = signature(c)?;
        l.body = body(c, sig, "yield", depth + 1)?;
        c.expect("}")?;
    }
    c.expect(":")?;
    c.hws();
    let outputs = if c.eat("(") {
        c.expect(")")?;
        Vec::new()
    } else {
        let mut ts = vec![tensor_type(c)?];
        c.hws();
        while c.eat(",") {
            ts.push(tensor_type(c)?);
            c.hws();
        }
        ts
    };
    if outputs.len() != n_out {
        return c.error_at(
            at,
            format!("`%{k}` declares {n_out} result(s) but lists {} type(s)", outputs.len()),
        );
    }
    c.hws();
    let origin = if c.peek() == Some('#') {
        origin(c)?
    } else if let Op::Input { name } = &op {
        Origin {
            name: name.clone(),
            loc: String::new(),
        }
    } else {
        Origin::default()
    };
    let input_name = match &op {
        Op::Input { name } => Some(name.clone()),
        _ => None,
    };
    let id = s.g.add_typed(op, &operands, outputs, origin);
    s.defs.insert(k, (id, n_out));
    if let Some(name) = input_name {
        s.inputs.push((name, id, false));
    }
    Ok(())
}

/// `# name @ file:line:col`, either part optional, either part possibly quoted.
fn origin(c: &mut Cursor<'_>) -> PResult<Origin> {
    c.eat("#");
    c.hws();
    let name = if c.peek() == Some('"') {
        c.string()?
    } else {
        c.until_char('@').trim_end().to_string()
    };
    c.hws();
    let loc = if c.eat("@") {
        c.hws();
        if c.peek() == Some('"') {
            c.string()?
        } else {
            c.skip_line().trim_end().to_string()
        }
    } else {
        String::new()
    };
    c.skip_line();
    Ok(Origin { name, loc })
}

/// `f32 0.5` or `f32[2, 2] [1.0, 2.0, 3.0, 4.0]`.
fn literal(c: &mut Cursor<'_>) -> PResult<Literal> {
    let dtype = dtype(c)?;
    let (shape, tokens) = if c.peek() == Some('[') {
        let shape = bracket_list(c, static_dim)?;
        c.expect("[")?;
        let tokens = comma_list(c, "]", |c| {
            c.ws();
            let at = c.pos;
            Ok((c.raw_until(&[',', ']']).trim().to_string(), at))
        })?;
        (shape, tokens)
    } else {
        c.ws();
        let at = c.pos;
        let t = c.raw_until(&[' ', '\t', '\r', ',', ':']);
        (Vec::new(), vec![(t.to_string(), at)])
    };
    let kind = |t: &str| match t {
        "true" | "false" => 2,
        _ if !t.is_empty() && t.strip_prefix('-').unwrap_or(t).bytes().all(|b| b.is_ascii_digit()) => 1,
        _ => 0,
    };
    let k = match tokens.first() {
        Some((t, _)) => kind(t),
        None if dtype.is_float() => 0,
        None if dtype.is_int() => 1,
        None => 2,
    };
    if let Some((t, at)) = tokens.iter().find(|(t, _)| kind(t) != k) {
        return c.error_at(*at, format!("literal element `{t}` is not like the first element"));
    }
    let bad = |t: &str, at: usize| c.err_at(at, format!("bad literal element `{t}`"));
    let data = match k {
        0 => {
            let mut v = Vec::with_capacity(tokens.len());
            for (t, at) in &tokens {
                let x = match t.strip_suffix("f64") {
                    Some(t) => t.parse::<f64>().ok(),
                    None if dtype.is_float() => t.parse::<f32>().ok().map(f64::from),
                    None => t.parse::<f64>().ok(),
                };
                v.push(x.ok_or_else(|| bad(t, *at))?);
            }
            LiteralData::Float(v)
        }
        1 => {
            let mut v = Vec::with_capacity(tokens.len());
            for (t, at) in &tokens {
                v.push(t.parse::<i64>().map_err(|_| bad(t, *at))?);
            }
            LiteralData::Int(v)
        }
        _ => LiteralData::Bool(tokens.iter().map(|(t, _)| t == "true").collect()),
    };
    Ok(Literal { dtype, shape, data })
}
