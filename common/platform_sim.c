/* placeholder until the simulated platform lands */
#include "platform.h"
#include <stdio.h>
int gv_platform_sim_open(struct gv_platform *p, const char *dir, int domid, char *err, size_t errlen)
{ (void)p; (void)dir; (void)domid; snprintf(err, errlen, "simulated platform not built yet"); return -ENOSYS; }
