/* load.h — the kiln_model handle behind the public API (load.c). Internal:
 * tests and the CLI's internal commands include it to reach the graph. */
#ifndef KILN_FRONTEND_LOAD_H
#define KILN_FRONTEND_LOAD_H

#include "frontend/frontend.h"

struct kiln_model {
  arena a;       /* everything below lives here: text, syntax tree, graph */
  src_file file; /* the model text, kept for located messages */
  ir_graph g;
  /* Set by kiln_train (runtime/train/train_loop.c): ir_autodiff has run on
   * g (it runs once per graph), and the trained value of every parameter,
   * indexed by its position in graph order, in the arena; NULL before. */
  bool differentiated;
  float **trained;
};

#endif
