/* nvrtc_batch.c — many kernels compiled in parallel.
 *
 * NVRTC compile time is every JIT project's top complaint, and one
 * compile is single-threaded, so a plan's kernels are spread over a pool
 * of pthreads that take the next job from a shared atomic counter (jobs
 * vary from 20 ms to a second; a static split would leave threads idle).
 * NVRTC is thread-safe for distinct programs; the cache writes through
 * unique temporary files; each job keeps its own result and error, and the
 * statistics are summed after the join, so nothing else is shared. */
#include "codegen/cuda/cuda.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

typedef struct batch {
  cg_cuda_job *jobs;
  int n;
  const cg_cuda_opts *o;
  atomic_int next;
} batch;

static void *worker(void *arg) {
  batch *b = arg;
  for (;;) {
    int i = atomic_fetch_add(&b->next, 1);
    if (i >= b->n)
      return NULL;
    cg_cuda_job *j = &b->jobs[i];
    j->status = cg_cuda_compile(j->name, j->src, b->o, &j->bin, NULL, &j->err);
  }
}

int cg_cuda_cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)(n < 256 ? n : 256) : 1;
}

kiln_status cg_cuda_compile_all(cg_cuda_job *jobs, int n, const cg_cuda_opts *o,
                                int threads, cg_cuda_stats *stats,
                                kiln_error *err) {
  KILN_ASSERT(n >= 0 && (jobs || n == 0) && o);
  for (int i = 0; i < n; i++) {
    memset(&jobs[i].bin, 0, sizeof jobs[i].bin);
    jobs[i].status = KILN_OK;
    jobs[i].err.message[0] = '\0';
  }
  if (threads <= 0)
    threads = cg_cuda_cpu_count();
  if (threads > n)
    threads = n;
  batch b = {.jobs = jobs, .n = n, .o = o};
  atomic_init(&b.next, 0);
  enum { MAX_THREADS = 256 };
  pthread_t tid[MAX_THREADS];
  int started = 0;
  /* The calling thread works too; threads that fail to start just leave
   * more jobs to the others. */
  for (int i = 1; i < threads && i < MAX_THREADS; i++)
    if (pthread_create(&tid[started], NULL, worker, &b) == 0)
      started++;
  worker(&b);
  for (int i = 0; i < started; i++)
    pthread_join(tid[i], NULL);

  kiln_status first = KILN_OK;
  for (int i = 0; i < n; i++) {
    const cg_cuda_job *j = &jobs[i];
    if (j->status != KILN_OK) {
      if (first == KILN_OK) {
        first = j->status;
        if (err)
          *err = j->err;
      }
      continue;
    }
    if (stats && j->bin.from_cache) {
      stats->warm++;
      stats->warm_s += j->bin.seconds;
    } else if (stats) {
      stats->cold++;
      stats->cold_s += j->bin.seconds;
    }
  }
  return first;
}
