/* The C program of `compiler/tests/aot.rs`: links the object that `mlc build --emit obj` wrote
 * for `model.dsl` and runs it on fixed inputs.
 *
 * It prints one line per number: the inputs and weights it used (`in x 3 0.25`, `w b 0 0.1`),
 * so that the test feeds exactly these to the interpreter, then the outputs of the entry driver
 * `aot_forward` (`out y 7 ...`) and of one kernel called directly through the header
 * (`direct t 7 ...`). `%.9g` prints every float so that it reads back exactly. */
#include <stdint.h>
#include <stdio.h>

#include "model.h"
/* Written by the test from the header: `call_t_kernel`, a direct call of the kernel that
 * computes the output `t`. */
#include "direct.h"

enum { NB = 3, D = 5 };

static const float x[NB * D] = {
    -4.0f, -1.5f, 0.0f, 0.25f, 3.75f,
    1.0f, -0.5f, 2.5f, -3.0f, 0.125f,
    0.3f, 0.6f, -0.9f, 1.2f, -1.8f,
};
static const float s[NB] = {1.0f, -0.5f, 2.0f};
static const float b[D] = {0.1f, -0.2f, 0.3f, -0.4f, 0.5f};

static void print(const char *kind, const char *name, const float *v, int n) {
    int i;
    for (i = 0; i < n; i++) printf("%s %s %d %.9g\n", kind, name, i, v[i]);
}

int main(void) {
    int64_t B = NB;
    float y[NB * D], t[NB * D], c[NB * D], t_direct[NB * D];
    int rc;

    print("in", "x", x, NB * D);
    print("in", "s", s, NB);
    print("w", "b", b, D);

    rc = aot_forward(B, x, s, b, y, t, c);
    if (rc != 0) {
        fprintf(stderr, "aot_forward returned %d\n", rc);
        return 1;
    }
    print("out", "y", y, NB * D);
    print("out", "t", t, NB * D);
    print("out", "c", c, NB * D);

    call_t_kernel(B, x, s, b, t_direct);
    print("direct", "t", t_direct, NB * D);
    return 0;
}
