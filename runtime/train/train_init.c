/* train_init.c — initial values of parameters, drawn from Philox so that
 * they are a pure function of (seed, parameter index, element index): the
 * same model and seed give the same weights on every run, on the CPU and
 * on the GPU, whatever order the parameters are filled in.
 *
 *   xavier_uniform  U(-a, a), a = sqrt(6 / (fan_in + fan_out))
 *   xavier_normal   N(0, s^2), s = sqrt(2 / (fan_in + fan_out))
 *   he_uniform      U(-a, a), a = sqrt(6 / fan_in)
 *   he_normal       N(0, s^2), s = sqrt(2 / fan_in)
 *   zeros, ones, const (init_value)
 *
 * (Glorot & Bengio 2010; He et al. 2015, fan_in mode for ReLU: torch.nn.
 * init's xavier_* and kaiming_*(nonlinearity='relu') with gain 1 and
 * sqrt(2).) fan_in = in_channels/groups * kh * kw for a convolution weight
 * [out, in/groups, kh, kw] and in for a linear one [out, in]; fan_out =
 * out * kh * kw.
 *
 * Random numbers. Element i of parameter k takes Philox uniforms from key
 * seed ^ TRAIN_INIT_KEY, stream k. Dropout uses key `seed` with every
 * 64-bit stream (step << 32 | layer), so a separate key is the only way
 * not to share numbers with it. Uniform: a * (2u - 1) with u = uniform i.
 * Normal: Box-Muller on the pair (2j, 2j+1) of uniforms, giving elements
 * 2j (cosine) and 2j+1 (sine); 1 - u keeps the logarithm finite. */
#include "runtime/train/train.h"

#include <math.h>

/* "INIT" in ASCII in the high word, and a splitmix constant below. */
#define TRAIN_INIT_KEY UINT64_C(0x494E49547F4A7C15)
#define TRAIN_TWO_PI 6.28318530717958647692

void train_init_fans(const ir_shape *s, int64_t *fan_in, int64_t *fan_out) {
  KILN_ASSERT(s->rank >= 1);
  if (s->rank == 1) {
    *fan_in = *fan_out = s->dim[0];
    return;
  }
  int64_t field = 1;
  for (int d = 2; d < s->rank; d++)
    field *= s->dim[d];
  *fan_in = s->dim[1] * field;
  *fan_out = s->dim[0] * field;
}

static void fill_uniform(float *out, int64_t n, double bound, uint64_t key,
                         uint64_t stream) {
  for (int64_t i = 0; i < n; i++) {
    double u = philox_uniform(key, stream, (uint64_t)i);
    out[i] = (float)(bound * (2 * u - 1));
  }
}

static void fill_normal(float *out, int64_t n, double std, uint64_t key,
                        uint64_t stream) {
  for (int64_t j = 0; 2 * j < n; j++) {
    double u1 = 1.0 - philox_uniform(key, stream, (uint64_t)(2 * j));
    double u2 = philox_uniform(key, stream, (uint64_t)(2 * j + 1));
    double r = std * sqrt(-2 * log(u1)), th = TRAIN_TWO_PI * u2;
    out[2 * j] = (float)(r * cos(th));
    if (2 * j + 1 < n)
      out[2 * j + 1] = (float)(r * sin(th));
  }
}

void train_init_param(const ir_param *p, ir_init init, uint64_t seed,
                      uint64_t index, float *out) {
  KILN_ASSERT(init != IR_INIT_AUTO);
  int64_t n = ir_shape_numel(&p->shape, 1);
  uint64_t key = seed ^ TRAIN_INIT_KEY;
  double c = 0;
  switch (init) {
  case IR_INIT_AUTO:
    return;
  case IR_INIT_ZEROS:
    c = 0;
    break;
  case IR_INIT_ONES:
    c = 1;
    break;
  case IR_INIT_CONST:
    c = p->init_value;
    break;
  case IR_INIT_XAVIER_UNIFORM:
  case IR_INIT_XAVIER_NORMAL:
  case IR_INIT_HE_UNIFORM:
  case IR_INIT_HE_NORMAL: {
    int64_t fi, fo;
    train_init_fans(&p->shape, &fi, &fo);
    KILN_ASSERT(fi > 0 && fo > 0);
    bool he = init == IR_INIT_HE_UNIFORM || init == IR_INIT_HE_NORMAL;
    double var = he ? 2.0 / (double)fi : 2.0 / (double)(fi + fo);
    /* U(-a, a) has variance a^2 / 3: a = sqrt(3 var) gives the bounds
     * above (sqrt(6 / fan_in) for He). */
    if (init == IR_INIT_XAVIER_UNIFORM || init == IR_INIT_HE_UNIFORM)
      fill_uniform(out, n, sqrt(3 * var), key, index);
    else
      fill_normal(out, n, sqrt(var), key, index);
    return;
  }
  }
  for (int64_t i = 0; i < n; i++)
    out[i] = (float)c;
}

ir_init train_init_auto(ir_op activation) {
  switch (activation) {
  case IR_OP_RELU:
  case IR_OP_LEAKY_RELU:
  case IR_OP_PRELU:
  case IR_OP_ELU:
  case IR_OP_GELU:
  case IR_OP_MAXOUT:
    return IR_INIT_HE_NORMAL;
  default:
    return IR_INIT_XAVIER_UNIFORM;
  }
}

/* Layers that keep a ReLU-like activation "after" the layer in the sense
 * that matters to the variance argument: normalisation, dropout and
 * residual additions rescale or mix but do not change what nonlinearity
 * the signal meets next; flatten and reshape only move it. */
static bool passes_through(ir_op op) {
  switch (op) {
  case IR_OP_BATCHNORM:
  case IR_OP_LAYERNORM:
  case IR_OP_DROPOUT:
  case IR_OP_ADD:
  case IR_OP_FLATTEN:
  case IR_OP_RESHAPE:
    return true;
  default:
    return false;
  }
}

/* The only node that reads n, or NULL (none, or several). Nodes are in
 * topological order, so consumers come after n. */
static const ir_node *only_consumer(const ir_graph *g, const ir_node *n) {
  const ir_node *found = NULL;
  for (int k = n->id + 1; k < g->n_nodes; k++) {
    const ir_node *m = g->nodes[k];
    for (int i = 0; i < m->n_inputs; i++) {
      if (m->inputs[i] != n)
        continue;
      if (found)
        return NULL;
      found = m;
      break;
    }
  }
  return found;
}

ir_op train_init_next_activation(const ir_graph *g, const ir_node *n) {
  const ir_node *m = only_consumer(g, n);
  while (m && passes_through(m->op))
    m = only_consumer(g, m);
  return m ? m->op : IR_OP_COUNT;
}
