/* load.c — the public entry points: load a model (read, parse, elaborate)
 * into a kiln_model, read its figures, print it. Everything a model owns
 * lives in its arena and goes with kiln_model_free(). */
#include "frontend/load.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifndef KILN_VERSION
#define KILN_VERSION "unknown" /* set by CMake from the project version */
#endif

KILN_API kiln_model *kiln_model_load_string(const char *name, const char *text,
                                            size_t len, kiln_error *err) {
  kiln_error local;
  if (!err)
    err = &local;
  err->status = KILN_OK;
  err->message[0] = '\0';
  kiln_model *m = calloc(1, sizeof *m);
  if (!m) {
    diag_error(err, KILN_ERR_INTERNAL, (kiln_loc){0}, "out of memory");
    return NULL;
  }
  arena_init(&m->a);
  /* The text is copied so that it ends in NUL and outlives the caller's
   * buffer: messages quote its lines. */
  m->file.name = arena_strdup(&m->a, name ? name : "<string>");
  m->file.text = arena_strndup(&m->a, text ? text : "", text ? len : 0);
  m->file.len = text ? len : 0;
  ir_graph_init(&m->g, &m->a, NULL);
  ast_module ast;
  kiln_status st = parse_module(&m->a, &m->file, &ast, err);
  if (!st)
    st = elab_module(&ast, &m->g, err);
  if (st) {
    kiln_model_free(m);
    return NULL;
  }
  return m;
}

/* Reads the whole file; fopen and fread failures keep strerror's words. */
KILN_API kiln_model *kiln_model_load_file(const char *path, kiln_error *err) {
  kiln_error local;
  if (!err)
    err = &local;
  FILE *f = fopen(path, "rb");
  if (!f) {
    diag_error(err, KILN_ERR_IO, (kiln_loc){0}, "cannot read '%s': %s", path,
               strerror(errno));
    return NULL;
  }
  char *text = NULL;
  size_t len = 0, cap = 0, n;
  int failed = 0, saved = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 1 << 16;
      char *grown = realloc(text, cap);
      if (!grown) {
        failed = 1, saved = ENOMEM;
        break;
      }
      text = grown;
    }
    if ((n = fread(text + len, 1, cap - len, f)) == 0)
      break;
    len += n;
  }
  if (!failed && ferror(f))
    failed = 1, saved = errno;
  fclose(f);
  kiln_model *m = NULL;
  if (failed)
    diag_error(err, KILN_ERR_IO, (kiln_loc){0}, "cannot read '%s': %s", path,
               strerror(saved));
  else
    m = kiln_model_load_string(path, text ? text : "", len, err);
  free(text);
  return m;
}

KILN_API void kiln_model_free(kiln_model *m) {
  if (!m)
    return;
  arena_free(&m->a);
  free(m);
}

KILN_API const char *kiln_model_name(const kiln_model *m) {
  return m->g.name;
}

KILN_API int64_t kiln_model_param_count(const kiln_model *m) {
  int64_t total = 0;
  for (int k = 0; k < m->g.n_nodes; k++)
    total += ir_node_param_count(m->g.nodes[k], true);
  return total;
}

KILN_API int64_t kiln_model_buffer_count(const kiln_model *m) {
  int64_t total = 0;
  for (int k = 0; k < m->g.n_nodes; k++)
    total += ir_node_param_count(m->g.nodes[k], false);
  return total;
}

KILN_API int64_t kiln_model_macs(const kiln_model *m) {
  int64_t total = 0;
  for (int k = 0; k < m->g.n_nodes; k++)
    total += ir_node_macs(m->g.nodes[k]);
  return total;
}

KILN_API int64_t kiln_model_flops(const kiln_model *m) {
  int64_t total = 0;
  for (int k = 0; k < m->g.n_nodes; k++)
    total += ir_node_flops(m->g.nodes[k]);
  return total;
}

/* Layers are the nodes that compute something: inputs are not counted. */
KILN_API int kiln_model_layer_count(const kiln_model *m) {
  int n = 0;
  for (int k = 0; k < m->g.n_nodes; k++)
    n += m->g.nodes[k]->op != IR_OP_INPUT;
  return n;
}

KILN_API void kiln_model_summary(const kiln_model *m, FILE *out) {
  ir_summary(&m->g, out);
}

KILN_API void kiln_model_dump(const kiln_model *m, FILE *out) {
  ir_print(&m->g, out);
}

KILN_API void kiln_model_write_dot(const kiln_model *m, FILE *out) {
  ir_write_dot(&m->g, out);
}

KILN_API const char *kiln_version(void) {
  return KILN_VERSION;
}
