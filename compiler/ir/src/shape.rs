//! Symbolic dimensions and shapes.
//!
//! A [`Dim`] is a polynomial with integer coefficients over named symbols (`B`, `T`, `N`) that are
//! bound when a model runs. Keeping dims in a canonical polynomial form makes equality checks
//! exact: `B*T` equals `T*B`, `N + 1 - 1` equals `N`.

use std::collections::HashMap;
use std::fmt;

/// A dimension: a canonical polynomial over symbol names.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dim {
    /// Monomials (sorted symbol names, with repetition for powers) with their coefficients,
    /// sorted by monomial, each once, no coefficient zero; the empty monomial is the constant
    /// term (first, when present). A sorted vector rather than a map: almost every dim is a
    /// constant or a single symbol, and shapes are cloned and compared everywhere.
    terms: Vec<(Vec<String>, i64)>,
}

/// A shape: one [`Dim`] per axis.
pub type Shape = Vec<Dim>;

/// Binding of symbol names to sizes at run time.
pub type Bindings = HashMap<String, i64>;

impl Dim {
    /// A constant dimension.
    pub fn c(value: i64) -> Dim {
        let terms = if value == 0 {
            Vec::new()
        } else {
            vec![(Vec::new(), value)]
        };
        Dim { terms }
    }

    /// A named symbolic dimension.
    pub fn sym(name: &str) -> Dim {
        Dim {
            terms: vec![(vec![name.to_string()], 1)],
        }
    }

    /// The canonical form of a sum of terms: sorted, like monomials combined, zeros dropped.
    fn from_terms(mut terms: Vec<(Vec<String>, i64)>) -> Dim {
        terms.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Vec<String>, i64)> = Vec::with_capacity(terms.len());
        for (m, c) in terms {
            match out.last_mut() {
                Some((last, sum)) if *last == m => *sum = sum.saturating_add(c),
                _ => out.push((m, c)),
            }
        }
        out.retain(|(_, c)| *c != 0);
        Dim { terms: out }
    }

    /// The value if the dimension is a constant.
    pub fn as_const(&self) -> Option<i64> {
        match self.terms.as_slice() {
            [] => Some(0),
            [(m, c)] if m.is_empty() => Some(*c),
            _ => None,
        }
    }

    /// True for a constant dimension.
    pub fn is_const(&self) -> bool {
        self.as_const().is_some()
    }

    /// The terms of the polynomial: each monomial (its symbols, repeated for powers; empty for
    /// the constant) with its non-zero coefficient, in a fixed order.
    pub fn terms(&self) -> impl Iterator<Item = (&[String], i64)> {
        self.terms.iter().map(|(m, c)| (m.as_slice(), *c))
    }

    /// The symbols the dimension mentions.
    pub fn symbols(&self) -> Vec<String> {
        let mut out: Vec<String> = self.terms.iter().flat_map(|(m, _)| m).cloned().collect();
        out.sort();
        out.dedup();
        out
    }

    /// Evaluates with the given bindings; `Err(symbol)` names an unbound symbol.
    pub fn eval(&self, bindings: &Bindings) -> Result<i64, String> {
        let mut total: i64 = 0;
        for (mono, coeff) in &self.terms {
            let mut v = *coeff;
            for s in mono {
                let b = *bindings.get(s).ok_or_else(|| s.clone())?;
                v = v.saturating_mul(b);
            }
            total = total.saturating_add(v);
        }
        Ok(total)
    }

    /// Exact division by a constant, if every coefficient is divisible.
    pub fn div_exact(&self, d: i64) -> Option<Dim> {
        if d == 0 || self.terms.iter().any(|(_, c)| c % d != 0) {
            return None;
        }
        Some(Dim {
            terms: self.terms.iter().map(|(m, c)| (m.clone(), c / d)).collect(),
        })
    }

    /// Replaces symbols by other dims (used when a block's symbolic dims are instantiated).
    pub fn substitute(&self, map: &HashMap<String, Dim>) -> Dim {
        let mut out = Dim::c(0);
        for (mono, coeff) in &self.terms {
            let mut term = Dim::c(*coeff);
            for s in mono {
                term = &term * &map.get(s).cloned().unwrap_or_else(|| Dim::sym(s));
            }
            out = &out + &term;
        }
        out
    }

    /// Parses the printed form (`B*T + 3`, `2*N - 1`, `7`).
    pub fn parse(text: &str) -> Result<Dim, String> {
        let s: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if s.is_empty() {
            return Err("empty dimension".into());
        }
        let mut out = Dim::c(0);
        // Split into signed terms at top-level + and - (not a leading sign).
        let mut start = 0;
        let bytes = s.as_bytes();
        let mut terms = Vec::new();
        for i in 1..=bytes.len() {
            if i == bytes.len() || ((bytes[i] == b'+' || bytes[i] == b'-') && bytes[i - 1] != b'*') {
                terms.push(&s[start..i]);
                start = i;
            }
        }
        for t in terms {
            let (neg, body) = match t.as_bytes()[0] {
                b'-' => (true, &t[1..]),
                b'+' => (false, &t[1..]),
                _ => (false, t),
            };
            let mut term = Dim::c(if neg { -1 } else { 1 });
            for f in body.split('*') {
                let factor = if let Ok(v) = f.parse::<i64>() {
                    Dim::c(v)
                } else if !f.is_empty()
                    && f.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    Dim::sym(f)
                } else {
                    return Err(format!("bad dimension `{text}`"));
                };
                term = &term * &factor;
            }
            out = &out + &term;
        }
        Ok(out)
    }
}

impl std::ops::Add for &Dim {
    type Output = Dim;
    fn add(self, rhs: &Dim) -> Dim {
        if let (Some(a), Some(b)) = (self.as_const(), rhs.as_const()) {
            return Dim::c(a.saturating_add(b));
        }
        Dim::from_terms(self.terms.iter().chain(&rhs.terms).cloned().collect())
    }
}

impl std::ops::Sub for &Dim {
    type Output = Dim;
    fn sub(self, rhs: &Dim) -> Dim {
        self + &(rhs * &Dim::c(-1))
    }
}

impl std::ops::Mul for &Dim {
    type Output = Dim;
    fn mul(self, rhs: &Dim) -> Dim {
        // A constant factor scales the coefficients and keeps the order of the monomials.
        let scaled =
            |d: &Dim, k: i64| Dim::from_terms(d.terms.iter().map(|(m, c)| (m.clone(), c.saturating_mul(k))).collect());
        match (self.as_const(), rhs.as_const()) {
            (Some(a), Some(b)) => return Dim::c(a.saturating_mul(b)),
            (Some(a), None) => return scaled(rhs, a),
            (None, Some(b)) => return scaled(self, b),
            (None, None) => {}
        }
        let mut terms = Vec::with_capacity(self.terms.len() * rhs.terms.len());
        for (ma, ca) in &self.terms {
            for (mb, cb) in &rhs.terms {
                let mut m: Vec<String> = ma.iter().chain(mb).cloned().collect();
                m.sort();
                terms.push((m, ca.saturating_mul(*cb)));
            }
        }
        Dim::from_terms(terms)
    }
}

impl From<i64> for Dim {
    fn from(v: i64) -> Dim {
        Dim::c(v)
    }
}

impl fmt::Display for Dim {
    /// Highest-degree terms first, then by name; the constant last: `B*T + 2*N - 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.terms.is_empty() {
            return f.write_str("0");
        }
        let mut terms: Vec<(&Vec<String>, &i64)> = self.terms.iter().map(|(m, c)| (m, c)).collect();
        terms.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
        for (i, (mono, coeff)) in terms.into_iter().enumerate() {
            let mut c = *coeff;
            if i > 0 {
                f.write_str(if c < 0 { " - " } else { " + " })?;
                c = c.abs();
            } else if c < 0 && !mono.is_empty() {
                f.write_str("-")?;
                c = -c;
            }
            if mono.is_empty() {
                write!(f, "{c}")?;
            } else {
                if c != 1 {
                    write!(f, "{c}*")?;
                }
                f.write_str(&mono.join("*"))?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Prints a shape as `[B, T, 64]`.
pub fn shape_to_string(shape: &[Dim]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// The number of elements of a shape, as a dim.
pub fn numel(shape: &[Dim]) -> Dim {
    shape.iter().fold(Dim::c(1), |acc, d| &acc * d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_compare_equal() {
        let b = Dim::sym("B");
        let t = Dim::sym("T");
        assert_eq!(&b * &t, &t * &b);
        assert_eq!(&(&b + &Dim::c(1)) - &Dim::c(1), b);
        assert_eq!((&b * &Dim::c(4)).div_exact(2), Some(&b * &Dim::c(2)));
        assert_eq!(b.div_exact(2), None);
        // Constants on either side, and terms that cancel.
        assert_eq!(&(&(&b + &Dim::c(3)) * &Dim::c(2)) - &Dim::c(6), &b * &Dim::c(2));
        assert_eq!(&Dim::c(3) * &(&t + &b), &(&b * &Dim::c(3)) + &(&Dim::c(3) * &t));
        assert_eq!(&b * &Dim::c(0), Dim::c(0));
        assert_eq!((&(&b * &t) - &(&t * &b)).as_const(), Some(0));
        assert_eq!((&Dim::c(6) * &Dim::c(7)).as_const(), Some(42));
        assert_eq!((&b + &Dim::c(1)).as_const(), None);
        assert_eq!(
            &(&b + &Dim::c(1)) * &(&b - &Dim::c(1)),
            &(&b * &b) - &Dim::c(1),
            "(B + 1)(B - 1) = B*B - 1"
        );
    }

    #[test]
    fn print_parse_round_trip() {
        for s in ["0", "7", "-3", "B", "B*T", "B*T + 2*N - 1", "-N + 4", "B*B*T"] {
            let d = Dim::parse(s).unwrap();
            assert_eq!(d.to_string(), s);
            assert_eq!(Dim::parse(&d.to_string()).unwrap(), d);
        }
        assert!(Dim::parse("B+").is_err());
        assert!(Dim::parse("3x").is_err());
    }

    #[test]
    fn eval_binds_symbols() {
        let d = Dim::parse("B*T + 1").unwrap();
        let b = Bindings::from([("B".to_string(), 2), ("T".to_string(), 5)]);
        assert_eq!(d.eval(&b), Ok(11));
        assert_eq!(Dim::sym("N").eval(&b), Err("N".to_string()));
    }
}
