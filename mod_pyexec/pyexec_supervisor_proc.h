/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Private to the supervisor process: its state, and what its two files
 * call of each other. pyexec_supervisor_main.c is the process itself
 * (start-up and privileges, the loop, control datagrams, the scan, the
 * end); pyexec_supervisor_spawn.c makes helpers through the zygote and
 * records how each one ended.
 */
#ifndef PYEXEC_SUPERVISOR_PROC_H
#define PYEXEC_SUPERVISOR_PROC_H

#include <sys/types.h>

#include <httpd.h>

#include "pyexec_registry.h"
#include "pyexec_settings.h"

/* What the CPU watch keeps per slot (pyexec_supervisor_cpu.c). */
typedef struct {
    uint32_t gen;               /* of the helper below */
    pid_t pid;
    int64_t last_cpu;           /* its CPU time at the last scan, usec;
                                   -1 before the first */
    int64_t last_busy;          /* its session's time in flight then */
    int64_t debt;               /* CPU time beyond time in flight */
} pyexec_cpu_watch_t;

typedef struct {
    server_rec *s;
    apr_pool_t *pool;
    pyexec_registry_t *reg;
    int ctl_fd;                 /* datagrams from workers */
    int zfd;                    /* our end of the zygote channel */
    pid_t zpid;
    int helper_fd;              /* the helper program, opened before the
                                   change of user */
    apr_time_t zygote_retry_at;
    int zygote_failures;
    apr_time_t spawn_retry_at;  /* helpers failing to start: back off */
    int spawn_failures;
    pyexec_settings_t *conf;    /* our copy of the published settings */
    pyexec_settings_t *conf_next;   /* a copy being taken (take_conf) */
    unsigned char *spawn_frame; /* PYEXEC_SPAWN_FRAME_MAX bytes */
    int32_t *victims;           /* a scan's helpers to kill, one per slot */
    pyexec_cpu_watch_t *cpu;    /* one per slot */
    int cpu_unreadable;         /* logged once: the watch cannot see */
    int log_fd;                 /* httpd's parent sends its error log here */
    pid_t unknown_reaped[16];   /* children reaped before the zygote's
                                   SPAWNED named them (ring) */
    unsigned unknown_next;
    uid_t helper_uid;           /* (uid_t)-1: run helpers as we run */
    gid_t helper_gid;
} pyexec_sup_t;

/* pyexec_supervisor_main.c */
int pyexec_sup_stopping(void);

/* pyexec_supervisor_spawn.c, each called from the loop */
void pyexec_sup_zygote_start(pyexec_sup_t *sup);
void pyexec_sup_zygote_msgs(pyexec_sup_t *sup);
void pyexec_sup_reap(pyexec_sup_t *sup);
void pyexec_sup_refill(pyexec_sup_t *sup);

/* pyexec_supervisor_cpu.c: from start-up, READY, and each scan */
void pyexec_sup_cpu_init(pyexec_sup_t *sup);
void pyexec_sup_cpu_ready(pyexec_sup_t *sup, uint32_t idx, uint32_t gen,
                          pid_t pid);
void pyexec_sup_cpu_scan(pyexec_sup_t *sup);

#endif /* PYEXEC_SUPERVISOR_PROC_H */
