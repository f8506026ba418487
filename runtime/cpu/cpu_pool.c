/* cpu_pool.c — a fixed pool of pthreads and a parallel for over [0, n).
 *
 * Work is handed out in chunks from one atomic counter, so a slow thread
 * (or a core shared with other processes) takes fewer chunks instead of
 * holding up the launch; about four chunks per thread balance that against
 * the cost of the atomic. The caller works too, so a pool of N threads
 * has N - 1 workers. Workers sleep on a condition variable between
 * launches; a launch is one generation number.
 *
 * The caller does not wait for workers that never joined: once it has
 * run out of chunks it closes the launch, a worker waking after that
 * skips it, and only the workers that joined (and may still be running a
 * chunk) are waited for. On a machine whose cores are shared, waiting for
 * every sleeping worker to be scheduled cost more than the work. */
#include "runtime/cpu/rt_cpu.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct rt_cpu_pool {
  int threads; /* the caller included */
  pthread_t *workers;
  pthread_mutex_t mu;
  pthread_cond_t start, done;
  uint64_t generation; /* bumped per launch (under mu) */
  int active;          /* workers that joined the launch and are in it */
  bool closed;         /* the caller ran out of chunks: no more joins */
  bool quit;
  /* the current launch */
  rt_cpu_range_fn fn;
  void *ctx;
  int64_t n, chunk;
  atomic_int_fast64_t next;
};

static void run_chunks(rt_cpu_pool *p) {
  for (;;) {
    int64_t b = atomic_fetch_add(&p->next, p->chunk);
    if (b >= p->n)
      return;
    int64_t e = b + p->chunk < p->n ? b + p->chunk : p->n;
    p->fn(p->ctx, b, e);
  }
}

static void *worker(void *arg) {
  rt_cpu_pool *p = arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->generation == seen && !p->quit)
      pthread_cond_wait(&p->start, &p->mu);
    if (p->quit)
      break;
    seen = p->generation;
    if (p->closed)
      continue; /* woke after the launch was over */
    p->active++;
    pthread_mutex_unlock(&p->mu);
    run_chunks(p);
    pthread_mutex_lock(&p->mu);
    if (--p->active == 0)
      pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static int default_threads(void) {
  const char *env = getenv("KILN_THREADS");
  if (env && *env) {
    char *end;
    long v = strtol(env, &end, 10);
    if (*end == '\0' && v > 0 && v <= 1024)
      return (int)v;
  }
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return cores > 0 ? (int)cores : 1;
}

rt_cpu_pool *rt_cpu_pool_new(int threads) {
  rt_cpu_pool *p = calloc(1, sizeof *p);
  KILN_ASSERT(p);
  p->threads = threads > 0 ? threads : default_threads();
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->start, NULL);
  pthread_cond_init(&p->done, NULL);
  p->workers = calloc((size_t)p->threads, sizeof *p->workers);
  KILN_ASSERT(p->workers);
  /* Kernels keep SHARED and LOCAL buffers on the stack: give workers the
   * same room as a main thread usually has. */
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, (size_t)16 << 20);
  int started = 1;
  for (int i = 1; i < p->threads; i++) {
    if (pthread_create(&p->workers[i], &attr, worker, p) != 0)
      break; /* fewer threads than asked: still correct */
    started++;
  }
  pthread_attr_destroy(&attr);
  p->threads = started;
  return p;
}

void rt_cpu_pool_free(rt_cpu_pool *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->quit = true;
  pthread_cond_broadcast(&p->start);
  pthread_mutex_unlock(&p->mu);
  for (int i = 1; i < p->threads; i++)
    pthread_join(p->workers[i], NULL);
  pthread_cond_destroy(&p->start);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mu);
  free(p->workers);
  free(p);
}

int rt_cpu_pool_threads(const rt_cpu_pool *p) {
  return p->threads;
}

void rt_cpu_pool_for(rt_cpu_pool *p, int64_t n, rt_cpu_range_fn fn, void *ctx) {
  if (n <= 0)
    return;
  if (p->threads == 1 || n == 1) {
    fn(ctx, 0, n);
    return;
  }
  int64_t chunk = n / ((int64_t)p->threads * 4);
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->ctx = ctx;
  p->n = n;
  p->chunk = chunk > 0 ? chunk : 1;
  atomic_store(&p->next, 0);
  p->active = 0;
  p->closed = false;
  p->generation++;
  pthread_cond_broadcast(&p->start);
  pthread_mutex_unlock(&p->mu);
  run_chunks(p);
  pthread_mutex_lock(&p->mu);
  p->closed = true;
  while (p->active > 0)
    pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
