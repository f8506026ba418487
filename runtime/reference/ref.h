/* ref.h — the reference executor's kernels: every graph op, forward and
 * backward, in plain C, written for clarity, not speed. They compute in
 * double precision (ref_t) so that they are the oracle the compiled CPU and
 * GPU backends are tested against, and so that finite differences can check
 * every gradient tightly. They are never the fast path.
 *
 * Layouts are PyTorch's: activations NCHW, conv weights [out, in/groups,
 * kh, kw], linear weights [out, in]. Backward kernels take the upstream
 * gradient dy and write (not accumulate into) the input gradients; a caller
 * that needs accumulation adds the results.
 *
 *   ref_nn.h        conv2d, linear, matmul, pools, batchnorm, layernorm
 *   ref_pointwise.h activations, add/mul with broadcasting, concat,
 *                   softmax, losses, dropout */
#ifndef KILN_REF_H
#define KILN_REF_H

#include "runtime/reference/ref_nn.h"
#include "runtime/reference/ref_pointwise.h"

#endif
