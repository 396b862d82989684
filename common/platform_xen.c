/* placeholder until the real implementation lands */
#include "platform.h"
#include <stdio.h>
int gv_platform_xen_open(struct gv_platform *p, char *err, size_t errlen)
{ (void)p; snprintf(err, errlen, "real Xen platform not built yet"); return -ENOSYS; }
