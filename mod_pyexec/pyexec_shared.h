/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The state every process of this httpd shares: the registry's shared
 * memory segment and its global mutex, set up in post_config and
 * inherited through fork.
 */
#ifndef PYEXEC_SHARED_H
#define PYEXEC_SHARED_H

#include <httpd.h>

int pyexec_shared_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp);
int pyexec_shared_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s);
void pyexec_shared_child_init(apr_pool_t *pchild, server_rec *s);

#endif /* PYEXEC_SHARED_H */
