/* backend.c — the table of backends the training loop can drive (see
 * backend.h): each backend defines one rt_backend_ops and is listed here,
 * so a backend is added by one line, and `--backend NAME` and its "did you
 * mean" list come from the same place. */
#include "runtime/backend.h"

#include <stdio.h>
#include <string.h>

extern const rt_backend_ops rt_backend_reference;
extern const rt_backend_ops rt_backend_cpu;

/* The oracle first, then the compiled backends ("reference, cpu" in
 * messages). The default of kiln_train and kiln_eval is chosen by name
 * (train_run_backend: "cpu"), not by position here. */
static const rt_backend_ops *const rt_backends[] = {
    &rt_backend_reference,
    &rt_backend_cpu,
};

const rt_backend_ops *rt_backend_find(const char *name) {
  for (size_t k = 0; name && k < ARRAY_LEN(rt_backends); k++)
    if (strcmp(rt_backends[k]->name, name) == 0)
      return rt_backends[k];
  return NULL;
}

const char *rt_backend_names(void) {
  /* Built once; the table is fixed at compile time. */
  static char names[256];
  if (!names[0]) {
    size_t len = 0;
    for (size_t k = 0; k < ARRAY_LEN(rt_backends); k++) {
      int w = snprintf(names + len, sizeof names - len, "%s%s", k ? ", " : "",
                       rt_backends[k]->name);
      KILN_ASSERT(w > 0 && (size_t)w < sizeof names - len);
      len += (size_t)w;
    }
  }
  return names;
}
