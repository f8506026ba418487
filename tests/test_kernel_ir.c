/* test_kernel_ir.c — the kernel IR: builder types, one malformed kernel per
 * verifier rule, the printed text of a hand-built kernel, and the
 * interpreter (tests/support/kir_interp.c) against hand-computed values:
 * elementwise, a reduction with let/assign, thread loops with shared and
 * local buffers and block reductions, MMA on odd tiles, Philox, atomics,
 * integer semantics, and a small plan with an alias. Sizes are odd. */
#include "support/support.h"
#include "test.h"
#include "tests/support/kir_interp.h"
#include "tests/support/plan_check.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static arena A;
static const kir_scalars no_scalars = {0, 0, 0.0f};

static kir_expr *ref(kir_kernel *k, kir_var *v) {
  return kir_ref(k, v);
}

/* ---- builder ---- */

TEST(test_type_and_op_tables) {
  CHECK(strcmp(kir_type_name(KIR_F32), "f32") == 0);
  CHECK(strcmp(kir_type_name(KIR_U32), "u32") == 0);
  CHECK_EQ_INT(kir_type_size(KIR_BOOL), 1);
  CHECK_EQ_INT(kir_type_size(KIR_I64), 8);
  CHECK_EQ_INT(kir_type_size(KIR_F32), 4);
  CHECK(kir_type_is_float(KIR_F32) && !kir_type_is_float(KIR_I32));
  CHECK(strcmp(kir_op_name(KIR_PHILOX), "philox") == 0);
  CHECK(strcmp(kir_op_name(KIR_RSQRT), "rsqrt") == 0);
  CHECK_EQ_INT(kir_op_arity(KIR_LOAD), 1);
  CHECK_EQ_INT(kir_op_arity(KIR_SELECT), 3);
  CHECK_EQ_INT(kir_op_arity(KIR_SHR), 2);
  for (int op = 0; op < KIR_OP_COUNT; op++)
    CHECK(kir_op_name((kir_op)op)[0] != '\0');
}

TEST(test_builder_types) {
  kir_kernel *k = kir_kernel_new(&A, "types", 0);
  kir_buf *sh = kir_local(k, "acc", KIR_F32, 3);
  kir_buf *x = kir_global(k, "x", KIR_F32, 7, true);
  /* a global declared after a local moves in front: argument order */
  CHECK(k->bufs[0] == x && x->id == 0 && sh->id == 1);
  kir_var *i = kir_for(k, KIR_LOOP_GRID, "i", kir_i64(k, 7));
  CHECK_EQ_INT(i->type, KIR_I64);
  kir_expr *lt = kir_bin(k, KIR_LT, ref(k, i), kir_i64(k, 3));
  CHECK_EQ_INT(lt->type, KIR_BOOL);
  kir_expr *f = kir_load(k, x, ref(k, i));
  CHECK_EQ_INT(f->type, KIR_F32);
  CHECK_EQ_INT(kir_un(k, KIR_EXP, f)->type, KIR_F32);
  CHECK_EQ_INT(kir_select(k, lt, f, kir_f32(k, 0))->type, KIR_F32);
  CHECK_EQ_INT(kir_cast(k, KIR_I32, f)->type, KIR_I32);
  kir_expr *p = kir_philox(k, ref(k, i), kir_i64(k, 1), kir_i64(k, 2));
  CHECK_EQ_INT(p->type, KIR_F32);
  kir_var *v = kir_let(k, "v", kir_int(k, KIR_U32, 5));
  CHECK_EQ_INT(v->type, KIR_U32);
  kir_var *v2 = kir_let(k, "v", kir_bin(k, KIR_SHR, ref(k, v), ref(k, v)));
  CHECK(strcmp(v2->name, "v") != 0); /* names are unique per kernel */
  kir_var *seed = kir_scalar_param(k, KIR_SCALAR_SEED);
  CHECK(kir_scalar_param(k, KIR_SCALAR_SEED) == seed);
  CHECK_EQ_INT(kir_scalar_param(k, KIR_SCALAR_LR)->type, KIR_F32);
  kir_end(k);
  CHECK_EQ_INT(k->depth, 0);
}

/* Runs fn in a child process and expects it to abort with `needle` on
 * stderr: the builder treats mistyped lowering code as a broken
 * invariant. */
static void expect_abort(void (*fn)(void), const char *needle) {
  int fds[2];
  CHECK(pipe(fds) == 0);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    fn();
    _exit(0);
  }
  close(fds[1]);
  char buf[2048] = {0};
  size_t len = 0;
  ssize_t r;
  while (len < sizeof buf - 1 &&
         (r = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
    len += (size_t)r;
  close(fds[0]);
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  CHECK_STR_CONTAINS(buf, needle);
}

static void add_f32_i64(void) {
  kir_kernel *k = kir_kernel_new(&A, "bad", 0);
  kir_bin(k, KIR_ADD, kir_f32(k, 1), kir_i64(k, 2));
}

static void store_i64_to_f32(void) {
  kir_kernel *k = kir_kernel_new(&A, "bad", 0);
  kir_buf *y = kir_global(k, "y", KIR_F32, 3, false);
  kir_store(k, y, kir_i64(k, 0), kir_i64(k, 1));
}

static void if_on_f32(void) {
  kir_kernel *k = kir_kernel_new(&A, "bad", 0);
  kir_if(k, kir_f32(k, 1));
}

TEST(test_builder_rejects_mistyped_code) {
  expect_abort(add_f32_i64, "add on f32, i64");
  expect_abort(store_i64_to_f32, "store on f32, i64");
  expect_abort(if_on_f32, "if condition on f32");
}

/* ---- verifier: one malformed kernel per rule ---- */

static void expect_reject(const kir_kernel *k, const char *what,
                          const char *stmt) {
  kiln_error err = {0};
  CHECK_EQ_INT(kir_verify(k, &err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(err.message, "kernel 'bad': ");
  CHECK_STR_CONTAINS(err.message, what);
  CHECK_STR_CONTAINS(err.message, stmt);
}

/* grid i < 7: y[i] = x[i] (well formed; the cases below break it), with
 * the cursor left in the loop's body */
static kir_kernel *copy_kernel(kir_buf **x, kir_buf **y) {
  kir_kernel *k = kir_kernel_new(&A, "bad", 0);
  *x = kir_global(k, "x", KIR_F32, 7, true);
  *y = kir_global(k, "y", KIR_F32, 7, false);
  kir_var *i = kir_for(k, KIR_LOOP_GRID, "i", kir_i64(k, 7));
  kir_store(k, *y, ref(k, i), kir_load(k, *x, ref(k, i)));
  return k;
}

TEST(test_verify_types_scopes_buffers) {
  kir_buf *x, *y;
  kiln_error err = {0};
  kir_kernel *k = copy_kernel(&x, &y);
  CHECK_EQ_INT(kir_verify(k, &err), KILN_OK);

  /* an expression whose type does not follow from its operands */
  k = copy_kernel(&x, &y);
  kir_stmt *st = k->body->body[0]->then_->body[0];
  st->value = kir_bin(k, KIR_ADD, st->value, kir_f32(k, 1));
  st->value->type = KIR_I64;
  expect_reject(k, "add on (f32, f32) typed i64", "y[i] = x[i] + 1.0");

  /* a statement whose value does not fit */
  k = copy_kernel(&x, &y);
  st = k->body->body[0]->then_->body[0];
  st->value = kir_cast(k, KIR_I32, st->value);
  expect_reject(k, "store of i32 to f32 buffer 'y'", "y[i] = i32(x[i])");

  /* a let used after the if that scopes it */
  k = kir_kernel_new(&A, "bad", 0);
  y = kir_global(k, "y", KIR_F32, 7, false);
  kir_if(k, kir_bool(k, true));
  kir_var *v = kir_let(k, "v", kir_f32(k, 2));
  kir_end(k);
  kir_store(k, y, kir_i64(k, 0), ref(k, v));
  expect_reject(k, "variable 'v' used out of scope", "y[0] = v");

  /* a let used before its definition */
  k = kir_kernel_new(&A, "bad", 0);
  y = kir_global(k, "y", KIR_F32, 7, false);
  v = kir_let(k, "v", kir_f32(k, 2));
  kir_store(k, y, kir_i64(k, 1), ref(k, v));
  kir_stmt *tmp = k->body->body[0];
  k->body->body[0] = k->body->body[1];
  k->body->body[1] = tmp;
  expect_reject(k, "variable 'v' used out of scope", "y[1] = v");

  /* an assignment to a loop variable */
  k = copy_kernel(&x, &y);
  kir_assign(k, k->body->body[0]->var, kir_i64(k, 0));
  expect_reject(k, "assignment to loop variable 'i'", "i = 0");

  /* stores and atomics to a read-only buffer */
  k = copy_kernel(&x, &y);
  y->read_only = true;
  expect_reject(k, "store to read-only buffer 'y'", "y[i] = x[i]");
  k = copy_kernel(&x, &y);
  kir_atomic_add(k, x, kir_i64(k, 2), kir_f32(k, 1));
  expect_reject(k, "atomic_add to read-only buffer 'x'", "atomic x[2] += 1.0");

  /* a global index that is not i64 */
  k = copy_kernel(&x, &y);
  kir_store(k, y, kir_int(k, KIR_I32, 3), kir_f32(k, 0));
  expect_reject(k, "index of global buffer 'y' is i32, not i64",
                "y[3i32] = 0.0");

  /* a constant index out of bounds */
  k = copy_kernel(&x, &y);
  kir_store(k, y, kir_i64(k, 7), kir_f32(k, 0));
  expect_reject(k, "constant index 7 out of bounds of 'y[7]'", "y[7] = 0.0");

  /* a non-bool condition (built, then edited) */
  k = copy_kernel(&x, &y);
  kir_if(k, kir_bool(k, true));
  kir_end(k);
  k->body->body[0]->then_->body[1]->cond = kir_f32(k, 1);
  expect_reject(k, "if condition is f32, not bool", "if 1.0:");
}

/* A block kernel: grid b < 3, thread loops of 5. */
static kir_kernel *block_kernel(kir_var **b) {
  kir_kernel *k = kir_kernel_new(&A, "bad", 5);
  *b = kir_for(k, KIR_LOOP_GRID, "b", kir_i64(k, 3));
  return k;
}

TEST(test_verify_parallel_structure) {
  kir_var *b, *t;
  kiln_error err = {0};

  /* a grid loop that is not in the outermost chain */
  kir_kernel *k = kir_kernel_new(&A, "bad", 0);
  kir_for(k, KIR_LOOP_SERIAL, "s", kir_i64(k, 3));
  kir_for(k, KIR_LOOP_GRID, "g", kir_i64(k, 3));
  expect_reject(k, "grid loop outside the outermost chain", "grid g < 3:");
  k = kir_kernel_new(&A, "bad", 0);
  kir_let(k, "v", kir_i64(k, 1));
  kir_for(k, KIR_LOOP_GRID, "g", kir_i64(k, 3));
  expect_reject(k, "grid loop outside the outermost chain", "grid g < 3:");
  k = kir_kernel_new(&A, "bad", 0); /* a chain of two is fine */
  kir_for(k, KIR_LOOP_GRID, "g", kir_i64(k, 3));
  kir_for(k, KIR_LOOP_GRID, "h", kir_i64(k, 3));
  CHECK_EQ_INT(kir_verify(k, &err), KILN_OK);

  /* thread loops: nested, wrong extent, in a kernel without threads */
  k = block_kernel(&b);
  kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
  kir_for(k, KIR_LOOP_THREAD, "u", kir_i64(k, 5));
  expect_reject(k, "thread loop nested in a thread loop", "thread u < 5:");
  k = block_kernel(&b);
  kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 4));
  expect_reject(k, "not the constant block_threads 5", "thread t < 4:");
  k = kir_kernel_new(&A, "bad", 0);
  kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 1));
  expect_reject(k, "thread loop in a kernel without threads", "thread t < 1:");

  /* an unrolled loop needs a constant extent */
  k = block_kernel(&b);
  kir_for(k, KIR_LOOP_UNROLL, "u", ref(k, b));
  expect_reject(k, "unrolled loop with a non-constant extent", "unroll u < b:");

  /* shared memory needs threads: a kernel without them has no block */
  k = kir_kernel_new(&A, "bad", 0);
  kir_shared(k, "s", KIR_F32, 3);
  expect_reject(k, "shared buffer 's' in a kernel without threads", "");

  /* barrier, block_reduce and mma inside a thread loop */
  k = block_kernel(&b);
  kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
  kir_barrier(k);
  expect_reject(k, "barrier inside a thread loop", "barrier");
  k = block_kernel(&b);
  kir_buf *s = kir_shared(k, "s", KIR_F32, 1);
  kir_buf *l = kir_local(k, "l", KIR_F32, 1);
  kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
  kir_block_reduce(k, KIR_ADD, s, l);
  expect_reject(k, "block_reduce inside a thread loop",
                "s[0] = block_add(l[0])");
  k = block_kernel(&b);
  s = kir_shared(k, "s", KIR_F32, 1);
  kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
  kir_mma(k, s, s, s, 1, 1, 1);
  expect_reject(k, "mma inside a thread loop", "mma s += s * s");
  k = kir_kernel_new(&A, "bad", 0);
  kir_barrier(k);
  expect_reject(k, "barrier in a kernel without threads", "barrier");

  /* a local buffer outside a thread loop */
  k = block_kernel(&b);
  l = kir_local(k, "acc", KIR_F32, 2);
  kir_store(k, l, kir_i64(k, 0), kir_f32(k, 0));
  expect_reject(k, "local buffer 'acc' used outside a thread loop",
                "acc[0] = 0.0");

  /* a value carried across a thread loop boundary */
  k = block_kernel(&b);
  kir_var *sum = kir_let(k, "sum", kir_i64(k, 0));
  t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
  kir_assign(k, sum, ref(k, t));
  expect_reject(k, "'sum' declared outside the thread loop is assigned",
                "sum = t");

  /* an atomic at block level (once per thread on the GPU) */
  k = block_kernel(&b);
  kir_buf *y = kir_global(k, "y", KIR_F32, 3, false);
  kir_atomic_add(k, y, ref(k, b), kir_f32(k, 1));
  expect_reject(k, "atomic_add outside a thread loop", "atomic y[b] += 1.0");

  /* mma tiles: counts and spaces */
  k = block_kernel(&b);
  kir_buf *c = kir_shared(k, "c", KIR_F32, 15);
  kir_buf *ta = kir_shared(k, "ta", KIR_F32, 20);
  kir_buf *tb = kir_shared(k, "tb", KIR_F32, 35);
  kir_mma(k, c, ta, tb, 3, 5, 7);
  expect_reject(k, "mma operand 'ta' has 20 elements, not 21",
                "mma c += ta * tb (m 3, n 5, k 7)");
  k = block_kernel(&b);
  c = kir_shared(k, "c", KIR_F32, 1);
  y = kir_global(k, "y", KIR_F32, 1, false);
  kir_mma(k, c, y, c, 1, 1, 1);
  expect_reject(k, "mma operand 'y' is not a shared f32 buffer", "mma c");

  /* block_reduce: spaces and op */
  k = block_kernel(&b);
  s = kir_shared(k, "s", KIR_F32, 1);
  l = kir_local(k, "l", KIR_F32, 1);
  kir_block_reduce(k, KIR_MAX, l, s);
  expect_reject(k, "needs local -> shared", "l[0] = block_max(s[0])");
  k = block_kernel(&b);
  s = kir_shared(k, "s", KIR_F32, 1);
  l = kir_local(k, "l", KIR_F32, 1);
  kir_block_reduce(k, KIR_ADD, s, l);
  k->body->body[0]->then_->body[0]->reduce_op = KIR_MUL;
  expect_reject(k, "block_reduce with op mul (add or max only)", "block_mul");
}

/* Thread loop `write` stores s[t]; then, in a second thread loop, y[b * 5 +
 * t] = s[(t + 1) % 5]; with `sync`, a barrier between them. */
static kir_kernel *shift_kernel(bool sync, bool block_write) {
  kir_var *b;
  kir_kernel *k = block_kernel(&b);
  kir_buf *s = kir_shared(k, "s", KIR_F32, 5);
  kir_buf *y = kir_global(k, "y", KIR_F32, 15, false);
  if (block_write) {
    kir_store(k, s, kir_i64(k, 0), kir_f32(k, 1));
  } else {
    kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
    kir_store(k, s, ref(k, t), kir_cast(k, KIR_F32, ref(k, t)));
    kir_end(k);
  }
  if (sync)
    kir_barrier(k);
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
  kir_expr *nb = kir_bin(
      k, KIR_MOD, kir_bin(k, KIR_ADD, ref(k, t), kir_i64(k, 1)), kir_i64(k, 5));
  kir_store(k, y,
            kir_bin(k, KIR_ADD, kir_bin(k, KIR_MUL, ref(k, b), kir_i64(k, 5)),
                    ref(k, t)),
            kir_load(k, s, nb));
  kir_end(k);
  return k;
}

TEST(test_verify_shared_races) {
  kiln_error err = {0};
  kir_var *b, *t;
  /* read after write across thread loops: needs a barrier */
  expect_reject(shift_kernel(false, false),
                "shared buffer 's' is read here and used by another thread "
                "loop since the last barrier",
                "y[b * 5 + t_");
  CHECK_EQ_INT(kir_verify(shift_kernel(true, false), &err), KILN_OK);
  /* block-level writes read by a later thread loop: every thread wrote */
  CHECK_EQ_INT(kir_verify(shift_kernel(false, true), &err), KILN_OK);

  /* write after read: the second loop may overwrite what the first reads */
  kir_kernel *k = block_kernel(&b);
  kir_buf *s = kir_shared(k, "s", KIR_F32, 5);
  kir_buf *y = kir_global(k, "y", KIR_F32, 5, false);
  t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
  kir_store(k, y, ref(k, t), kir_load(k, s, ref(k, t)));
  kir_end(k);
  t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
  kir_store(k, s, ref(k, t), kir_f32(k, 0));
  kir_end(k);
  expect_reject(k, "shared buffer 's' is written here", "s[t_");

  /* loop-carried: a tile loop that loads, syncs, consumes, but does not
   * sync before the next iteration's load */
  for (int fixed = 0; fixed < 2; fixed++) {
    k = block_kernel(&b);
    s = kir_shared(k, "s", KIR_F32, 5);
    y = kir_global(k, "y", KIR_F32, 5, false);
    kir_for(k, KIR_LOOP_SERIAL, "kc", kir_i64(k, 3));
    t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
    kir_store(k, s, ref(k, t), kir_f32(k, 1));
    kir_end(k);
    kir_barrier(k);
    t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
    kir_store(k, y, ref(k, t),
              kir_load(k, s, kir_bin(k, KIR_SUB, kir_i64(k, 4), ref(k, t))));
    kir_end(k);
    if (fixed) {
      kir_barrier(k);
      CHECK_EQ_INT(kir_verify(k, &err), KILN_OK);
    } else {
      expect_reject(k, "shared buffer 's' is written here", "s[t] = 1.0");
    }
  }

  /* exclusive branches of an if do not meet */
  k = block_kernel(&b);
  s = kir_shared(k, "s", KIR_F32, 5);
  y = kir_global(k, "y", KIR_F32, 5, false);
  kir_if(k, kir_bin(k, KIR_LT, ref(k, b), kir_i64(k, 1)));
  t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
  kir_store(k, s, ref(k, t), kir_f32(k, 1));
  kir_end(k);
  kir_else(k);
  t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
  kir_store(k, y, ref(k, t), kir_load(k, s, ref(k, t)));
  kir_end(k);
  kir_end(k);
  CHECK_EQ_INT(kir_verify(k, &err), KILN_OK);
}

/* ---- printer ---- */

TEST(test_print) {
  kir_kernel *k = kir_kernel_new(&A, "show", 5);
  kir_buf *s = kir_shared(k, "s", KIR_F32, 3);
  kir_buf *x = kir_global(k, "x", KIR_F32, 13, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, 13, false);
  kir_var *lr = kir_scalar_param(k, KIR_SCALAR_LR);
  kir_var *seed = kir_scalar_param(k, KIR_SCALAR_SEED);
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", kir_i64(k, 3));
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
  kir_var *i =
      kir_let(k, "i",
              kir_bin(k, KIR_ADD, kir_bin(k, KIR_MUL, ref(k, b), kir_i64(k, 5)),
                      ref(k, t)));
  kir_if(k, kir_bin(k, KIR_AND, kir_bin(k, KIR_LT, ref(k, i), kir_i64(k, 13)),
                    kir_bin(k, KIR_NE, ref(k, i), kir_i64(k, 5))));
  kir_store(k, y, ref(k, i),
            kir_bin(k, KIR_MAX,
                    kir_bin(k, KIR_MUL, kir_load(k, x, ref(k, i)), ref(k, lr)),
                    kir_f32(k, 0)));
  kir_else(k);
  kir_atomic_add(k, y, kir_i64(k, 0), kir_f32(k, -1.5f));
  kir_end(k);
  kir_end(k);
  kir_barrier(k);
  kir_var *u = kir_for(k, KIR_LOOP_UNROLL, "u", kir_i64(k, 3));
  kir_expr *bi =
      kir_cast(k, KIR_I32, kir_bin(k, KIR_ADD, ref(k, b), kir_i64(k, 1)));
  kir_store(
      k, s, ref(k, u),
      kir_cast(k, KIR_F32, kir_bin(k, KIR_MUL, bi, kir_int(k, KIR_I32, 2))));
  kir_end(k);
  kir_var *j = kir_for(k, KIR_LOOP_SERIAL, "j", kir_i64(k, 2));
  kir_let(k, "w",
          kir_bin(k, KIR_SUB, ref(k, b),
                  kir_bin(k, KIR_SUB, ref(k, j), kir_i64(k, -1))));
  kir_let(k, "v",
          kir_select(k, kir_bin(k, KIR_EQ, ref(k, j), kir_i64(k, 0)),
                     kir_philox(k, ref(k, seed), ref(k, j), ref(k, b)),
                     kir_un(k, KIR_NEG, kir_load(k, s, ref(k, j)))));
  kir_end(k);
  kir_end(k);
  const char *want =
      "kernel show(global f32 x[13] ro, global f32 y[13], f32 lr, i64 seed) "
      "threads 5\n"
      "  shared f32 s[3]\n"
      "  grid b < 3:\n"
      "    thread t < 5:\n"
      "      let i: i64 = b * 5 + t\n"
      "      if i < 13 & i != 5:\n"
      "        y[i] = max(x[i] * lr, 0.0)\n"
      "      else:\n"
      "        atomic y[0] += -1.5\n"
      "    barrier\n"
      "    unroll u < 3:\n"
      "      s[u] = f32(i32(b + 1) * 2i32)\n"
      "    for j < 2:\n"
      "      let w: i64 = b - (j - -1)\n"
      "      let v: f32 = select(j == 0, philox(seed, j, b), -s[j])\n";
  strbuf sb;
  strbuf_init(&sb);
  kir_print(&sb, k);
  if (strcmp(sb.data, want) != 0)
    fprintf(stderr, "printed:\n%s\nwanted:\n%s\n", sb.data, want);
  CHECK(strcmp(sb.data, want) == 0);
  kiln_error err = {0};
  CHECK_EQ_INT(kir_verify(k, &err), KILN_OK);
  strbuf_free(&sb);
}

/* ---- interpreter ---- */

static void run_ok(const kir_kernel *k, void *const *bufs,
                   const kir_scalars *s) {
  kiln_error err = {0};
  kiln_status st = kir_interp_run(k, bufs, s, &err);
  if (st != KILN_OK)
    fprintf(stderr, "%s\n", err.message);
  CHECK_EQ_INT(st, KILN_OK);
}

TEST(test_interp_elementwise) {
  /* y = max(x * 2 - 1, 0) over 13 elements, grid over 7 x 2 with a guard */
  kir_kernel *k = kir_kernel_new(&A, "ew", 0);
  kir_buf *x = kir_global(k, "x", KIR_F32, 13, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, 13, false);
  kir_var *g = kir_for(k, KIR_LOOP_GRID, "g", kir_i64(k, 7));
  kir_var *h = kir_for(k, KIR_LOOP_GRID, "h", kir_i64(k, 2));
  kir_var *i =
      kir_let(k, "i",
              kir_bin(k, KIR_ADD, kir_bin(k, KIR_MUL, ref(k, g), kir_i64(k, 2)),
                      ref(k, h)));
  kir_if(k, kir_bin(k, KIR_LT, ref(k, i), kir_i64(k, 13)));
  kir_expr *e = kir_bin(
      k, KIR_SUB, kir_bin(k, KIR_MUL, kir_load(k, x, ref(k, i)), kir_f32(k, 2)),
      kir_f32(k, 1));
  kir_store(k, y, ref(k, i), kir_bin(k, KIR_MAX, e, kir_f32(k, 0)));
  kir_end(k);
  kir_end(k);
  kir_end(k);
  float xs[13], ys[13];
  for (int n = 0; n < 13; n++)
    xs[n] = (float)n * 0.25f - 1.0f; /* -1, -0.75, ..., 2 */
  void *bufs[] = {xs, ys};
  run_ok(k, bufs, &no_scalars);
  /* by hand: 2x - 1 for x >= 0.5, else 0 */
  const float want[13] = {0, 0, 0, 0, 0, 0, 0, 0.5f, 1, 1.5f, 2, 2.5f, 3};
  for (int n = 0; n < 13; n++)
    CHECK_NEAR(ys[n], want[n], 0);
}

TEST(test_interp_reduction) {
  /* row sums and row maxima of a 5 x 7 matrix with a let and assigns */
  kir_kernel *k = kir_kernel_new(&A, "rowsum", 0);
  kir_buf *x = kir_global(k, "x", KIR_F32, 35, true);
  kir_buf *sum = kir_global(k, "sum", KIR_F32, 5, false);
  kir_buf *mx = kir_global(k, "mx", KIR_F32, 5, false);
  kir_var *r = kir_for(k, KIR_LOOP_GRID, "r", kir_i64(k, 5));
  kir_var *acc = kir_let(k, "acc", kir_f32(k, 0));
  kir_var *m = kir_let(k, "m", kir_f32(k, -INFINITY));
  kir_var *c = kir_for(k, KIR_LOOP_SERIAL, "c", kir_i64(k, 7));
  kir_expr *xi = kir_load(k, x,
                          kir_bin(k, KIR_ADD,
                                  kir_bin(k, KIR_MUL, ref(k, r), kir_i64(k, 7)),
                                  ref(k, c)));
  kir_assign(k, acc, kir_bin(k, KIR_ADD, ref(k, acc), xi));
  kir_assign(k, m, kir_bin(k, KIR_MAX, ref(k, m), xi));
  kir_end(k);
  kir_store(k, sum, ref(k, r), ref(k, acc));
  kir_store(k, mx, ref(k, r), ref(k, m));
  kir_end(k);
  float xs[35], sums[5], maxs[5];
  for (int n = 0; n < 35; n++)
    xs[n] = (float)((n * 7) % 11) - 4.0f; /* small integers: exact sums */
  void *bufs[] = {xs, sums, maxs};
  run_ok(k, bufs, &no_scalars);
  /* row 0: (0,7,3,10,6,2,9) - 4 -> sum 37 - 28 = 9, max 6 */
  CHECK_NEAR(sums[0], 9, 0);
  CHECK_NEAR(maxs[0], 6, 0);
  for (int row = 0; row < 5; row++) {
    int s = 0, best = -100;
    for (int col = 0; col < 7; col++) {
      int v = ((row * 7 + col) * 7) % 11 - 4;
      s += v;
      best = v > best ? v : best;
    }
    CHECK_NEAR(sums[row], s, 0);
    CHECK_NEAR(maxs[row], best, 0);
  }
}

/* Per row b of a 3 x 37 matrix, 5 threads: each sums and maxes a strided
 * slice into local registers, block_reduce combines them into shared
 * memory, thread 0 writes the results. */
TEST(test_interp_block_reduce) {
  enum { ROWS = 3, COLS = 37, T = 5, PER = (COLS + T - 1) / T };
  kir_kernel *k = kir_kernel_new(&A, "blocksum", T);
  kir_buf *x = kir_global(k, "x", KIR_F32, ROWS * COLS, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, 2 * ROWS, false);
  kir_buf *ssum = kir_shared(k, "ssum", KIR_F32, 1);
  kir_buf *smax = kir_shared(k, "smax", KIR_F32, 1);
  kir_buf *lsum = kir_local(k, "lsum", KIR_F32, 1);
  kir_buf *lmax = kir_local(k, "lmax", KIR_F32, 1);
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", kir_i64(k, ROWS));
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, T));
  kir_store(k, lsum, kir_i64(k, 0), kir_f32(k, 0));
  kir_store(k, lmax, kir_i64(k, 0), kir_f32(k, -INFINITY));
  kir_var *j = kir_for(k, KIR_LOOP_SERIAL, "j", kir_i64(k, PER));
  kir_var *col =
      kir_let(k, "col",
              kir_bin(k, KIR_ADD, kir_bin(k, KIR_MUL, ref(k, j), kir_i64(k, T)),
                      ref(k, t)));
  kir_if(k, kir_bin(k, KIR_LT, ref(k, col), kir_i64(k, COLS)));
  kir_expr *idx =
      kir_bin(k, KIR_ADD, kir_bin(k, KIR_MUL, ref(k, b), kir_i64(k, COLS)),
              ref(k, col));
  kir_store(k, lsum, kir_i64(k, 0),
            kir_bin(k, KIR_ADD, kir_load(k, lsum, kir_i64(k, 0)),
                    kir_load(k, x, idx)));
  kir_store(k, lmax, kir_i64(k, 0),
            kir_bin(k, KIR_MAX, kir_load(k, lmax, kir_i64(k, 0)),
                    kir_load(k, x, idx)));
  kir_end(k); /* if */
  kir_end(k); /* j */
  kir_end(k); /* t */
  kir_barrier(k);
  kir_block_reduce(k, KIR_ADD, ssum, lsum);
  kir_block_reduce(k, KIR_MAX, smax, lmax);
  kir_barrier(k);
  t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, T));
  kir_if(k, kir_bin(k, KIR_EQ, ref(k, t), kir_i64(k, 0)));
  kir_store(k, y, ref(k, b), kir_load(k, ssum, kir_i64(k, 0)));
  kir_store(k, y, kir_bin(k, KIR_ADD, ref(k, b), kir_i64(k, ROWS)),
            kir_load(k, smax, kir_i64(k, 0)));
  kir_end(k);
  kir_end(k);
  kir_end(k);
  float xs[ROWS * COLS], ys[2 * ROWS];
  for (int n = 0; n < ROWS * COLS; n++)
    xs[n] = (float)((n * 13) % 17) - 8.0f;
  void *bufs[] = {xs, ys};
  run_ok(k, bufs, &no_scalars);
  for (int r = 0; r < ROWS; r++) {
    int s = 0, best = -100;
    for (int c = 0; c < COLS; c++) {
      int v = ((r * COLS + c) * 13) % 17 - 8;
      s += v;
      best = v > best ? v : best;
    }
    CHECK_NEAR(ys[r], s, 0);
    CHECK_NEAR(ys[ROWS + r], best, 0);
  }
}

/* C (3 x 5) = A (3 x 7) * B (7 x 5) through shared tiles, 7 threads
 * loading; C starts from a bias, so MMA's accumulate is checked too. */
TEST(test_interp_mma) {
  enum { M = 3, N = 5, K = 7, T = 7 };
  kir_kernel *k = kir_kernel_new(&A, "mma", T);
  kir_buf *ga = kir_global(k, "a", KIR_F32, M * K, true);
  kir_buf *gb = kir_global(k, "b", KIR_F32, K * N, true);
  kir_buf *gc = kir_global(k, "c", KIR_F32, M * N, false);
  kir_buf *sc = kir_shared(k, "sc", KIR_F32, M * N);
  kir_buf *sa = kir_shared(k, "sa", KIR_F32, M * K);
  kir_buf *sb = kir_shared(k, "sb", KIR_F32, K * N);
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, T));
  /* thread t loads column t of A and row t of B; the first 5 load C */
  kir_var *m = kir_for(k, KIR_LOOP_UNROLL, "m", kir_i64(k, M));
  kir_expr *ia = kir_bin(
      k, KIR_ADD, kir_bin(k, KIR_MUL, ref(k, m), kir_i64(k, K)), ref(k, t));
  kir_store(k, sa, ia, kir_load(k, ga, ia));
  kir_end(k);
  kir_var *n = kir_for(k, KIR_LOOP_VECTOR, "n", kir_i64(k, N));
  kir_expr *ib = kir_bin(
      k, KIR_ADD, kir_bin(k, KIR_MUL, ref(k, t), kir_i64(k, N)), ref(k, n));
  kir_store(k, sb, ib, kir_load(k, gb, ib));
  kir_end(k);
  kir_if(k, kir_bin(k, KIR_LT, ref(k, t), kir_i64(k, N)));
  m = kir_for(k, KIR_LOOP_SERIAL, "m", kir_i64(k, M));
  kir_expr *ic = kir_bin(
      k, KIR_ADD, kir_bin(k, KIR_MUL, ref(k, m), kir_i64(k, N)), ref(k, t));
  kir_store(k, sc, ic, kir_f32(k, 0.5f));
  kir_end(k);
  kir_end(k);
  kir_end(k);
  kir_barrier(k);
  kir_mma(k, sc, sa, sb, M, N, K);
  kir_barrier(k);
  t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, T));
  kir_if(k, kir_bin(k, KIR_LT, ref(k, t), kir_i64(k, N)));
  m = kir_for(k, KIR_LOOP_SERIAL, "m", kir_i64(k, M));
  ic = kir_bin(k, KIR_ADD, kir_bin(k, KIR_MUL, ref(k, m), kir_i64(k, N)),
               ref(k, t));
  kir_store(k, gc, ic, kir_load(k, sc, ic));
  kir_end(k);
  kir_end(k);
  kir_end(k);
  float a[M * K], b[K * N], c[M * N];
  for (int i = 0; i < M * K; i++)
    a[i] = (float)(i % 5) * 0.5f - 1.0f;
  for (int i = 0; i < K * N; i++)
    b[i] = (float)(i % 7) * 0.25f - 0.75f;
  void *bufs[] = {a, b, c};
  run_ok(k, bufs, &no_scalars);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double want = 0.5;
      for (int kk = 0; kk < K; kk++)
        want += (double)a[i * K + kk] * b[kk * N + j];
      CHECK_NEAR(c[i * N + j], want, 1e-6); /* quarters: exact in f32 */
    }
}

TEST(test_interp_philox_and_scalars) {
  /* y[i] = philox(seed, step, i) * lr, bit for bit */
  kir_kernel *k = kir_kernel_new(&A, "drop", 0);
  kir_buf *y = kir_global(k, "y", KIR_F32, 11, false);
  kir_var *i = kir_for(k, KIR_LOOP_GRID, "i", kir_i64(k, 11));
  kir_expr *u =
      kir_philox(k, ref(k, kir_scalar_param(k, KIR_SCALAR_SEED)),
                 ref(k, kir_scalar_param(k, KIR_SCALAR_STEP)), ref(k, i));
  kir_store(k, y, ref(k, i),
            kir_bin(k, KIR_MUL, u, ref(k, kir_scalar_param(k, KIR_SCALAR_LR))));
  kir_end(k);
  float ys[11];
  void *bufs[] = {ys};
  kir_scalars s = {
      .seed = (int64_t)0x9e3779b97f4a7c15ull, .step = 41, .lr = 0.5f};
  run_ok(k, bufs, &s);
  for (int n = 0; n < 11; n++) {
    float want = philox_uniform(0x9e3779b97f4a7c15ull, 41, (uint64_t)n) * 0.5f;
    CHECK(ys[n] == want);
  }
  CHECK(ys[0] != ys[1]);
}

TEST(test_interp_atomic_add) {
  /* 5 threads per block, 3 blocks: y[j % 3] += x[j] for 13 elements */
  kir_kernel *k = kir_kernel_new(&A, "scatter", 5);
  kir_buf *x = kir_global(k, "x", KIR_F32, 13, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, 3, false);
  kir_var *b = kir_for(k, KIR_LOOP_GRID, "b", kir_i64(k, 3));
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 5));
  kir_var *j =
      kir_let(k, "j",
              kir_bin(k, KIR_ADD, kir_bin(k, KIR_MUL, ref(k, b), kir_i64(k, 5)),
                      ref(k, t)));
  kir_if(k, kir_bin(k, KIR_LT, ref(k, j), kir_i64(k, 13)));
  kir_atomic_add(k, y, kir_bin(k, KIR_MOD, ref(k, j), kir_i64(k, 3)),
                 kir_load(k, x, ref(k, j)));
  kir_end(k);
  kir_end(k);
  kir_end(k);
  float xs[13], ys[3] = {100, 200, 300};
  for (int n = 0; n < 13; n++)
    xs[n] = (float)(n + 1);
  void *bufs[] = {xs, ys};
  run_ok(k, bufs, &no_scalars);
  /* 1+4+7+10+13 = 35, 2+5+8+11 = 26, 3+6+9+12 = 30 */
  CHECK_NEAR(ys[0], 135, 0);
  CHECK_NEAR(ys[1], 226, 0);
  CHECK_NEAR(ys[2], 330, 0);
}

TEST(test_interp_integers) {
  /* out[n] = one integer expression each, stored as i64 */
  kir_kernel *k = kir_kernel_new(&A, "ints", 0);
  kir_buf *out = kir_global(k, "out", KIR_I64, 9, false);
  kir_expr *big = kir_int(k, KIR_I32, 2147483647);
  kir_expr *vals[9] = {
      kir_bin(k, KIR_ADD, big, kir_int(k, KIR_I32, 1)), /* wraps */
      kir_bin(k, KIR_DIV, kir_i64(k, -7), kir_i64(k, 2)),
      kir_bin(k, KIR_MOD, kir_i64(k, -7), kir_i64(k, 2)),
      kir_bin(k, KIR_SHR, kir_int(k, KIR_I32, -8), kir_int(k, KIR_I32, 1)),
      kir_bin(k, KIR_SHR, kir_int(k, KIR_U32, 0xfffffff8u),
              kir_int(k, KIR_U32, 1)),
      kir_bin(k, KIR_SHL, kir_int(k, KIR_U32, 0x80000001u),
              kir_int(k, KIR_U32, 1)),
      kir_cast(k, KIR_I32, kir_f32(k, -2.75f)),
      kir_select(k, kir_bin(k, KIR_LE, kir_f32(k, 1), kir_f32(k, 1)),
                 kir_int(k, KIR_I32, 3), kir_int(k, KIR_I32, 4)),
      kir_cast(k, KIR_I32, kir_un(k, KIR_FLOOR, kir_f32(k, -2.25f))),
  };
  const int64_t want[9] = {INT32_MIN, -3, -1, -4, 0x7ffffffc, 2, -2, 3, -3};
  for (int n = 0; n < 9; n++)
    kir_store(k, out, kir_i64(k, n), kir_cast(k, KIR_I64, vals[n]));
  int64_t got[9];
  void *bufs[] = {got};
  run_ok(k, bufs, &no_scalars);
  for (int n = 0; n < 9; n++)
    CHECK_EQ_INT(got[n], want[n]);
}

TEST(test_interp_errors_and_poison) {
  kiln_error err = {0};
  /* a load one past the end */
  kir_kernel *k = kir_kernel_new(&A, "oob", 0);
  kir_buf *x = kir_global(k, "x", KIR_F32, 7, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, 7, false);
  kir_var *i = kir_for(k, KIR_LOOP_GRID, "i", kir_i64(k, 7));
  kir_store(k, y, ref(k, i),
            kir_load(k, x, kir_bin(k, KIR_ADD, ref(k, i), kir_i64(k, 1))));
  kir_end(k);
  float xs[7] = {0}, ys[7];
  void *bufs[] = {xs, ys};
  CHECK_EQ_INT(kir_interp_run(k, bufs, &no_scalars, &err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(err.message, "index 7 out of bounds of 'x[7]'");
  CHECK_STR_CONTAINS(err.message, "y[i] = x[i + 1]");

  /* integer division by zero */
  k = kir_kernel_new(&A, "div0", 0);
  kir_buf *o = kir_global(k, "o", KIR_I64, 3, false);
  i = kir_for(k, KIR_LOOP_GRID, "i", kir_i64(k, 3));
  kir_store(k, o, ref(k, i), kir_bin(k, KIR_DIV, kir_i64(k, 1), ref(k, i)));
  kir_end(k);
  int64_t os[3];
  void *obufs[] = {os};
  CHECK_EQ_INT(kir_interp_run(k, obufs, &no_scalars, &err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(err.message, "integer div by zero");

  /* shared memory read before any write is poison (NaN) */
  k = kir_kernel_new(&A, "poison", 3);
  y = kir_global(k, "y", KIR_F32, 3, false);
  kir_buf *s = kir_shared(k, "s", KIR_F32, 3);
  kir_var *t = kir_for(k, KIR_LOOP_THREAD, "t", kir_i64(k, 3));
  kir_store(k, y, ref(k, t), kir_load(k, s, ref(k, t)));
  kir_end(k);
  void *pbufs[] = {ys};
  run_ok(k, pbufs, &no_scalars);
  CHECK(isnan(ys[0]) && isnan(ys[2]));

  /* a malformed kernel is rejected by the verifier before running */
  k = kir_kernel_new(&A, "bad", 0);
  kir_barrier(k);
  CHECK_EQ_INT(kir_interp_run(k, NULL, &no_scalars, &err), KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(err.message, "barrier in a kernel without threads");
}

/* ---- plans ---- */

/* tensors: in (7), out (7), out2 = alias of out; launch 0: out = in * 3,
 * launch 1: in = out2 + 1 (through the alias). */
static kir_kernel *scale_kernel(const char *name, float mul, float add) {
  kir_kernel *k = kir_kernel_new(&A, name, 0);
  kir_buf *x = kir_global(k, "x", KIR_F32, 7, true);
  kir_buf *y = kir_global(k, "y", KIR_F32, 7, false);
  kir_var *i = kir_for(k, KIR_LOOP_GRID, "i", kir_i64(k, 7));
  kir_store(
      k, y, ref(k, i),
      kir_bin(k, KIR_ADD,
              kir_bin(k, KIR_MUL, kir_load(k, x, ref(k, i)), kir_f32(k, mul)),
              kir_f32(k, add)));
  kir_end(k);
  return k;
}

TEST(test_plan_interp_and_print) {
  static kir_tensor tensors[3] = {
      {"in", KIR_F32, 7, KIR_T_INPUT, NULL, NULL, -1},
      {"out", KIR_F32, 7, KIR_T_VALUE, NULL, NULL, -1},
      {"out2", KIR_F32, 7, KIR_T_VALUE, NULL, NULL, 1},
  };
  static int args0[2] = {0, 1}, args1[2] = {2, 0};
  kir_launch launches[2] = {{scale_kernel("triple", 3, 0), args0, NULL},
                            {scale_kernel("inc", 1, 1), args1, NULL}};
  kir_plan p = {.a = &A,
                .batch = 1,
                .n_tensors = 3,
                .tensors = tensors,
                .n_launches = 2,
                .launches = launches,
                .fwd_end = 1,
                .bwd_end = 2};
  kir_interp_plan *ip = kir_interp_plan_new(&p);
  CHECK(kir_interp_plan_tensor(ip, 1) == kir_interp_plan_tensor(ip, 2));
  CHECK(isnan(((float *)kir_interp_plan_tensor(ip, 1))[6]));
  float *in = kir_interp_plan_tensor(ip, 0);
  for (int n = 0; n < 7; n++)
    in[n] = (float)n;
  kiln_error err = {0};
  CHECK_EQ_INT(kir_interp_plan_run(ip, 0, 1, &no_scalars, &err), KILN_OK);
  CHECK_NEAR(((float *)kir_interp_plan_tensor(ip, 1))[5], 15, 0);
  CHECK_NEAR(in[5], 5, 0); /* launch 1 has not run */
  CHECK_EQ_INT(kir_interp_plan_run(ip, 1, 2, &no_scalars, &err), KILN_OK);
  CHECK_NEAR(in[5], 16, 0);
  kir_interp_plan_free(ip);

  /* a kernel buffer of another type than its tensor */
  tensors[1].type = KIR_I32;
  tensors[2].type = KIR_I32;
  ip = kir_interp_plan_new(&p);
  CHECK_EQ_INT(kir_interp_plan_run(ip, 0, 2, &no_scalars, &err),
               KILN_ERR_INTERNAL);
  CHECK_STR_CONTAINS(err.message, "binds f32 y[7] to tensor 'out' (i32");
  kir_interp_plan_free(ip);
  tensors[1].type = tensors[2].type = KIR_F32;

  strbuf sb;
  strbuf_init(&sb);
  kir_plan_print(&sb, &p);
  CHECK_STR_CONTAINS(sb.data, "# launch 0 (forward)\nkernel triple(");
  CHECK_STR_CONTAINS(sb.data, "  args: x=in y=out\n");
  CHECK_STR_CONTAINS(sb.data, "# launch 1 (backward)\nkernel inc(");
  CHECK_STR_CONTAINS(sb.data, "  args: x=out2 y=in\n");
  /* 2 launches x 2 buffers x 7 floats x 4 bytes */
  CHECK_STR_CONTAINS(sb.data, "# 2 kernels, 112 bytes moved (forward 1 "
                              "kernels 56 bytes, backward 1 kernels 56 "
                              "bytes, update 0 kernels 0 bytes)\n");
  strbuf_free(&sb);
}

/* ---- the plan-check harness ---- */

static const char *const tiny_model =
    "model tiny\n"
    "input x: f32[batch, 7]\n"
    "input label: i32[batch]\n"
    "h = linear(x, out=5)\n"
    "a = relu(h)\n"
    "o = linear(a, out=3)\n"
    "loss = cross_entropy(o, label)\n"
    "train {\n"
    "  optimizer = sgd(lr=0.1, momentum=0.9)\n"
    "  clip_grad_norm = 100\n"
    "}\n";

/* The interpreter, with one element of one tensor corrupted after every
 * run: the harness must notice and name it. */
static int corrupt_tensor = -1;
static void *corrupt_create(const kir_plan *p, kiln_error *err) {
  for (int t = 0; t < p->n_tensors; t++)
    if (p->tensors[t].node && strcmp(p->tensors[t].name, "a") == 0)
      corrupt_tensor = t;
  return pc_interp_executor.create(p, err);
}
static kiln_status corrupt_run(void *x, int from, int to, const kir_scalars *s,
                               kiln_error *err) {
  kiln_status st = pc_interp_executor.run(x, from, to, s, err);
  float v[15]; /* a: batch 3 x 5 */
  pc_interp_executor.read(x, corrupt_tensor, v);
  v[7] += 1e-3f;
  pc_interp_executor.write(x, corrupt_tensor, v);
  return st;
}

TEST(test_plan_check) {
  pc_opts o = {.step = 2};
  pc_report rep;
  kiln_error err = {0};
  kiln_status st = pc_check_update_string("tiny", tiny_model, &o, &rep, &err);
  if (st)
    fprintf(stderr, "%s\n", err.message);
  CHECK_EQ_INT(st, KILN_OK);
  /* x, h, a, o, loss and their gradients, the parameters and updates */
  CHECK(rep.compared >= 12);
  CHECK(rep.launches > 0);

  pc_executor bad = pc_interp_executor;
  bad.create = corrupt_create;
  bad.run = corrupt_run;
  o = (pc_opts){.exec = &bad};
  CHECK_EQ_INT(pc_check_string("tiny", tiny_model, &o, &rep, &err),
               KILN_ERR_INVALID);
  CHECK_STR_CONTAINS(err.message, "node 'a': element 7 of 15");

  o = (pc_opts){.mode = KIR_PLAN_EVAL, .batch = 5};
  st = pc_check_string("tiny", tiny_model, &o, &rep, &err);
  if (st)
    fprintf(stderr, "%s\n", err.message);
  CHECK_EQ_INT(st, KILN_OK);
}

int main(void) {
  arena_init(&A);
  RUN(test_type_and_op_tables);
  RUN(test_builder_types);
  RUN(test_builder_rejects_mistyped_code);
  RUN(test_verify_types_scopes_buffers);
  RUN(test_verify_parallel_structure);
  RUN(test_verify_shared_races);
  RUN(test_print);
  RUN(test_interp_elementwise);
  RUN(test_interp_reduction);
  RUN(test_interp_block_reduce);
  RUN(test_interp_mma);
  RUN(test_interp_philox_and_scalars);
  RUN(test_interp_atomic_add);
  RUN(test_interp_integers);
  RUN(test_interp_errors_and_poison);
  RUN(test_plan_interp_and_print);
  RUN(test_plan_check);
  arena_free(&A);
  return TEST_SUMMARY();
}
