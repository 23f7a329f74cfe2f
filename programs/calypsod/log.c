/*
 * log.c: calypsod's log: lines on stderr (or --logfile, reopened on
 * SIGHUP so logrotate can move it), in Redis's layout
 * "pid:M dd Mon yyyy hh:mm:ss.mmm * message", filtered by --loglevel.
 */
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "calypsod.h"

static FILE *cd_log_fp;

int cd_log_open(void)
{
    if (!cd_srv.logfile) {
        cd_log_fp = stderr;
        return 0;
    }
    FILE *fp = fopen(cd_srv.logfile, "a");
    if (!fp) return -1;
    if (cd_log_fp && cd_log_fp != stderr) fclose(cd_log_fp);
    setvbuf(fp, NULL, _IOLBF, 0);
    cd_log_fp = fp;
    return 0;
}

void cd_log(int level, const char *fmt, ...)
{
    static const char marks[] = ".-*#";
    if (level < cd_srv.loglevel) return;
    FILE *fp = cd_log_fp ? cd_log_fp : stderr;
    struct timeval tv;
    struct tm tm;
    char when[64];
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    size_t k = strftime(when, sizeof when, "%d %b %Y %H:%M:%S", &tm);
    snprintf(when + k, sizeof when - k, ".%03d", (int)(tv.tv_usec / 1000));
    fprintf(fp, "%d:M %s %c ", (int)getpid(), when, marks[level & 3]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(fp, fmt, ap);
    va_end(ap);
    fputc('\n', fp);
    fflush(fp);
}
