/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * mod_pyexec's section of mod_status's /server-status.
 */
#ifndef PYEXEC_STATUS_H
#define PYEXEC_STATUS_H

#include <httpd.h>

/* For APR_OPTIONAL_HOOK(ap, status_hook, ...): flags are AP_STATUS_*. */
int pyexec_status_hook(request_rec *r, int flags);

#endif /* PYEXEC_STATUS_H */
