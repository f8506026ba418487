/* data_batch.c — batches of one data set, step by step.
 *
 * An epoch visits every example of the set once, in the epoch's order:
 * file order, or (training with shuffle = true) the permutation keyed by
 * (seed, epoch) from data_shuffle. Step k holds positions
 * [k * batch, min((k + 1) * batch, n)) of that order, so the last batch of
 * an epoch is kept even when it is partial, and its size is returned; the
 * training loop scales its loss by the true count. Training batches are then
 * augmented, each example keyed by its position in the epoch (see
 * data_augment.c).
 *
 * data_iter_fill only reads the iterator, so any step can be filled in any
 * order, or by several threads at once, with the same result: a pure
 * function of (set, seed, epoch, step). */
#include "runtime/data/data.h"

#include "support/support.h"

#include <stdlib.h>
#include <string.h>

static const kiln_loc no_loc = {NULL, 0, 0};

kiln_status data_iter_init(data_iter *it, const data_set *set, int64_t batch,
                           const ir_data_cfg *cfg, uint64_t seed,
                           kiln_error *err) {
  memset(it, 0, sizeof *it);
  if (batch < 1)
    return diag_error(err, KILN_ERR_INVALID, no_loc,
                      "data: batch must be at least 1, got %lld",
                      (long long)batch);
  if (cfg) {
    kiln_status st = data_augment_check(cfg->augment, cfg->n_augment, set->rank,
                                        set->shape, err);
    if (st != KILN_OK)
      return st;
    it->shuffle = cfg->shuffle;
    it->n_augment = cfg->n_augment;
    memcpy(it->augment, cfg->augment,
           sizeof(ir_augment) * (size_t)cfg->n_augment);
  }
  it->set = set;
  it->batch = batch;
  it->seed = seed;
  it->order = malloc(set->n ? (size_t)set->n * sizeof(int64_t) : 1);
  KILN_ASSERT(it->order && "out of memory");
  data_iter_set_epoch(it, 0);
  return KILN_OK;
}

void data_iter_free(data_iter *it) {
  free(it->order);
  memset(it, 0, sizeof *it);
}

void data_iter_set_epoch(data_iter *it, uint64_t epoch) {
  it->epoch = epoch;
  if (it->shuffle) {
    data_shuffle(it->order, it->set->n, it->seed, epoch);
  } else {
    for (int64_t i = 0; i < it->set->n; i++)
      it->order[i] = i;
  }
}

int64_t data_iter_steps(const data_iter *it) {
  return (it->set->n + it->batch - 1) / it->batch;
}

int64_t data_iter_fill(const data_iter *it, int64_t step, float *x,
                       int32_t *y) {
  const data_set *s = it->set;
  if (step < 0 || step >= data_iter_steps(it))
    return 0;
  int64_t first = step * it->batch;
  int64_t count = s->n - first < it->batch ? s->n - first : it->batch;
  size_t es = (size_t)s->example_size;
  for (int64_t i = 0; i < count; i++) {
    int64_t pos = it->order[first + i];
    int64_t row = s->rows ? s->rows[pos] : pos;
    memcpy(x + (size_t)i * es, s->x + (size_t)row * es, es * sizeof(float));
    y[i] = s->y[row];
  }
  if (it->n_augment > 0)
    data_augment_batch(x, count, s->shape[0], s->shape[1], s->shape[2],
                       it->augment, it->n_augment, it->seed, it->epoch, first);
  return count;
}
