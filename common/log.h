/*
 * common/log.h: logging to stderr with levels (the journal picks stderr up).
 * One line per message, prefixed with the program name and the level.
 */
#ifndef GV_COMMON_LOG_H
#define GV_COMMON_LOG_H

#include <stdarg.h>

enum gv_log_level { GV_LOG_ERR = 0, GV_LOG_WARN, GV_LOG_INFO, GV_LOG_DEBUG };

extern enum gv_log_level gv_log_threshold;   /* default GV_LOG_INFO */
void gv_log_set_program(const char *name);
void gv_log(enum gv_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define gv_err(...)   gv_log(GV_LOG_ERR, __VA_ARGS__)
#define gv_warn(...)  gv_log(GV_LOG_WARN, __VA_ARGS__)
#define gv_info(...)  gv_log(GV_LOG_INFO, __VA_ARGS__)
#define gv_debug(...) gv_log(GV_LOG_DEBUG, __VA_ARGS__)

#endif
