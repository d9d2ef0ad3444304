//! Op attributes in the text form: `name(key=value, ...)` lists and the ops built from them.

use super::cursor::{Cursor, PResult};
use crate::dtype::DType;
use crate::op::{ArgOp, Op, ReduceOp};
use crate::shape::{Dim, Shape};

const REDUCE_OPS: [ReduceOp; 6] = [
    ReduceOp::Sum,
    ReduceOp::Prod,
    ReduceOp::Max,
    ReduceOp::Min,
    ReduceOp::Any,
    ReduceOp::All,
];

/// A parsed attribute list: `(key, raw value, position)`; positional values have no key.
pub(super) struct Attrs {
    items: Vec<(Option<String>, String, usize)>,
    /// Position of the op's mnemonic, for errors about missing attributes.
    pos: usize,
}

/// Reads `(a=1, b=[2, 3], N + 1)` at the cursor (which is at the `(`).
pub(super) fn parse_attr_list(c: &mut Cursor<'_>, pos: usize) -> PResult<Attrs> {
    c.expect("(")?;
    let mut items = Vec::new();
    c.ws();
    if c.eat(")") {
        return Ok(Attrs { items, pos });
    }
    loop {
        c.ws();
        let at = c.pos;
        let raw = c.raw_until(&[',', ')']);
        let (key, value) = match raw.split_once('=') {
            Some((k, v)) if super::is_bare_name(k.trim()) => (Some(k.trim().to_string()), v.trim()),
            _ => (None, raw.trim()),
        };
        if value.is_empty() {
            return c.error_at(at, "expected an attribute value");
        }
        items.push((key, value.to_string(), at));
        c.ws();
        if c.eat(")") {
            return Ok(Attrs { items, pos });
        }
        c.expect(",")?;
    }
}

impl Attrs {
    /// Removes and returns the raw value of `key` (`None` for the positional value).
    fn take(&mut self, c: &Cursor<'_>, key: Option<&str>) -> PResult<(String, usize)> {
        match self.items.iter().position(|(k, _, _)| k.as_deref() == key) {
            Some(i) => {
                let (_, v, p) = self.items.remove(i);
                Ok((v, p))
            }
            None => c.error_at(
                self.pos,
                match key {
                    Some(k) => format!("missing attribute `{k}`"),
                    None => "missing attribute value".to_string(),
                },
            ),
        }
    }

    fn finish(self, c: &Cursor<'_>) -> PResult<()> {
        match self.items.first() {
            None => Ok(()),
            Some((Some(k), _, p)) => c.error_at(*p, format!("unexpected attribute `{k}`")),
            Some((None, v, p)) => c.error_at(*p, format!("unexpected attribute value `{v}`")),
        }
    }

    fn usize(&mut self, c: &Cursor<'_>, key: &str) -> PResult<usize> {
        let (v, p) = self.take(c, Some(key))?;
        v.parse()
            .or_else(|_| c.error_at(p, format!("`{key}` must be a count or axis, got `{v}`")))
    }

    fn u64(&mut self, c: &Cursor<'_>, key: &str) -> PResult<u64> {
        let (v, p) = self.take(c, Some(key))?;
        v.parse()
            .or_else(|_| c.error_at(p, format!("`{key}` must be a count, got `{v}`")))
    }

    fn bool(&mut self, c: &Cursor<'_>, key: &str) -> PResult<bool> {
        let (v, p) = self.take(c, Some(key))?;
        match v.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => c.error_at(p, format!("`{key}` must be true or false, got `{v}`")),
        }
    }

    fn f64(&mut self, c: &Cursor<'_>, key: &str) -> PResult<f64> {
        let (v, p) = self.take(c, Some(key))?;
        v.parse()
            .or_else(|_| c.error_at(p, format!("`{key}` must be a number, got `{v}`")))
    }

    fn dim(&mut self, c: &Cursor<'_>, key: Option<&str>) -> PResult<Dim> {
        let (v, p) = self.take(c, key)?;
        Dim::parse(&v).or_else(|e| c.error_at(p, e))
    }

    fn dtype(&mut self, c: &Cursor<'_>, key: Option<&str>) -> PResult<DType> {
        let (v, p) = self.take(c, key)?;
        DType::from_name(&v).map_or_else(|| c.error_at(p, format!("unknown dtype `{v}`")), Ok)
    }

    /// A bracketed list `[a, b]` of items parsed by `f`.
    fn list<T>(&mut self, c: &Cursor<'_>, key: Option<&str>, f: impl Fn(&str) -> Result<T, String>) -> PResult<Vec<T>> {
        let (v, p) = self.take(c, key)?;
        let Some(inner) = v.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
            return c.error_at(p, format!("expected a `[...]` list, got `{v}`"));
        };
        if inner.trim().is_empty() {
            return Ok(Vec::new());
        }
        inner
            .split(',')
            .map(|s| f(s.trim()).or_else(|e| c.error_at(p, e)))
            .collect()
    }

    fn shape(&mut self, c: &Cursor<'_>, key: Option<&str>) -> PResult<Shape> {
        self.list(c, key, Dim::parse)
    }

    fn axes(&mut self, c: &Cursor<'_>, key: Option<&str>) -> PResult<Vec<usize>> {
        self.list(c, key, |s| s.parse().map_err(|_| format!("bad axis `{s}`")))
    }
}

/// Builds the op called `m` from its attributes (`None` when the op had no attribute list).
/// Handles every op except `input`, `param`, `const` and `loop`, which have their own syntax.
pub(super) fn build_op(c: &Cursor<'_>, m: &str, pos: usize, attrs: Option<Attrs>) -> PResult<Op> {
    if let Some(u) = Op::UNARY.iter().find(|u| Op::Unary(**u).mnemonic() == m) {
        return no_attrs(c, attrs, Op::Unary(*u));
    }
    if let Some(b) = Op::BINARY.iter().find(|b| Op::Binary(**b).mnemonic() == m) {
        return no_attrs(c, attrs, Op::Binary(*b));
    }
    match m {
        "select" => return no_attrs(c, attrs, Op::Select),
        "matmul" => return no_attrs(c, attrs, Op::MatMul),
        _ => {}
    }
    let Some(mut a) = attrs else {
        return if is_attr_op(m) {
            c.error_at(pos, format!("`{m}` needs attributes in parentheses"))
        } else {
            c.error_at(pos, format!("unknown op `{m}`"))
        };
    };
    let op = match m {
        _ if let Some(r) = REDUCE_OPS.into_iter().find(|r| reduce_name(*r) == m) => Op::Reduce {
            op: r,
            axes: a.axes(c, Some("axes"))?,
            keepdim: a.bool(c, "keepdim")?,
        },
        "argmax" | "argmin" => Op::ArgReduce {
            op: if m == "argmax" { ArgOp::ArgMax } else { ArgOp::ArgMin },
            axis: a.usize(c, "axis")?,
            keepdim: a.bool(c, "keepdim")?,
        },
        "dim" => Op::DimSize(a.dim(c, None)?),
        "cast" => Op::Cast(a.dtype(c, None)?),
        "reshape" => Op::Reshape(a.shape(c, None)?),
        "permute" => Op::Permute(a.axes(c, None)?),
        "expand" => Op::Expand(a.shape(c, None)?),
        "slice" => Op::Slice {
            axis: a.usize(c, "axis")?,
            start: a.dim(c, Some("start"))?,
            end: a.dim(c, Some("end"))?,
            step: a.u64(c, "step")?,
        },
        "concat" => Op::Concat {
            axis: a.usize(c, "axis")?,
        },
        "pad" => Op::Pad {
            axis: a.usize(c, "axis")?,
            before: a.u64(c, "before")?,
            after: a.u64(c, "after")?,
            value: a.f64(c, "value")?,
        },
        "gather" => Op::Gather {
            axis: a.usize(c, "axis")?,
        },
        "take" => Op::Take {
            axis: a.usize(c, "axis")?,
        },
        "scatter" => Op::Scatter {
            axis: a.usize(c, "axis")?,
        },
        "dynamic_slice" => Op::DynamicSlice {
            axis: a.usize(c, "axis")?,
            size: a.dim(c, Some("size"))?,
        },
        "dynamic_update_slice" => Op::DynamicUpdateSlice {
            axis: a.usize(c, "axis")?,
        },
        "iota" => Op::Iota {
            shape: a.shape(c, Some("shape"))?,
            axis: a.usize(c, "axis")?,
            dtype: a.dtype(c, Some("dtype"))?,
        },
        "cumsum" => Op::Cumsum {
            axis: a.usize(c, "axis")?,
            exclusive: a.bool(c, "exclusive")?,
            reverse: a.bool(c, "reverse")?,
        },
        "topk" => Op::TopK {
            k: a.dim(c, Some("k"))?,
            axis: a.usize(c, "axis")?,
            largest: a.bool(c, "largest")?,
        },
        "rng_uniform" => Op::RngUniform {
            shape: a.shape(c, Some("shape"))?,
        },
        _ => return c.error_at(pos, format!("unknown op `{m}`")),
    };
    a.finish(c)?;
    Ok(op)
}

/// The attributes of a loop: `(trips, max, carried, stop, emit)`.
pub(super) fn loop_attrs(c: &Cursor<'_>, mut a: Attrs) -> PResult<(Dim, u64, usize, bool, usize)> {
    let out = (
        a.dim(c, Some("trips"))?,
        a.u64(c, "max")?,
        a.usize(c, "carried")?,
        a.bool(c, "stop")?,
        a.usize(c, "emit")?,
    );
    a.finish(c)?;
    Ok(out)
}

fn no_attrs(c: &Cursor<'_>, attrs: Option<Attrs>, op: Op) -> PResult<Op> {
    match attrs {
        None => Ok(op),
        Some(a) => c.error_at(a.pos, format!("`{}` takes no attributes", op.mnemonic())),
    }
}

fn reduce_name(r: ReduceOp) -> &'static str {
    Op::Reduce {
        op: r,
        axes: vec![],
        keepdim: false,
    }
    .mnemonic()
}

fn is_attr_op(m: &str) -> bool {
    REDUCE_OPS.into_iter().any(|r| reduce_name(r) == m)
        || [
            "argmax",
            "argmin",
            "dim",
            "cast",
            "reshape",
            "permute",
            "expand",
            "slice",
            "concat",
            "pad",
            "gather",
            "take",
            "scatter",
            "dynamic_slice",
            "dynamic_update_slice",
            "iota",
            "cumsum",
            "topk",
            "rng_uniform",
            "loop",
        ]
        .contains(&m)
}
