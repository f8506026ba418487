/* assert.c — broken internal invariants end the process: they are kiln's
 * bugs, not the user's, and going on would compute wrong numbers. */
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>

void support_assert_fail(const char *file, int line, const char *expr) {
  fprintf(stderr, "%s:%d: kiln internal error: assertion failed: %s\n", file,
          line, expr);
  abort();
}
