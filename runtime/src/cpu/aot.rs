//! Ahead-of-time compilation: the kernels of a [`ModulePlan`] in a native object file with a C
//! ABI, a C header that declares them, and a small C file with the scalar callouts and a
//! driver function per entry point.
//!
//! The kernels go through exactly the JIT's code path ([`super::jit::lower`]: Cranelift into a
//! `cranelift_module::Module`, here a `cranelift_object::ObjectModule`), so they compute what
//! the JIT computes. What [`compile`] produces:
//!
//! - **the object** (`OUT.o`): one exported function per kernel,
//!   `void NAME(void *const *bufs, const int64_t *dims, int64_t lo, int64_t hi)`, named
//!   `PREFIX_k_KERNEL` (C-safe, unique). It runs the kernel for parallel indices `lo..hi`, so
//!   callers may split the range over threads. Position-independent code for the host's
//!   architecture and, by default, the host CPU's features (like `-march=native`: FMA, AVX);
//!   [`AotOptions::native_cpu`] off gives baseline code for the architecture. The callouts
//!   (`exp`, `log`, `tanh`, `sigmoid`, `erf`, `sin`, `cos`, `pow`, float `rem`, integer `pow`) are
//!   undefined symbols `PREFIX_rt_expf`... (per prefix, so that the objects of several models
//!   link into one program), and Cranelift may call `floorf`/`ceilf`/`fmaf`... where the CPU
//!   lacks an instruction: link with the C file and `-lm`.
//! - **the header** (`OUT.h`): every kernel's declaration with a comment listing its buffers
//!   (name, dtype, read/write), its dims and its parallel range, and for each entry point either
//!   a driver function's declaration or why there is none.
//! - **the C file** (`OUT.rt.c`): the `PREFIX_rt_*` callouts (the C library's `expf`... which Rust
//!   also calls, and `erf` transcribed from the interpreter's series: see `jit/libm.rs`) and the
//!   entry drivers. An entry whose plan is only `Step::Kernel` steps becomes
//!   `int PREFIX_ENTRY(dims..., inputs..., weights..., outputs...)`: a straight-line sequence of
//!   kernel calls over the caller's pointers, temporaries from `malloc` (each freed after its
//!   last use), returning 0, or 1 when an allocation fails. Entries with matrix products,
//!   reference ops or loops need the runtime's libraries and are listed as not available yet.
//!
//! Build and link: `cc -O2 -c OUT.rt.c && cc main.c OUT.o OUT.rt.o -lm`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use cranelift_codegen::settings;
use cranelift_object::{ObjectBuilder, ObjectModule};
use mlc_ir::{
    Access, BufKind, DType, Dim, FunctionPlan, IExpr, KernelFn, LiteralData, ModulePlan, PlanBuf, Step, numel,
};

use super::jit::libm::Libm;
use super::jit::lower::{self, Lowerer, backend};
use super::jit::{JitError, JitOptions};

/// Choices for [`compile`].
#[derive(Clone, Debug)]
pub struct AotOptions {
    /// Code generation (FMA fusion, SIMD loops), as for the JIT.
    pub codegen: JitOptions,
    /// Use every feature of the CPU compiling (the default); off: the architecture's baseline,
    /// so the object runs on any CPU of the architecture.
    pub native_cpu: bool,
    /// Prefix of every exported name (a C identifier); empty: derived from the model's name.
    pub prefix: String,
}

impl Default for AotOptions {
    fn default() -> Self {
        AotOptions {
            codegen: JitOptions::default(),
            native_cpu: true,
            prefix: String::new(),
        }
    }
}

/// A kernel of the object.
#[derive(Clone, Debug)]
pub struct AotKernel {
    /// Its name in the plan.
    pub name: String,
    /// The exported symbol.
    pub symbol: String,
    /// Why it is not in the object (a dtype or op the backend does not lower).
    pub unavailable: Option<String>,
}

/// An entry point of the module.
#[derive(Clone, Debug)]
pub struct AotEntry {
    pub name: String,
    /// The C driver function.
    pub symbol: String,
    /// Why there is no driver.
    pub unavailable: Option<String>,
}

/// What [`compile`] produces.
#[derive(Debug)]
pub struct AotOutput {
    /// The object file (ELF, Mach-O or COFF: the host's format).
    pub object: Vec<u8>,
    /// The header, to be written as the `header_file` given to [`compile`].
    pub header: String,
    /// The C file: callouts and entry drivers (it includes the header).
    pub runtime_c: String,
    pub kernels: Vec<AotKernel>,
    pub entries: Vec<AotEntry>,
}

/// Compiles `plan`'s kernels into an object file and writes its header and C file.
/// `model` names the module (for the prefix and comments); `header_file` is the header's file
/// name, which the C file includes.
pub fn compile(plan: &ModulePlan, model: &str, header_file: &str, opts: &AotOptions) -> Result<AotOutput, JitError> {
    let prefix = if opts.prefix.is_empty() {
        let p = c_ident(&model.to_lowercase());
        if p.is_empty() { "mlc".to_string() } else { p }
    } else {
        c_ident(&opts.prefix)
    };

    // Names: kernels `PREFIX_k_NAME`, entries `PREFIX_NAME`, all distinct.
    // The callouts, `PREFIX_rt_expf`...: two objects with different prefixes link into one program.
    let libm_prefix = format!("{prefix}_rt_");
    let mut taken: HashSet<String> = Libm::ALL
        .iter()
        .map(|f| format!("{libm_prefix}{}", f.base_name()))
        .collect();
    let entry_symbols: Vec<String> = plan
        .functions
        .iter()
        .map(|f| unique(&mut taken, format!("{prefix}_{}", c_ident(&f.name))))
        .collect();
    let kernel_symbols: Vec<String> = plan
        .kernels
        .iter()
        .map(|k| unique(&mut taken, format!("{prefix}_k_{}", c_ident(&k.name))))
        .collect();

    // The object.
    let flags = lower::flag_builder(true)?;
    let isa_builder = cranelift_native::builder_with_options(opts.native_cpu).map_err(|e| backend("", &e))?;
    let isa = isa_builder
        .finish(settings::Flags::new(flags))
        .map_err(|e| backend("", &e))?;
    let arch = isa.triple().architecture.to_string();
    let builder = ObjectBuilder::new(
        isa,
        prefix.as_bytes().to_vec(),
        cranelift_module::default_libcall_names(),
    )
    .map_err(|e| backend("", &e))?;
    let mut module = ObjectModule::new(builder);
    let mut lowerer = Lowerer::new(&mut module, &opts.codegen, &libm_prefix)?;
    let fma = lowerer.fused_multiply_add();
    let mut kernels = Vec::with_capacity(plan.kernels.len());
    for (k, symbol) in plan.kernels.iter().zip(&kernel_symbols) {
        let unavailable = match lowerer.define(&mut module, k, Some(symbol)) {
            Ok(_) => None,
            Err(JitError::Unsupported { detail, .. }) => Some(detail),
            Err(e) => return Err(e),
        };
        kernels.push(AotKernel {
            name: k.name.clone(),
            symbol: symbol.clone(),
            unavailable,
        });
    }
    let object = module.finish().emit().map_err(|e| backend("", &e))?;

    // The entry drivers.
    let mut entries = Vec::new();
    let mut drivers = Vec::new();
    for (f, symbol) in plan.functions.iter().zip(&entry_symbols) {
        let (unavailable, driver) = match Driver::new(plan, f, &kernels, symbol) {
            Ok(d) => (None, Some(d)),
            Err(why) => (Some(why), None),
        };
        entries.push(AotEntry {
            name: f.name.clone(),
            symbol: symbol.clone(),
            unavailable,
        });
        drivers.push(driver);
    }

    let cpu = if opts.native_cpu {
        "the build machine's CPU features (like -march=native)"
    } else {
        "the architecture's baseline CPU features"
    };
    let header = header(&HeaderCx {
        plan,
        model,
        arch: &arch,
        libm_prefix: &libm_prefix,
        cpu,
        fma,
        kernels: &kernels,
        entries: &entries,
        drivers: &drivers,
        header_file,
    });
    let runtime_c = runtime_c(model, header_file, &libm_prefix, &drivers);
    Ok(AotOutput {
        object,
        header,
        runtime_c,
        kernels,
        entries,
    })
}

/// `s` with every character that cannot appear in a C identifier replaced by `_`, and a `_`
/// in front of a leading digit.
pub fn c_ident(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// `name`, or `name_2`, `name_3`... the first not yet taken (then taken).
fn unique(taken: &mut HashSet<String>, name: String) -> String {
    let mut n = name.clone();
    let mut i = 2;
    while taken.contains(&n) {
        n = format!("{name}_{i}");
        i += 1;
    }
    taken.insert(n.clone());
    n
}

const C_KEYWORDS: &[&str] = &[
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "bool",
    "true",
    "false",
    "alignas",
    "alignof",
    "static_assert",
    "thread_local",
    "nullptr",
    "typeof",
    "int64_t",
    "int32_t",
    "uint8_t",
    "uint16_t",
    "uint64_t",
    "size_t",
    "NULL",
    "malloc",
    "free",
    "memcpy",
    "class",
    "new",
    "delete",
    "this",
    "template",
    "namespace",
    "operator",
    "private",
    "public",
    "protected",
    "virtual",
];

/// A C parameter name for a user-given name: a C identifier that is no keyword and does not
/// start with `mlc_` (the driver's own locals), unique among `taken`.
fn c_param(taken: &mut HashSet<String>, name: &str) -> String {
    let mut n = c_ident(name);
    if n.is_empty() || C_KEYWORDS.contains(&n.as_str()) || n.starts_with("mlc_") || n.starts_with("__") {
        n.push('_');
    }
    unique(taken, n)
}

/// The C type of an element.
fn c_type(d: DType) -> &'static str {
    match d {
        DType::F32 => "float",
        DType::I32 => "int32_t",
        DType::I64 => "int64_t",
        DType::Bool => "uint8_t",
        DType::F16 | DType::BF16 => "uint16_t",
    }
}

/// An `int64_t` C literal.
fn c_int(v: i64) -> String {
    if v == i64::MIN {
        "INT64_MIN".into()
    } else if i32::try_from(v).is_ok() {
        v.to_string()
    } else {
        format!("INT64_C({v})")
    }
}

/// An `f32` C literal that reads back as exactly `v`.
fn c_float(v: f32) -> String {
    if v.is_nan() {
        "NAN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "INFINITY".into() } else { "-INFINITY".into() }
    } else {
        // `{:e}` is the shortest form that round-trips, in a syntax C reads.
        format!("{v:e}f")
    }
}

/// A dim as a C expression (`int64_t`) over the symbols' C names.
fn c_dim(d: &Dim, syms: &HashMap<String, String>) -> String {
    let terms: Vec<String> = d
        .terms()
        .map(|(mono, c)| {
            let mut factors: Vec<String> = mono
                .iter()
                .map(|s| syms.get(s).cloned().unwrap_or_else(|| s.clone()))
                .collect();
            if c != 1 || factors.is_empty() {
                factors.insert(0, c_int(c));
            }
            factors.join(" * ")
        })
        .collect();
    match terms.len() {
        0 => "0".into(),
        1 => terms[0].clone(),
        _ => format!("({})", terms.join(" + ")),
    }
}

/// An index expression as C, with `dim(i)` for the kernel's dim `i`; division and remainder
/// through the zero-safe helpers when `helpers`, as plain `/` and `%` otherwise (comments).
fn c_iexpr(e: &IExpr, dim: &dyn Fn(u32) -> String, helpers: bool) -> String {
    let bin = |a: &IExpr, b: &IExpr, op: &str, f: &str| {
        let (a, b) = (c_iexpr(a, dim, helpers), c_iexpr(b, dim, helpers));
        if helpers && !f.is_empty() {
            format!("{f}({a}, {b})")
        } else {
            format!("({a} {op} {b})")
        }
    };
    match e {
        IExpr::Const(c) => c_int(*c),
        IExpr::Var(v) => format!("i{v}"),
        IExpr::Dim(d) => dim(*d),
        IExpr::Add(a, b) => bin(a, b, "+", ""),
        IExpr::Mul(a, b) => bin(a, b, "*", ""),
        IExpr::Div(a, b) => bin(a, b, "/", "mlc_div"),
        IExpr::Rem(a, b) => bin(a, b, "%", "mlc_rem"),
    }
}

/// A C comment's text (no `*/` inside).
fn comment_safe(s: &str) -> String {
    s.replace("*/", "* /")
}

/// `text` split into lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` as a wrapped C block comment.
fn block_comment(text: &str) -> String {
    let lines: Vec<String> = wrap(&comment_safe(text), 92);
    let mut out = String::from("/* ");
    out.push_str(&lines.join("\n * "));
    out.push_str(" */");
    out
}

/// The C driver of one entry point.
struct Driver {
    symbol: String,
    /// `int64_t B, const float *x, ...`
    params: Vec<String>,
    /// One line per parameter for the header comment.
    doc: Vec<String>,
    /// The definitions the body needs (constants), before the function.
    statics: String,
    body: String,
}

impl Driver {
    /// The driver of `f`, or why there is none.
    fn new(plan: &ModulePlan, f: &FunctionPlan, kernels: &[AotKernel], symbol: &str) -> Result<Driver, String> {
        let (mut matmuls, mut attentions, mut ops, mut loops) = (0, 0, 0, 0);
        for s in &f.steps {
            match s {
                Step::Kernel { .. } => {}
                Step::MatMul { .. } => matmuls += 1,
                Step::Attention { .. } => attentions += 1,
                Step::Op { .. } => ops += 1,
                Step::Loop { .. } => loops += 1,
            }
        }
        if matmuls + attentions + ops + loops > 0 {
            let mut what = Vec::new();
            for (n, s) in [
                (matmuls, "matrix product"),
                (attentions, "attention"),
                (ops, "reference op"),
                (loops, "loop"),
            ] {
                if n > 0 {
                    what.push(format!("{n} {s} step{}", if n == 1 { "" } else { "s" }));
                }
            }
            return Err(format!(
                "its plan has {} (run by the mlc runtime's libraries: GEMM, reference ops, the loop executor), and the AOT object holds generated kernels only",
                what.join(", ")
            ));
        }
        for s in &f.steps {
            if let Step::Kernel { kernel, .. } = s {
                let k = kernels
                    .get(*kernel as usize)
                    .ok_or_else(|| format!("internal: kernel {kernel} out of range"))?;
                if let Some(why) = &k.unavailable {
                    return Err(format!("kernel `{}` is not in the object: {why}", k.name));
                }
            }
        }
        if let Some(b) = f.bufs.iter().find(|b| matches!(b.ty.dtype, DType::F16 | DType::BF16)) {
            return Err(format!(
                "buffer `{}` is {}, which the C driver does not handle",
                b.name, b.ty.dtype
            ));
        }

        let n = f.bufs.len();
        let mut taken = HashSet::new();
        // Dims: the symbols of the inputs' shapes in order, then any other.
        let mut sym_order: Vec<String> = Vec::new();
        let mut add_syms = |d: &Dim| {
            for mono in d.terms().map(|(m, _)| m) {
                for s in mono {
                    if !sym_order.contains(s) {
                        sym_order.push(s.clone());
                    }
                }
            }
        };
        for &b in &f.inputs {
            f.bufs[b as usize].ty.shape.iter().for_each(&mut add_syms);
        }
        for b in &f.bufs {
            b.ty.shape.iter().for_each(&mut add_syms);
        }
        for s in &f.steps {
            if let Step::Kernel { dims, .. } = s {
                dims.iter().for_each(&mut add_syms);
            }
        }
        let mut syms = HashMap::new();
        let mut params = Vec::new();
        let mut doc = Vec::new();
        for s in &sym_order {
            let c = c_param(&mut taken, s);
            params.push(format!("int64_t {c}"));
            doc.push(format!("{c}: the size of dim {s}"));
            syms.insert(s.clone(), c);
        }
        let shape = |b: &PlanBuf| {
            let dims: Vec<String> = b.ty.shape.iter().map(|d| d.to_string()).collect();
            format!("{}[{}]", b.ty.dtype, dims.join(", "))
        };

        // Where each buffer's address comes from.
        let mut source: Vec<Option<String>> = vec![None; n];
        for &b in &f.inputs {
            let pb = &f.bufs[b as usize];
            let c = c_param(&mut taken, &pb.name);
            params.push(format!("const {} *{c}", c_type(pb.ty.dtype)));
            doc.push(format!("{c}: input `{}`, {}", pb.name, shape(pb)));
            source[b as usize] = Some(format!("(void *){c}"));
        }
        let mut weights: HashMap<&str, String> = HashMap::new();
        for (i, pb) in f.bufs.iter().enumerate() {
            if let BufKind::Param(name) = &pb.kind {
                let c = match weights.get(name.as_str()) {
                    Some(c) => c.clone(),
                    None => {
                        let c = c_param(&mut taken, name);
                        params.push(format!("const {} *{c}", c_type(pb.ty.dtype)));
                        doc.push(format!("{c}: weight `{name}`, {}", shape(pb)));
                        weights.insert(name, c.clone());
                        c
                    }
                };
                source[i] = Some(format!("(void *){c}"));
            }
        }
        let mut statics = String::new();
        for (i, pb) in f.bufs.iter().enumerate() {
            if let BufKind::Const(lit) = &pb.kind {
                let name = format!("{symbol}_const{i}");
                let values = c_literal(pb.ty.dtype, &lit.data).ok_or_else(|| {
                    format!(
                        "constant `{}` ({}) has data the C driver cannot write",
                        pb.name,
                        shape(pb)
                    )
                })?;
                let want = pb.ty.shape.iter().map(|d| d.as_const()).product::<Option<i64>>();
                if want != Some(values.len() as i64) {
                    return Err(format!(
                        "constant `{}` does not have its buffer's {} elements",
                        pb.name,
                        shape(pb)
                    ));
                }
                let _ = writeln!(
                    statics,
                    "static const {} {name}[{}] = {{{}}};",
                    c_type(pb.ty.dtype),
                    values.len().max(1),
                    if values.is_empty() {
                        "0".into()
                    } else {
                        values.join(", ")
                    }
                );
                source[i] = Some(format!("(void *){name}"));
            }
        }
        // Outputs: the first output of a temporary is written in place; any other output is a
        // copy at the end.
        let mut copies = Vec::new();
        for (name, b) in &f.outputs {
            let pb = &f.bufs[*b as usize];
            let c = c_param(&mut taken, name);
            params.push(format!("{} *{c}", c_type(pb.ty.dtype)));
            doc.push(format!("{c}: output `{name}`, {}", shape(pb)));
            if matches!(pb.kind, BufKind::Temp) && source[*b as usize].is_none() {
                source[*b as usize] = Some(format!("(void *){c}"));
            } else {
                copies.push((c, *b));
            }
        }
        let nbytes = |b: &PlanBuf| {
            format!(
                "mlc_nbytes({}, {})",
                c_dim(&numel(&b.ty.shape), &syms),
                b.ty.dtype.size_bytes()
            )
        };

        // Temporaries: allocated before their first step, freed after their last.
        let mut first = vec![usize::MAX; n];
        let mut last = vec![0usize; n];
        for (s, step) in f.steps.iter().enumerate() {
            if let Step::Kernel { bufs, .. } = step {
                for &b in bufs {
                    let b = b as usize;
                    first[b] = first[b].min(s);
                    last[b] = s;
                }
            }
        }
        let temps: Vec<usize> = (0..n).filter(|&b| source[b].is_none()).collect();
        let mut body = String::new();
        let _ = writeln!(body, "    void *mlc_b[{}] = {{0}};", n.max(1));
        if !temps.is_empty() {
            let _ = writeln!(body, "    int mlc_status = 0;");
        }
        for (b, src) in source.iter().enumerate() {
            if let Some(src) = src {
                let _ = writeln!(body, "    mlc_b[{b}] = {src};");
            }
        }
        for (s, step) in f.steps.iter().enumerate() {
            let Step::Kernel { kernel, bufs, dims } = step else {
                continue;
            };
            for &b in &temps {
                if first[b] == s {
                    let _ = writeln!(
                        body,
                        "    mlc_b[{b}] = mlc_alloc({}); /* {} */",
                        nbytes(&f.bufs[b]),
                        comment_safe(&buf_label(f, b))
                    );
                    let _ = writeln!(body, "    if (!mlc_b[{b}]) {{ mlc_status = 1; goto done; }}");
                }
            }
            let k: &KernelFn = &plan.kernels[*kernel as usize];
            let _ = writeln!(body, "    {{");
            let ptrs: Vec<String> = bufs.iter().map(|b| format!("mlc_b[{b}]")).collect();
            if ptrs.is_empty() {
                let _ = writeln!(body, "        void *const *mlc_k = 0;");
            } else {
                let _ = writeln!(body, "        void *const mlc_k[] = {{{}}};", ptrs.join(", "));
            }
            if dims.is_empty() {
                let _ = writeln!(body, "        const int64_t *mlc_d = 0;");
            } else {
                let ds: Vec<String> = dims.iter().map(|d| c_dim(d, &syms)).collect();
                let _ = writeln!(body, "        const int64_t mlc_d[] = {{{}}};", ds.join(", "));
            }
            let extent = c_iexpr(&k.parallel.1, &|i| format!("mlc_d[{i}]"), true);
            let _ = writeln!(
                body,
                "        {}(mlc_k, mlc_d, 0, {extent});",
                kernels[*kernel as usize].symbol
            );
            let _ = writeln!(body, "    }}");
            for &b in &temps {
                if last[b] == s && first[b] != usize::MAX {
                    let _ = writeln!(body, "    free(mlc_b[{b}]);");
                    let _ = writeln!(body, "    mlc_b[{b}] = 0;");
                }
            }
        }
        for (c, b) in &copies {
            let _ = writeln!(
                body,
                "    if (mlc_b[{b}] != (void *){c}) memcpy({c}, mlc_b[{b}], {});",
                nbytes(&f.bufs[*b as usize])
            );
        }
        if temps.is_empty() {
            let _ = writeln!(body, "    (void)mlc_b;");
            let _ = writeln!(body, "    return 0;");
        } else {
            let _ = writeln!(body, "done:");
            for &b in &temps {
                let _ = writeln!(body, "    free(mlc_b[{b}]);");
            }
            let _ = writeln!(body, "    return mlc_status;");
        }
        if params.is_empty() {
            params.push("void".into());
        }
        Ok(Driver {
            symbol: symbol.to_string(),
            params,
            doc,
            statics,
            body,
        })
    }

    fn prototype(&self) -> String {
        format!("int {}({})", self.symbol, self.params.join(", "))
    }
}

/// How a plan buffer is known: the output, input or weight it holds, or its number.
fn buf_label(f: &FunctionPlan, b: usize) -> String {
    if let Some((name, _)) = f.outputs.iter().find(|(_, o)| *o as usize == b) {
        return format!("output {name}");
    }
    let pb = &f.bufs[b];
    match &pb.kind {
        BufKind::Input => format!("input {}", pb.name),
        BufKind::Param(name) => format!("weight {name}"),
        BufKind::Const(_) => format!("constant b{b}"),
        BufKind::Temp if pb.name.is_empty() => format!("temporary b{b}"),
        BufKind::Temp => format!("temporary b{b} ({})", pb.name),
    }
}

/// A literal's elements as C literals of `dtype`, if the data fits the dtype.
fn c_literal(dtype: DType, data: &LiteralData) -> Option<Vec<String>> {
    Some(match (dtype, data) {
        (DType::F32, LiteralData::Float(v)) => v.iter().map(|&x| c_float(x as f32)).collect(),
        (DType::F32, LiteralData::Int(v)) => v.iter().map(|&x| c_float(x as f32)).collect(),
        (DType::I32, LiteralData::Int(v)) => v.iter().map(|&x| (x as i32).to_string()).collect(),
        (DType::I64, LiteralData::Int(v)) => v.iter().map(|&x| c_int(x)).collect(),
        (DType::Bool, LiteralData::Bool(v)) => v.iter().map(|&x| u8::from(x).to_string()).collect(),
        (DType::I32 | DType::I64, LiteralData::Bool(v)) => v.iter().map(|&x| u8::from(x).to_string()).collect(),
        _ => return None,
    })
}

struct HeaderCx<'a> {
    plan: &'a ModulePlan,
    model: &'a str,
    arch: &'a str,
    libm_prefix: &'a str,
    cpu: &'a str,
    fma: bool,
    kernels: &'a [AotKernel],
    entries: &'a [AotEntry],
    drivers: &'a [Option<Driver>],
    header_file: &'a str,
}

fn include_guard(header_file: &str) -> String {
    let g = c_ident(&header_file.to_uppercase());
    format!("MLC_AOT_{}", g.trim_start_matches('_'))
}

fn header(cx: &HeaderCx) -> String {
    let mut h = String::new();
    let guard = include_guard(cx.header_file);
    let object = cx.header_file.strip_suffix(".h").unwrap_or(cx.header_file);
    let _ = write!(
        h,
        "\
/* Generated by mlc (`mlc build --emit obj`) from model `{model}`. Do not edit.
 *
 * {object}.o: the kernels, compiled by Cranelift for {arch} (position-independent code)
 *   with {cpu};
 *   fused multiply-add {fma}.
 * {object}.rt.c: the scalar functions the kernels call ({libm_prefix}*) and the entry drivers.
 *
 * Build:  cc -O2 -c {object}.rt.c && cc main.c {object}.o {object}.rt.o -lm
 *
 * Kernel calling convention: `bufs[j]` is the base address of buffer j (dense, row-major, of
 * its dtype: f32 float, i32 int32_t, i64 int64_t, bool uint8_t holding 0 or 1), `dims[j]` the
 * value of dim j; the call runs the kernel for every parallel index p in lo..hi (nothing if
 * hi <= lo). Iterations are independent: split the full range over threads as you like, as long
 * as concurrent calls write disjoint ranges. Integer division by zero inside a kernel gives 0.
 * Numerics are the mlc CPU JIT's; the scalar functions in {object}.rt.c call the C library
 * (expf, logf, tanhf, sinf, cosf, powf, fmodf: bit-identical to mlc where mlc uses the same C
 * library) and erf is mlc's own double-precision series.
 */
#ifndef {guard}
#define {guard}

#include <stdint.h>

#ifdef __cplusplus
extern \"C\" {{
#endif

/* ---- kernels ---- */

",
        model = comment_safe(cx.model),
        libm_prefix = cx.libm_prefix,
        arch = cx.arch,
        cpu = cx.cpu,
        fma = if cx.fma { "on (a*b+c rounds once)" } else { "off" },
    );

    // Where each kernel is used, for its comment.
    let mut uses: Vec<Vec<String>> = vec![Vec::new(); cx.plan.kernels.len()];
    for f in &cx.plan.functions {
        collect_uses(f, &f.name, &mut uses);
    }
    for ((k, ak), uses) in cx.plan.kernels.iter().zip(cx.kernels).zip(&uses) {
        let _ = writeln!(h, "/* kernel `{}`", comment_safe(&k.name));
        for (j, b) in k.bufs.iter().enumerate() {
            let access = if b.access == Access::Read { "read" } else { "write" };
            let _ = writeln!(
                h,
                " *   bufs[{j}]  {:<8} {:<4} {access:<5} ({}{} *)",
                comment_safe(&b.name),
                b.dtype,
                if b.access == Access::Read { "const " } else { "" },
                c_type(b.dtype)
            );
        }
        for (j, d) in k.dims.iter().enumerate() {
            let _ = writeln!(h, " *   dims[{j}]  {}", comment_safe(d));
        }
        let extent = c_iexpr(&k.parallel.1, &|i| format!("dims[{i}]"), false);
        let _ = writeln!(h, " *   parallel range: 0..{}", comment_safe(&extent));
        for u in uses {
            let _ = writeln!(h, " *   {}", comment_safe(u));
        }
        match &ak.unavailable {
            None => {
                let _ = writeln!(h, " */");
                let _ = writeln!(
                    h,
                    "void {}(void *const *bufs, const int64_t *dims, int64_t lo, int64_t hi);\n",
                    ak.symbol
                );
            }
            Some(why) => {
                let text = format!("NOT AVAILABLE in the object: {why}");
                for line in wrap(&text, 90) {
                    let _ = writeln!(h, " *   {}", comment_safe(&line));
                }
                let _ = writeln!(h, " */\n");
            }
        }
    }

    let _ = writeln!(h, "/* ---- entry points ---- */\n");
    for (e, d) in cx.entries.iter().zip(cx.drivers) {
        match (d, &e.unavailable) {
            (Some(d), _) => {
                let _ = writeln!(h, "/* entry `{}`: runs its kernels in order.", comment_safe(&e.name));
                for line in &d.doc {
                    let _ = writeln!(h, " *   {}", comment_safe(line));
                }
                let _ = writeln!(
                    h,
                    " * Shapes must agree with the dims; outputs must not overlap inputs or weights. Temporaries\n * come from malloc. Returns 0, or 1 when an allocation fails.\n */"
                );
                let _ = writeln!(h, "{};\n", d.prototype());
            }
            (None, why) => {
                let text = format!(
                    "entry `{}`: NOT AVAILABLE in the AOT object yet: {}. Its kernels, if any, are declared above and can be called directly; `mlc dump-ir --after fuse` shows its plan.",
                    e.name,
                    why.as_deref().unwrap_or("unknown")
                );
                let _ = writeln!(h, "{}\n", block_comment(&text));
            }
        }
    }
    let _ = write!(h, "#ifdef __cplusplus\n}}\n#endif\n\n#endif /* {guard} */\n",);
    h
}

/// Records, for each kernel, the steps that run it: `used by forward: bufs = {y, x, b, s}`.
fn collect_uses(f: &FunctionPlan, path: &str, uses: &mut [Vec<String>]) {
    for s in &f.steps {
        match s {
            Step::Kernel { kernel, bufs, dims } => {
                let names: Vec<String> = bufs
                    .iter()
                    .map(|&b| {
                        let b = b as usize;
                        if let Some((name, _)) = f.outputs.iter().find(|(_, o)| *o as usize == b) {
                            return name.clone();
                        }
                        let pb = &f.bufs[b];
                        match &pb.kind {
                            BufKind::Param(name) => name.clone(),
                            _ if !pb.name.is_empty() => pb.name.clone(),
                            _ => format!("b{b}"),
                        }
                    })
                    .collect();
                let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                if let Some(u) = uses.get_mut(*kernel as usize) {
                    u.push(format!(
                        "used by {path}: bufs = {{{}}}, dims = {{{}}}",
                        names.join(", "),
                        dims.join(", ")
                    ));
                }
            }
            Step::Loop { body, .. } => collect_uses(body, &format!("{path} (loop body)"), uses),
            _ => {}
        }
    }
}

fn runtime_c(model: &str, header_file: &str, libm_prefix: &str, drivers: &[Option<Driver>]) -> String {
    let mut c = String::new();
    let _ = write!(
        c,
        "\
/* Generated by mlc (`mlc build --emit obj`) from model `{}`. Do not edit.
 * The scalar functions the kernels of the object call, and the entry drivers. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include \"{header_file}\"

",
        comment_safe(model)
    );
    let _ = writeln!(c, "/* Prototypes of the scalar functions (the object imports them). */");
    let defs: Vec<String> = Libm::ALL
        .iter()
        .map(|f| f.c_definition(&format!("{libm_prefix}{}", f.base_name())))
        .collect();
    for def in &defs {
        let proto = def.split_once(") {").map_or(def.as_str(), |(p, _)| p);
        let _ = writeln!(c, "{proto});");
    }
    c.push('\n');
    for def in &defs {
        let _ = writeln!(c, "{def}\n");
    }
    let _ = write!(
        c,
        "\
/* Zero-safe index arithmetic (as the kernels' own). */
static inline int64_t mlc_div(int64_t a, int64_t b) {{ return b == 0 ? 0 : a / b; }}
static inline int64_t mlc_rem(int64_t a, int64_t b) {{ return b == 0 ? 0 : a % b; }}
/* The bytes of `n` elements; a negative count is empty. */
static inline size_t mlc_nbytes(int64_t n, size_t elem) {{ return n > 0 ? (size_t)n * elem : 0; }}
/* malloc that returns a live pointer for an empty buffer too. */
static inline void *mlc_alloc(size_t bytes) {{ return malloc(bytes ? bytes : 1); }}

"
    );
    for d in drivers.iter().flatten() {
        c.push_str(&d.statics);
        let _ = writeln!(c, "{} {{\n{}}}\n", d.prototype(), d.body);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_c_identifiers() {
        assert_eq!(c_ident("layers.0.attn.q_proj"), "layers_0_attn_q_proj");
        assert_eq!(c_ident("0x"), "_0x");
        let mut taken = HashSet::new();
        assert_eq!(c_param(&mut taken, "int"), "int_");
        assert_eq!(c_param(&mut taken, "mlc_b"), "mlc_b_");
        assert_eq!(c_param(&mut taken, "a.b"), "a_b");
        assert_eq!(c_param(&mut taken, "a-b"), "a_b_2");
    }

    #[test]
    fn literals_read_back_exactly() {
        for v in [0.1f32, -2.5e-30, 3.4e38, 1.0, -0.0, f32::MIN_POSITIVE / 3.0] {
            let s = c_float(v);
            let back: f32 = s.trim_end_matches('f').parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{s}");
        }
        assert_eq!(c_float(f32::NEG_INFINITY), "-INFINITY");
        assert_eq!(c_int(i64::MIN), "INT64_MIN");
        assert_eq!(c_int(1 << 40), "INT64_C(1099511627776)");
    }

    #[test]
    fn dims_and_indices_as_c() {
        let syms = HashMap::from([("B".to_string(), "B".to_string()), ("T".to_string(), "T_".to_string())]);
        let d = &(&Dim::sym("B") * &Dim::sym("T")) * &Dim::c(3);
        assert_eq!(c_dim(&d, &syms), "3 * B * T_");
        assert_eq!(c_dim(&(&Dim::sym("T") + &Dim::c(1)), &syms), "(1 + T_)");
        assert_eq!(c_dim(&Dim::c(0), &syms), "0");
        let e = IExpr::Dim(0) / IExpr::Dim(1);
        assert_eq!(c_iexpr(&e, &|i| format!("d[{i}]"), true), "mlc_div(d[0], d[1])");
        assert_eq!(c_iexpr(&e, &|i| format!("d[{i}]"), false), "(d[0] / d[1])");
    }

    #[test]
    fn comments_wrap() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(block_comment("x */ y"), "/* x * / y */");
    }
}
