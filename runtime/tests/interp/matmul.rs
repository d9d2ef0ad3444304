use mlc_ir::{DType, Op};
use mlc_runtime::Tensor;

use crate::common::*;

fn matmul(a: (&[&str], Tensor), b: (&[&str], Tensor)) -> Tensor {
    let mut g = G::new();
    let x = g.input("a", a.1.dtype(), a.0);
    let y = g.input("b", b.1.dtype(), b.0);
    let r = g.op(Op::MatMul, &[x, y]);
    g.out("c", r);
    run1(g, vec![("a", a.1), ("b", b.1)])
}

#[test]
fn matmul_2x3_by_3x2() {
    let a = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = f32s(&[3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    let c = matmul((&["2", "3"], a), (&["3", "2"], b));
    assert_eq!(
        (c.shape(), c.as_f32().unwrap()),
        (&[2, 2][..], &[58.0, 64.0, 139.0, 154.0][..])
    );
}

#[test]
fn matmul_broadcasts_batch_axes() {
    // a: [2, 1, 2] (two row vectors), b: [2, 2] shared.
    let a = f32s(&[2, 1, 2], &[1.0, 0.0, 0.0, 1.0]);
    let b = f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let c = matmul((&["2", "1", "2"], a), (&["2", "2"], b));
    assert_eq!(
        (c.shape(), c.as_f32().unwrap()),
        (&[2, 1, 2][..], &[1.0, 2.0, 3.0, 4.0][..])
    );
    // a: [1, 2, 1], b: [3, 1, 1]: batch broadcasts to 3.
    let a = f32s(&[1, 2, 1], &[1.0, 2.0]);
    let b = f32s(&[3, 1, 1], &[1.0, 10.0, 100.0]);
    let c = matmul((&["1", "2", "1"], a), (&["3", "1", "1"], b));
    assert_eq!(c.shape(), &[3, 2, 1]);
    assert_eq!(c.as_f32().unwrap(), &[1.0, 2.0, 10.0, 20.0, 100.0, 200.0]);
}

#[test]
fn matmul_integers_and_empty_inner_axis() {
    let a = Tensor::from_i32(&[1, 2], vec![3, -4]);
    let b = Tensor::from_i32(&[2, 1], vec![5, 6]);
    let c = matmul((&["1", "2"], a), (&["2", "1"], b));
    assert_eq!(c.as_i32().unwrap(), &[-9]);
    let c = matmul(
        (&["2", "0"], Tensor::zeros(DType::F32, &[2, 0])),
        (&["0", "1"], f32s(&[0, 1], &[])),
    );
    assert_eq!(c.as_f32().unwrap(), &[0.0, 0.0]);
    assert!(c.as_f32().unwrap().iter().all(|x| x.is_sign_positive()));
}
