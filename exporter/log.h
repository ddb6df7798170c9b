/* SPDX-License-Identifier: Apache-2.0 */
/* Logging in Prometheus's promslog shape (logfmt or JSON) and a collectd-style complain helper. */
#ifndef PROMLET_EXPORTER_LOG_H
#define PROMLET_EXPORTER_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum log_format { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };

/* Sets the threshold and output format (process-wide; call before starting threads). */
void log_setup(enum log_level level, enum log_format format);
/* Parses "debug|info|warn|error" / "logfmt|json". Returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
int log_parse_format(const char *s, enum log_format *out);
bool log_enabled(enum log_level level);

/* Writes one line to stderr: time level source msg [key=value...]. `kv` is an optional
 * preformatted tail of key=value pairs in logfmt (may be NULL); in JSON mode it is
 * converted. Thread-safe (one write(2) per line). */
void log_write(enum log_level level, const char *file, int line, const char *kv, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));

#define LOG_DEBUG(...) log_write(LOG_LEVEL_DEBUG, __FILE__, __LINE__, NULL, __VA_ARGS__)
#define LOG_INFO(...) log_write(LOG_LEVEL_INFO, __FILE__, __LINE__, NULL, __VA_ARGS__)
#define LOG_WARN(...) log_write(LOG_LEVEL_WARN, __FILE__, __LINE__, NULL, __VA_ARGS__)
#define LOG_ERROR(...) log_write(LOG_LEVEL_ERROR, __FILE__, __LINE__, NULL, __VA_ARGS__)

/* Rate-limited complaints for failures that repeat on every tick (collectd's c_complain):
 * the first failure logs at once, then the interval doubles up to one day; the first
 * success after failures logs once and resets. Caller storage, zero-initialised. */
struct complain {
    int64_t last_ms;
    int64_t interval_ms;
    bool failing;
};

/* Logs at `level` if the back-off allows it. */
void complain_fail(struct complain *c, enum log_level level, const char *file, int line,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Marks success; logs "recovered" at info if it was failing. */
void complain_ok(struct complain *c, const char *file, int line, const char *what);

#define COMPLAIN(c, ...) complain_fail((c), LOG_LEVEL_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define COMPLAIN_OK(c, what) complain_ok((c), __FILE__, __LINE__, (what))

#endif
