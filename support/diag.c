/* diag.c — located error messages, chibicc style:
 *
 *   models/x.kiln:7:6: error: unknown op 'conv2' (did you mean 'conv2d'?)
 *   c1 = conv2(image, out=6, kernel=5)
 *        ^
 *
 * Messages go into the caller's kiln_error; nothing is printed here. */
#include "support/support.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Appends the source line of `loc` and a caret under its column. Tabs are
 * kept in the caret line so the caret lines up in a terminal; other control
 * bytes are shown as '?' so a hostile file cannot emit escape sequences. */
static void put_source_line(strbuf *b, kiln_loc loc) {
  const char *text = loc.file->text, *end = text + loc.file->len;
  const char *p = text;
  for (int line = 1; line < loc.line && p < end; p++)
    if (*p == '\n')
      line++;
  const char *eol = p;
  while (eol < end && *eol != '\n')
    eol++;
  enum { MAX_SHOWN = 200 }; /* long lines are cut around nothing: keep start */
  size_t n = (size_t)(eol - p) < MAX_SHOWN ? (size_t)(eol - p) : MAX_SHOWN;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    strbuf_putc(b, (c == '\t' || (isprint(c) && c < 128)) ? (char)c : '?');
  }
  strbuf_putc(b, '\n');
  for (int i = 1; i < loc.col && (size_t)(i - 1) < n; i++)
    strbuf_putc(b, p[i - 1] == '\t' ? '\t' : ' ');
  strbuf_puts(b, "^\n");
}

static void put_located(strbuf *b, kiln_loc loc, const char *kind,
                        const char *fmt, va_list ap) {
  if (loc.file)
    strbuf_printf(b, "%s:%d:%d: ", loc.file->name, loc.line, loc.col);
  strbuf_printf(b, "%s: ", kind);
  strbuf_vprintf(b, fmt, ap);
  strbuf_putc(b, '\n');
  if (loc.file && loc.line > 0)
    put_source_line(b, loc);
}

static void store(kiln_error *err, const strbuf *b, size_t at) {
  size_t room = sizeof err->message - at;
  size_t n = b->len < room - 1 ? b->len : room - 1;
  memcpy(err->message + at, b->data, n);
  err->message[at + n] = '\0';
}

kiln_status diag_error(kiln_error *err, kiln_status status, kiln_loc loc,
                       const char *fmt, ...) {
  KILN_ASSERT(status != KILN_OK);
  if (!err)
    return status;
  strbuf b;
  strbuf_init(&b);
  va_list ap;
  va_start(ap, fmt);
  put_located(&b, loc, "error", fmt, ap);
  va_end(ap);
  err->status = status;
  store(err, &b, 0);
  strbuf_free(&b);
  return status;
}

void diag_note(kiln_error *err, kiln_loc loc, const char *fmt, ...) {
  if (!err)
    return;
  strbuf b;
  strbuf_init(&b);
  va_list ap;
  va_start(ap, fmt);
  put_located(&b, loc, "note", fmt, ap);
  va_end(ap);
  store(err, &b, strlen(err->message));
  strbuf_free(&b);
}

const char *kiln_status_name(kiln_status s) {
  static const char *const names[] = {
      [KILN_OK] = "ok",
      [KILN_ERR_SYNTAX] = "syntax error",
      [KILN_ERR_NAME] = "name error",
      [KILN_ERR_TYPE] = "type error",
      [KILN_ERR_SHAPE] = "shape error",
      [KILN_ERR_IO] = "I/O error",
      [KILN_ERR_INVALID] = "invalid request",
      [KILN_ERR_INTERNAL] = "library error",
  };
  return (unsigned)s < ARRAY_LEN(names) ? names[s] : "unknown status";
}
